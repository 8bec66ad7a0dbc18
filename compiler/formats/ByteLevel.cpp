#include "ByteLevel.h"

#include "Unicode.h"

#include <unordered_map>
#include <vector>

namespace stc {

const std::array<uint32_t, 256> &byteLevelAlphabet() {
  static const std::array<uint32_t, 256> alphabet = [] {
    std::array<uint32_t, 256> a{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable =
          (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      a[b] = printable ? b : next++;
    }
    return a;
  }();
  return alphabet;
}

std::string byteLevelEncode(const std::string &bytes) {
  std::string out;
  for (unsigned char c : bytes)
    rt::unicode::appendUtf8(out, byteLevelAlphabet()[c]);
  return out;
}

bool byteLevelDecode(const std::string &text, std::string &bytes) {
  static const std::unordered_map<uint32_t, uint8_t> inverse = [] {
    std::unordered_map<uint32_t, uint8_t> m;
    for (int b = 0; b < 256; ++b)
      m[byteLevelAlphabet()[b]] = static_cast<uint8_t>(b);
    return m;
  }();
  std::vector<uint32_t> cps, offsets;
  size_t bad = 0;
  if (!rt::unicode::decodeUtf8(text, cps, offsets, bad))
    return false;
  bytes.clear();
  for (uint32_t cp : cps) {
    auto it = inverse.find(cp);
    if (it == inverse.end())
      return false;
    bytes += static_cast<char>(it->second);
  }
  return true;
}

} // namespace stc
