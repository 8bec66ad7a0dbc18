// Unicode for the tokenizer: UTF-8 decoding with byte offsets, the character
// classes of the pre-tokenizer regex (\p{L}, \p{N}, \s) and NFC normalization.
// The data is runtime/UnicodeTables.cpp, generated from ICU by
// stc-unicode-tables; nothing here calls a system library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace stc::rt::unicode {

// Character classes (bits).
enum : uint8_t { kLetter = 1, kNumber = 2, kWhitespace = 4 };

uint8_t classOf(uint32_t cp);
uint8_t combiningClass(uint32_t cp);

// Decodes `text` into code points with the byte offset of each (plus one
// entry past the end). Returns false with the offset of the first byte that
// does not start a valid UTF-8 sequence (overlong forms, surrogates and
// values past U+10FFFF are invalid).
bool decodeUtf8(const std::string &text, std::vector<uint32_t> &cps,
                std::vector<uint32_t> &offsets, size_t &badOffset);
void appendUtf8(std::string &out, uint32_t cp);

// Length of the valid UTF-8 sequence at p[0..n), 0 if p starts an invalid one
// (the maximal invalid prefix is then `invalidPrefix` bytes long, at least 1),
// or -1 if the bytes so far are a valid but unfinished sequence.
int utf8SequenceLength(const uint8_t *p, size_t n, int &invalidPrefix);

// `text` in Normalization Form C (UAX #15). Valid UTF-8 in, valid UTF-8 out.
std::string toNfc(const std::string &text);

// Tables (UnicodeTables.cpp).
struct Run {
  uint32_t first, last, value;
};
struct Decomposition {
  uint32_t cp, offset, length;
};
struct Composition {
  uint32_t first, second, composite;
};
extern const char *const kUnicodeVersion;
extern const Run kClassRuns[], kCombiningClassRuns[], kNfcQuickCheckRuns[];
extern const size_t kClassRunsCount, kCombiningClassRunsCount,
    kNfcQuickCheckRunsCount;
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionCount;
extern const uint32_t kDecompositionData[];
extern const Composition kCompositions[];
extern const size_t kCompositionCount;

} // namespace stc::rt::unicode
