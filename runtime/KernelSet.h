// KernelSet: which AOT kernels a model's plan calls. The compiler generates and
// links only those (a pure-f32 model carries no int8 kernel; the others become
// stubs, named in stc_absent_kernels), and the runtime checks at load that none
// the model needs is a stub (Runtime::load).
#pragma once

#include "ModelFile.h"

#include <string>
#include <vector>

namespace stc::rt {

// The attention kernels a KV cache of `type` calls: for head_dim 128 the
// decode and the prefill-tile kernels specialized for it, else the generic one.
std::vector<std::string> attentionKernels(model::KvType type, int headDim);

// The kernel functions ("stc_gemm_q4_0", ...) the plan of `m` may call, from
// its weights' types and layouts (a superset: every path a step can take,
// prefill, decode and the expert cache alike).
std::vector<std::string> kernelsFor(const model::Model &m);

} // namespace stc::rt
