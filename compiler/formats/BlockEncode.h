// BlockEncode: valid blocks of ggml's other block types (Q4_1, Q5_0, Q5_1,
// Q2_K-Q6_K, IQ4_NL, IQ4_XS) from f32, by the plainest rule (not ggml's
// search for the best scales): what stc synth writes for those --dtype values.
#pragma once

#include "DType.h"

#include <cstdint>

namespace stc {

// Encodes `count` values (whole blocks) of `src` as `t`; false for a type this
// does not encode (f32, f16, bf16, Q8_0, Q4_0: DType's quantize does those).
bool encodeBlocks(DType t, const float *src, void *dst, uint64_t count);

} // namespace stc
