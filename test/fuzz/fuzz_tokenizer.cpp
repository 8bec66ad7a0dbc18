// Fuzzes the tokenizer.json reader (JSON, the pipeline checks, vocab, merges,
// added tokens) and, for what it accepts, the runtime tokenizer's checks and
// encoding of a few texts, including the input itself where it is UTF-8.
#include "FuzzUtil.h"
#include "Tokenizer.h"
#include "formats/TokenizerImport.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string dir = stc::fuzz::scratchPath("tokenizer");
  static const bool made = stc::makeDirectories(dir).ok();
  (void)made;
  stc::fuzz::writeInput(stc::joinPath(dir, "tokenizer.json"), data, size);
  stc::rt::TokenizerData d;
  bool found = false;
  if (!stc::importTokenizerAlone(dir, d, found).ok() || !found)
    return 0;
  stc::rt::Tokenizer t;
  std::string error;
  if (!t.init(d, "fuzz", error))
    return 0;
  std::vector<int32_t> ids;
  const std::string input(reinterpret_cast<const char *>(data), size);
  for (const std::string &text :
       {std::string("it's a 123 test\n\n  <|im_end|>"), input}) {
    ids.clear();
    if (t.encode(text, true, ids, error))
      (void)t.decode(ids.data(), ids.size());
  }
  return 0;
}
