// The tokenizer's place in the model file: TokenizerData to and from the
// schema's Tokenizer table (the writer is the compiler's, the reader the
// runtime's; one file keeps the two in step).
#pragma once

#include "Tokenizer.h"
#include "model_generated.h"

#include <string>

namespace stc::rt {

flatbuffers::Offset<model::Tokenizer>
buildTokenizer(flatbuffers::FlatBufferBuilder &b, const TokenizerData &d);

// Checks the table's vectors agree with each other (the rest is
// Tokenizer::init's) and fills `out`.
bool readTokenizer(const model::Tokenizer &t, TokenizerData &out,
                   const std::string &where, std::string &error);

} // namespace stc::rt
