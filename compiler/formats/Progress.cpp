// Progress: redraws one stderr line in place (carriage return, at most ten
// times a second) with the share done and, once a second has passed, the time
// left at the rate so far.
#include "Progress.h"

#include <algorithm>
#include <cstdio>
#include <unistd.h>

namespace stc {
namespace {

int &state() {
  static int s = -1; // -1: not decided yet (isatty on first use)
  return s;
}

std::string amount(uint64_t v, Progress::Unit unit) {
  char buf[32];
  if (unit == Progress::Unit::Items)
    std::snprintf(buf, sizeof(buf), "%llu", static_cast<unsigned long long>(v));
  else if (v >= (1ull << 30))
    std::snprintf(buf, sizeof(buf), "%.2f GiB", v / 1073741824.0);
  else
    std::snprintf(buf, sizeof(buf), "%.1f MiB", v / 1048576.0);
  return buf;
}

} // namespace

void Progress::setEnabled(bool on) { state() = on ? 1 : 0; }

bool Progress::enabled() {
  if (state() < 0)
    state() = ::isatty(2) ? 1 : 0;
  return state() == 1;
}

Progress::Progress(std::string what, uint64_t total, Unit unit)
    : what_(std::move(what)), total_(total), unit_(unit), active_(enabled()),
      start_(std::chrono::steady_clock::now()) {
  if (active_)
    draw("");
}

Progress::~Progress() {
  if (active_ && width_)
    std::fprintf(stderr, "\r%*s\r", static_cast<int>(width_), "");
}

void Progress::set(uint64_t done, const std::string &item) {
  done_ = done;
  if (!active_)
    return;
  const auto now = std::chrono::steady_clock::now();
  if (item.empty() && now - lastDraw_ < std::chrono::milliseconds(100))
    return;
  draw(item);
}

void Progress::draw(const std::string &item) {
  lastDraw_ = std::chrono::steady_clock::now();
  const double elapsed =
      std::chrono::duration<double>(lastDraw_ - start_).count();
  std::string line = "stc: " + what_ + ": " + amount(done_, unit_) + " of " +
                     amount(total_, unit_);
  if (total_ > 0) {
    char pct[16];
    std::snprintf(pct, sizeof(pct), " (%d%%)",
                  static_cast<int>(100.0 * done_ / total_));
    line += pct;
  }
  if (elapsed >= 1 && done_ > 0 && done_ < total_) {
    const int left = static_cast<int>(elapsed * (total_ - done_) / done_ + 0.5);
    char buf[32];
    std::snprintf(buf, sizeof(buf), ", %d:%02d left", left / 60, left % 60);
    line += buf;
  }
  if (!item.empty())
    line += ": " + item;
  const size_t width = line.size();
  if (width < width_)
    line.append(width_ - width, ' ');
  std::fprintf(stderr, "\r%s", line.c_str());
  std::fflush(stderr);
  width_ = std::max(width_, width);
}

} // namespace stc
