// TokenList: parses "1,2,3" token ids, for stc ref and stc-run. Header-only.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace stc::rt {

// Appends the ids in `text` to `out`; on failure returns false with the
// offending item in `bad`. An empty list is a failure.
inline bool parseTokenList(const std::string &text, std::vector<int64_t> &out,
                           std::string &bad) {
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos)
      j = text.size();
    std::string item = text.substr(i, j - i);
    char *end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0') {
      bad = item;
      return false;
    }
    out.push_back(v);
    i = j + 1;
  }
  return !out.empty();
}

} // namespace stc::rt
