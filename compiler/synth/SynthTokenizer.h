// SynthTokenizer: the tokenizer that synthetic checkpoints carry. Byte-level
// BPE with Qwen2's split, its merges learned from the corpus in
// compiler/synth/corpus/ (checksummed: the synthetic tokenizers change only
// when the corpus is changed on purpose), then filled to the preset's vocab
// by a fixed rule; special tokens at Qwen's ids (or the top of a small vocab).
// Written as HF files (tokenizer.json, tokenizer_config.json,
// generation_config.json) or as GGUF tokenizer.ggml.* keys.
#pragma once

#include "formats/Gguf.h"
#include "formats/ModelConfig.h"
#include "formats/Status.h"

#include "Tokenizer.h"

#include <string>

namespace stc {

// The synthetic tokenizer of a preset's config (its vocab_size, bos and eos
// ids).
Status synthTokenizer(const ModelConfig &c, rt::TokenizerData &out);
// Where the preset's special tokens go: <|endoftext|> (bos, pad, eos),
// <|im_start|>, <|im_end|> (eos).
void synthSpecialIds(int64_t vocabSize, int64_t &endOfText, int64_t &imStart,
                     int64_t &imEnd);

// The HF tokenizer files into `dir`.
Status writeHfTokenizer(const rt::TokenizerData &t, const std::string &dir);
// The tokenizer.ggml.* keys.
void addGgufTokenizer(const rt::TokenizerData &t, GgufWriter &w);

} // namespace stc
