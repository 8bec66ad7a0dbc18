// CApiTools.h: what the tools built on the C API alone (stc-run, stc-serve)
// share: the loading options their flags set, and a text's ids appended in one
// call.
#ifndef STC_TOOLS_CAPITOOLS_H
#define STC_TOOLS_CAPITOOLS_H

#include "stc_runtime.h"

#include <cstdint>
#include <string>
#include <vector>

namespace stc::tools {

// --threads, --ctx, --lazy, --memory-budget, --experts-from-storage,
// --shared-mapping, --kv-type; the sequences a tool makes.
struct LoadFlags {
  int threads = 0, ctx = 0, sequences = 0;
  int kvType = STC_KV_MODEL;
  bool lazy = false, fromStorage = false, sharedMapping = false;
  uint64_t budget = 0;

  stc_options options() const {
    stc_options o = {};
    o.threads = threads;
    o.max_context = ctx;
    o.lazy = lazy ? 1 : 0;
    o.memory_budget = budget;
    o.experts_from_storage = fromStorage ? 1 : 0;
    o.shared_mapping = sharedMapping ? 1 : 0;
    o.kv_type = kvType;
    o.max_sequences = sequences;
    return o;
  }
};

// --kv-type's names: f32, f16, q8_0; false for another.
inline bool parseKvTypeFlag(const std::string &name, int &kvType) {
  kvType = name == "f32"    ? STC_KV_F32
           : name == "f16"  ? STC_KV_F16
           : name == "q8_0" ? STC_KV_Q8_0
                            : -1;
  return kvType >= 0;
}

// Appends the ids of `text` to `out`; control tokens are matched only with
// `special`. False (stc_last_error says why) on invalid UTF-8 or a model
// without a tokenizer.
inline bool appendTokens(stc_model *m, const std::string &text, bool special,
                         std::vector<int32_t> &out) {
  // Byte-level BPE gives at most one id per byte (and a bos): one call fills.
  std::vector<int32_t> ids(text.size() + 2);
  const int n = stc_tokenize(m, text.data(), text.size(), ids.data(),
                             static_cast<int>(ids.size()), special ? 1 : 0);
  if (n < 0 || n > static_cast<int>(ids.size()))
    return false;
  out.insert(out.end(), ids.begin(), ids.begin() + n);
  return true;
}

} // namespace stc::tools

#endif
