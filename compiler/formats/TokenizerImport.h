// TokenizerImport: the tokenizer of a checkpoint, as the runtime's
// TokenizerData. HF folder: tokenizer.json (else vocab.json + merges.txt), with
// tokenizer_config.json and generation_config.json; GGUF: the tokenizer.ggml.*
// keys. Only byte-level BPE with the Qwen2 split is accepted; anything else is
// an error naming the file and the entry.
#pragma once

#include "Checkpoint.h"
#include "Status.h"
#include "Tokenizer.h"

#include <string>

namespace stc {

// The exact regex of Qwen2's `Split` pre-tokenizer (spec section 4).
extern const char *const kQwen2SplitRegex;

// `found` is false (and `out` untouched) when the checkpoint has no tokenizer:
// an HF folder without tokenizer files, a GGUF without tokenizer.ggml.model.
// The token table is padded to the model's vocab_size with Unused ids.
Status importTokenizer(const Checkpoint &ckpt, rt::TokenizerData &out,
                       bool &found);
// The tokenizer files of `path` (an HF folder or a GGUF) without a model: as
// many ids as the tokenizer has, bos and eos from its own files only.
Status importTokenizerAlone(const std::string &path, rt::TokenizerData &out,
                            bool &found);

} // namespace stc
