// KernelSet: which AOT kernels a model's plan calls. The compiler generates and
// links only those (a pure-f32 model carries no int8 kernel; the others become
// stubs, named in stc_absent_kernels), and the runtime checks at load that none
// the model needs is a stub (Runtime::load).
#pragma once

#include "ModelFile.h"

#include <string>
#include <vector>

namespace stc::rt {

// Whether a head shape takes the attention kernel specialized for head_dim 128
// (stc_attention_hd128): an even number of query heads per KV head, as it
// takes two at a time.
bool attentionHd128(int headDim, int heads, int kvHeads);

// The kernel functions ("stc_gemm_q4_0", ...) the plan of `m` may call, from
// its weights' types and layouts (a superset: every path a step can take,
// prefill, decode and the expert cache alike).
std::vector<std::string> kernelsFor(const model::Model &m);

} // namespace stc::rt
