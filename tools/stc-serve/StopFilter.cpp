// StopFilter: finds the first stop string in the generated text and holds
// back the longest tail that a later piece could turn into one.
#include "StopFilter.h"

#include <algorithm>

namespace stc::serve {

std::string StopFilter::push(const std::string &piece) {
  if (stopped_)
    return {};
  held_ += piece;
  size_t first = std::string::npos;
  for (const std::string &s : stops_)
    first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  // The longest suffix of the held text that begins some stop string. Stop
  // strings and the text are whole UTF-8 characters, so the cut falls on a
  // character boundary.
  size_t keep = 0;
  for (const std::string &s : stops_)
    for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n)
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopFilter::flush() {
  std::string out;
  out.swap(held_);
  return stopped_ ? std::string() : out;
}

} // namespace stc::serve
