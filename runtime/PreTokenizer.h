// The pre-tokenizer split of Qwen2-family tokenizers, the regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}
//   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// written out as code (leftmost-first alternation with the backtracking each
// alternative implies), over code points.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace stc::rt {

// Splits the code points `cps` into pieces [begin, end) (code point indices).
void splitQwen2(const std::vector<uint32_t> &cps,
                std::vector<std::pair<uint32_t, uint32_t>> &pieces);

// Whether `name` is a pre-tokenizer this runtime implements ("qwen2").
bool knownPreTokenizer(const std::string &name);

} // namespace stc::rt
