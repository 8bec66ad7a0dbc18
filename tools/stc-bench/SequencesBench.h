// SequencesBench: stc-bench --sequences, the aggregate speed of several
// sequences advanced together in batched steps (Runtime::evalBatch).
#pragma once

#include "Runtime.h"

#include <string>
#include <vector>

namespace stc::bench {

// "1,2,4,8" into counts (each at least 1); false for anything else.
bool parseCounts(const std::string &text, std::vector<int> &counts);

// For each count N: N sequences, each prefilled with `prompt` random ids in
// one batched evaluation, then `gen` steps of one random id each; prints the
// aggregate prefill and decode tok/s, ms per decode step (each sequence's
// time per token) and the distinct experts a decode step routes to. False
// (with the error on stderr) when the model cannot run them. `profile` (a
// runtime loaded with profiling): where a decode step's time goes, per count.
bool benchSequences(stc::rt::Runtime &rt, const std::vector<int> &counts,
                    int prompt, int gen, bool json, bool profile);

} // namespace stc::bench
