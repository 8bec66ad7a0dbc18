// openTokenizer: the tokenizer (and chat template) of an out/ folder or a
// model.stcm (the copy in the model file), else of a checkpoint, else of
// tokenizer files alone (stc synth --tokenizer-only). Shared by the
// subcommands that tokenize: tokenize, detokenize, chat-template,
// json-schema.
#pragma once

#include "Tokenizer.h"

#include <string>

namespace stc {
bool openTokenizer(const std::string &path, rt::Tokenizer &tok,
                   std::string &error);
} // namespace stc
