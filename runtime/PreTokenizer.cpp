#include "PreTokenizer.h"

#include "Unicode.h"

namespace stc::rt {

namespace {

uint32_t asciiLower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

bool isCrLf(uint32_t c) { return c == '\r' || c == '\n'; }

} // namespace

bool knownPreTokenizer(const std::string &name) { return name == "qwen2"; }

void splitQwen2(const std::vector<uint32_t> &cps,
                std::vector<std::pair<uint32_t, uint32_t>> &pieces) {
  using namespace unicode;
  const size_t n = cps.size();
  std::vector<uint8_t> cls(n + 1, 0); // one past the end: no class
  for (size_t i = 0; i < n; ++i)
    cls[i] = classOf(cps[i]);
  auto L = [&](size_t i) { return (cls[i] & kLetter) != 0; };
  auto N = [&](size_t i) { return (cls[i] & kNumber) != 0; };
  auto S = [&](size_t i) { return (cls[i] & kWhitespace) != 0; };
  // [^\s\p{L}\p{N}]: any other character (punctuation, symbols, marks, ...).
  auto P = [&](size_t i) { return i < n && cls[i] == 0; };
  auto match = [&](size_t i) -> size_t {
    const uint32_t c = cps[i];
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (c == '\'' && i + 1 < n) {
      const uint32_t a = asciiLower(cps[i + 1]);
      const uint32_t b = i + 2 < n ? asciiLower(cps[i + 2]) : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return i + 2;
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
          (a == 'l' && b == 'l'))
        return i + 3;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (L(i) || (!isCrLf(c) && !N(i) && i + 1 < n && L(i + 1))) {
      size_t j = i + 1;
      while (L(j))
        ++j;
      return j;
    }
    // \p{N}: one digit at a time
    if (N(i))
      return i + 1;
    // ' '?[^\s\p{L}\p{N}]+[\r\n]*
    if (P(i) || (c == ' ' && P(i + 1))) {
      size_t j = c == ' ' ? i + 1 : i;
      while (P(j))
        ++j;
      while (j < n && isCrLf(cps[j]))
        ++j;
      return j;
    }
    // c is white space: the run [i, j).
    size_t j = i + 1;
    while (S(j))
      ++j;
    // \s*[\r\n]+ : up to the run's last CR or LF
    size_t k = j;
    while (k > i && !isCrLf(cps[k - 1]))
      --k;
    if (k > i)
      return k;
    // \s+(?!\S) : the run, less its last character if a non-space follows
    if (j == n || j - i == 1)
      return j; // (a single space before a non-space falls to \s+)
    return j - 1;
  };
  pieces.clear();
  for (size_t i = 0; i < n;) {
    const size_t e = match(i);
    pieces.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(e));
    i = e;
  }
}

} // namespace stc::rt
