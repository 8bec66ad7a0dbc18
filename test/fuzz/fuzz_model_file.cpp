// Fuzzes the runtime's model-file loader: magic, FlatBuffers verification,
// config limits, tensor bounds and plan indices; then walks the verified plan
// as the executor does, which must be safe for anything the verifier accepts.
#include "FuzzUtil.h"
#include "ModelFile.h"
#include "TokenizerFile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string path = stc::fuzz::scratchPath("model.stcm");
  stc::fuzz::writeInput(path, data, size);
  stc::rt::ModelFile file;
  std::string error;
  if (!file.open(path, error))
    return 0;
  const auto *m = file.model();
  if (m->tokenizer()) {
    stc::rt::TokenizerData d;
    stc::rt::Tokenizer t;
    if (stc::rt::readTokenizer(*m->tokenizer(), d, path, error))
      (void)t.init(d, path, error);
  }
  uint64_t sum = 0;
  for (const auto *s : *m->steps()) {
    for (auto *list : {s->inputs(), s->outputs(), s->weights()})
      if (list)
        for (int32_t i : *list)
          sum += static_cast<uint64_t>(i);
    if (s->weights())
      for (int32_t i : *s->weights()) {
        const auto *t = m->tensors()->Get(i);
        const uint8_t *p = file.tensorData(t);
        if (t->size() > 0)
          sum += p[0] + p[t->size() - 1]; // first and last byte are in bounds
      }
  }
  return static_cast<int>(sum & 0);
}
