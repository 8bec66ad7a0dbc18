// Fuzzes the GGUF reader, the smallthinker.* metadata rules and the checkpoint
// view built on them (tensor table, shapes, bounds).
#include "FuzzUtil.h"
#include "formats/Checkpoint.h"
#include "formats/TokenizerImport.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string path = stc::fuzz::scratchPath("model.gguf");
  stc::fuzz::writeInput(path, data, size);
  stc::Checkpoint ck;
  if (stc::Checkpoint::open(path, ck).ok()) {
    stc::rt::TokenizerData tokenizer;
    bool found = false;
    (void)stc::importTokenizer(ck, tokenizer, found);
  }
  if (stc::Checkpoint::open(path, ck).ok() && !ck.weights.empty()) {
    // Read a little of the first weight the way the reference does.
    const stc::WeightInfo &w = ck.weights.front();
    // One block of any type (256 elements for the K types).
    uint64_t n = std::min<uint64_t>(w.numElements(), 256);
    n -= n % stc::blockElements(w.dtype);
    std::vector<float> out(n);
    if (n > 0)
      (void)ck.readF32(w, 0, n, out.data());
  }
  return 0;
}
