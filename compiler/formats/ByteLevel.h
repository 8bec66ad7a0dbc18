// ByteLevel: GPT-2's map from bytes to printable code points, in which
// byte-level BPE vocabularies (HF vocab.json / tokenizer.json, GGUF `tokens`)
// write their tokens: printable Latin-1 bytes stand for themselves, the others
// (controls, space, 0x7F-0xA0, 0xAD) for U+0100 onwards in byte order, so a
// space is "Ġ" (U+0120).
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace stc {

// The code point that stands for each byte.
const std::array<uint32_t, 256> &byteLevelAlphabet();
// A token's raw bytes written in the alphabet (UTF-8).
std::string byteLevelEncode(const std::string &bytes);
// The raw bytes of a token written in the alphabet; false if it holds a
// character outside it (or is not UTF-8).
bool byteLevelDecode(const std::string &text, std::string &bytes);

} // namespace stc
