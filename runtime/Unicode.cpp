#include "Unicode.h"

#include <algorithm>

namespace stc::rt::unicode {

namespace {

uint32_t lookupRun(const Run *runs, size_t count, uint32_t cp) {
  const Run *end = runs + count;
  const Run *it = std::upper_bound(
      runs, end, cp, [](uint32_t c, const Run &r) { return c < r.first; });
  if (it == runs)
    return 0;
  --it;
  return cp <= it->last ? it->value : 0;
}

// The valid range of the second byte after a lead byte (Unicode Table 3-7).
bool secondByteOk(uint8_t lead, uint8_t b) {
  switch (lead) {
  case 0xE0:
    return b >= 0xA0 && b <= 0xBF;
  case 0xED:
    return b >= 0x80 && b <= 0x9F;
  case 0xF0:
    return b >= 0x90 && b <= 0xBF;
  case 0xF4:
    return b >= 0x80 && b <= 0x8F;
  default:
    return b >= 0x80 && b <= 0xBF;
  }
}

// Hangul syllables compose and decompose algorithmically.
constexpr uint32_t SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161,
                   TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28,
                   NCount = VCount * TCount, SCount = LCount * NCount;

void decompose(uint32_t cp, std::vector<uint32_t> &out) {
  if (cp >= SBase && cp < SBase + SCount) {
    const uint32_t s = cp - SBase;
    out.push_back(LBase + s / NCount);
    out.push_back(VBase + (s % NCount) / TCount);
    if (s % TCount)
      out.push_back(TBase + s % TCount);
    return;
  }
  const Decomposition *end = kDecompositions + kDecompositionCount;
  const Decomposition *it = std::lower_bound(
      kDecompositions, end, cp,
      [](const Decomposition &d, uint32_t c) { return d.cp < c; });
  if (it != end && it->cp == cp)
    out.insert(out.end(), kDecompositionData + it->offset,
               kDecompositionData + it->offset + it->length);
  else
    out.push_back(cp);
}

// The primary composite of (a, b), or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
    return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
  if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 &&
      b > TBase && b < TBase + TCount)
    return a + (b - TBase);
  const Composition *end = kCompositions + kCompositionCount;
  const Composition *it = std::lower_bound(
      kCompositions, end, std::make_pair(a, b),
      [](const Composition &c, const std::pair<uint32_t, uint32_t> &k) {
        return c.first < k.first || (c.first == k.first && c.second < k.second);
      });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

} // namespace

uint8_t classOf(uint32_t cp) {
  if (cp < 128) {
    // ASCII without a search: letters, digits, and \t \n \v \f \r and space.
    if ((cp | 32) - 'a' < 26)
      return kLetter;
    if (cp - '0' < 10)
      return kNumber;
    return (cp == ' ' || (cp >= 9 && cp <= 13)) ? kWhitespace : 0;
  }
  return static_cast<uint8_t>(lookupRun(kClassRuns, kClassRunsCount, cp));
}

uint8_t combiningClass(uint32_t cp) {
  if (cp < 0x300)
    return 0;
  return static_cast<uint8_t>(
      lookupRun(kCombiningClassRuns, kCombiningClassRunsCount, cp));
}

int utf8SequenceLength(const uint8_t *p, size_t n, int &invalidPrefix) {
  invalidPrefix = 1;
  if (n == 0)
    return -1;
  const uint8_t lead = p[0];
  if (lead < 0x80)
    return 1;
  int len = lead >= 0xC2 && lead <= 0xDF   ? 2
            : lead >= 0xE0 && lead <= 0xEF ? 3
            : lead >= 0xF0 && lead <= 0xF4 ? 4
                                           : 0;
  if (len == 0)
    return 0;
  for (int i = 1; i < len; ++i) {
    if (static_cast<size_t>(i) >= n)
      return -1;
    const bool ok =
        i == 1 ? secondByteOk(lead, p[1]) : (p[i] >= 0x80 && p[i] <= 0xBF);
    if (!ok) {
      invalidPrefix = i;
      return 0;
    }
  }
  return len;
}

bool decodeUtf8(const std::string &text, std::vector<uint32_t> &cps,
                std::vector<uint32_t> &offsets, size_t &badOffset) {
  cps.clear();
  offsets.clear();
  const auto *p = reinterpret_cast<const uint8_t *>(text.data());
  const size_t n = text.size();
  cps.reserve(n);
  offsets.reserve(n + 1);
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      cps.push_back(p[i]);
      offsets.push_back(static_cast<uint32_t>(i));
      ++i;
      continue;
    }
    int prefix = 0;
    const int len = utf8SequenceLength(p + i, n - i, prefix);
    if (len <= 0) {
      badOffset = i;
      return false;
    }
    uint32_t cp = p[i] & (0xFF >> (len + 1));
    for (int k = 1; k < len; ++k)
      cp = (cp << 6) | (p[i + k] & 0x3F);
    cps.push_back(cp);
    offsets.push_back(static_cast<uint32_t>(i));
    i += len;
  }
  offsets.push_back(static_cast<uint32_t>(n));
  return true;
}

void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string toNfc(const std::string &text) {
  // Quick check: text whose code points are all NFC_Quick_Check=Yes, with
  // combining marks in canonical order, is already NFC (nearly all text).
  bool quick = true;
  for (unsigned char c : text)
    if (c >= 0xCC) { // below U+0300 nothing decomposes or combines
      quick = false;
      break;
    }
  std::vector<uint32_t> cps, offsets;
  size_t bad = 0;
  if (quick || !decodeUtf8(text, cps, offsets, bad))
    return text;
  uint8_t last = 0;
  quick = true;
  for (uint32_t cp : cps) {
    const uint8_t ccc = combiningClass(cp);
    if ((ccc != 0 && last > ccc) ||
        lookupRun(kNfcQuickCheckRuns, kNfcQuickCheckRunsCount, cp) != 0) {
      quick = false;
      break;
    }
    last = ccc;
  }
  if (quick)
    return text;
  // Canonical decomposition, then canonical ordering of each run of marks.
  std::vector<uint32_t> d;
  d.reserve(cps.size() + 8);
  for (uint32_t cp : cps)
    decompose(cp, d);
  for (size_t i = 1; i < d.size(); ++i) {
    const uint8_t c = combiningClass(d[i]);
    if (c == 0)
      continue;
    for (size_t j = i; j > 0; --j) { // stable: moves past greater classes only
      const uint8_t p = combiningClass(d[j - 1]);
      if (p == 0 || p <= c)
        break;
      std::swap(d[j - 1], d[j]);
    }
  }
  // Canonical composition: a mark joins the last starter unless blocked by a
  // character between them of class 0 or of a class >= its own.
  std::vector<uint32_t> r;
  r.reserve(d.size());
  long starter = -1;
  uint8_t lastClass = 0;
  for (uint32_t cp : d) {
    const uint8_t ccc = combiningClass(cp);
    if (starter >= 0) {
      const bool adjacent = static_cast<long>(r.size()) - 1 == starter;
      if (adjacent || (lastClass != 0 && lastClass < ccc)) {
        if (uint32_t c = compose(r[starter], cp)) {
          r[starter] = c;
          continue;
        }
      }
    }
    if (ccc == 0)
      starter = static_cast<long>(r.size());
    lastClass = ccc;
    r.push_back(cp);
  }
  std::string out;
  out.reserve(text.size());
  for (uint32_t cp : r)
    appendUtf8(out, cp);
  return out;
}

} // namespace stc::rt::unicode
