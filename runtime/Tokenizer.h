// Tokenizer: the byte-level BPE of Qwen2-family checkpoints (SmallThinker's),
// with the semantics of the checkpoint's own tokenizer: Hugging Face
// `tokenizers` for an HF folder (NFC normalizer, added tokens matched
// leftmost-longest), llama.cpp for a GGUF (no normalizer, special tokens
// matched longest first). One implementation for the runtime and the compiler's
// tools; its data lives in the model file (TokenizerData).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace stc::rt {

// Normal: a BPE token. Control: a special token (HF added token with special:
// true; GGUF type 3), matched in text only with special parsing. UserDefined:
// an added token matched in text always (HF special: false; GGUF type 4).
// Unused: an id with no text (padding rows of the embedding; GGUF type 5).
enum class TokenKind : uint8_t { Normal, Control, UserDefined, Unused };
enum class TokenizerSemantics : uint8_t { HuggingFace, LlamaCpp };

struct TokenizerData {
  TokenizerSemantics semantics = TokenizerSemantics::HuggingFace;
  bool nfc = false;          // normalize plain text to NFC before the split
  std::string pre = "qwen2"; // the pre-tokenizer split
  bool ignoreMerges = false; // a piece that is a whole token skips BPE
  std::vector<std::string> tokens; // raw bytes of each id ("" when Unused)
  std::vector<TokenKind> kinds;
  // BPE merges in rank order: (left id, right id, merged id).
  std::vector<std::array<int32_t, 3>> merges;
  int32_t bos = -1, pad = -1;
  bool addBos = false;
  std::vector<int32_t> eos; // every id that ends generation
  std::string chatTemplate;
  // generation_config.json's sampling defaults; negative when absent.
  float temperature = -1, topP = -1;
  int32_t topK = -1;
};

const char *semanticsName(TokenizerSemantics s);

class Tokenizer {
public:
  Tokenizer();
  ~Tokenizer();
  // Checks the data (ids in range, merges naming existing tokens, every byte a
  // token) and builds the lookup tables. `where` names the source in errors.
  bool init(TokenizerData data, const std::string &where, std::string &error);
  const TokenizerData &data() const { return data_; }
  int32_t size() const { return static_cast<int32_t>(data_.tokens.size()); }

  // Appends the ids of `text` (UTF-8) to `ids`. `parseSpecial`: control tokens
  // written in the text are matched (user-defined ones always are), except
  // at the byte offsets `blocked` marks (a chat template's rendering: the
  // tokens its messages wrote are text). Invalid UTF-8 is an error naming its
  // byte offset.
  bool encode(const std::string &text, bool parseSpecial,
              std::vector<int32_t> &ids, std::string &error,
              const std::vector<bool> *blocked = nullptr) const;
  // Every added token's text (control and user-defined).
  std::vector<std::string> addedTokens() const;
  // The bytes of one token (a piece of a UTF-8 character for some).
  const std::string &piece(int32_t id) const;
  // The text of `ids`: their bytes, with each invalid or unfinished UTF-8
  // sequence replaced by U+FFFD (as Hugging Face's decode does).
  std::string decode(const int32_t *ids, size_t n) const;
  // The id of a token written exactly as `text`, or -1.
  int32_t find(const std::string &text) const;
  bool isEos(int32_t id) const;

private:
  struct Tables;
  void splitSpecial(const std::string &text, bool parseSpecial,
                    const std::vector<bool> *blocked,
                    std::vector<std::pair<std::string, int32_t>> &out) const;
  void bpe(const std::string &piece, std::vector<int32_t> &ids) const;
  TokenizerData data_;
  std::unique_ptr<Tables> t_;
};

// Turns a stream of token bytes into complete UTF-8 characters: bytes wait
// until their character is complete; a sequence that cannot be valid becomes
// U+FFFD at once, one still unfinished at finish() too.
class Utf8Stream {
public:
  std::string push(const std::string &bytes);
  std::string finish();

private:
  std::string pending_;
};

// Replaces each maximal invalid subpart of `bytes` by U+FFFD.
std::string toValidUtf8(const std::string &bytes);

} // namespace stc::rt
