// Progress: a one-line progress display on stderr for the long steps of a
// compile (the weights read, converted and written; each kernel generated),
// shown only when stderr is a terminal and not turned off (stc compile -q).
#ifndef STC_FORMATS_PROGRESS_H
#define STC_FORMATS_PROGRESS_H

#include <chrono>
#include <cstdint>
#include <string>

namespace stc {

class Progress {
public:
  enum class Unit { Bytes, Items };
  // `what` names the step ("writing model.stcm"); `total` is in `unit`.
  Progress(std::string what, uint64_t total, Unit unit = Unit::Bytes);
  ~Progress(); // erases the line
  Progress(const Progress &) = delete;
  Progress &operator=(const Progress &) = delete;

  // Progress so far, and (for items) the name of the one now in progress.
  void set(uint64_t done, const std::string &item = "");

  // Off for the whole process (-q); on by default when stderr is a terminal.
  static void setEnabled(bool on);
  static bool enabled();

private:
  void draw(const std::string &item);
  std::string what_;
  uint64_t total_, done_ = 0;
  Unit unit_;
  bool active_;
  std::chrono::steady_clock::time_point start_, lastDraw_;
  size_t width_ = 0; // of the line drawn, to erase it
};

} // namespace stc

#endif
