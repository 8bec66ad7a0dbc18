// CalibrationForward: the forward pass `stc compile`'s sparsity calibration
// runs. The reference's semantics (spec §2.2, the checkpoint's convention, the
// compiled kernels' Q8_0 rounding of matmul inputs) and its helpers (norm,
// RoPE, routing, masks), but every calibration sequence at once, layer by
// layer: each weight is read and dequantized once for all the sequences, each
// matrix row multiplies every token that needs it, in f32 with vector partial
// sums, on every core. The reference reads a layer's weights again for each
// sequence and sums in double, one value at a time: 256 tokens of the 21B
// shape took it 12 minutes. Only the gate pre-activations leave (the sparsity
// statistics); the oracle of the tests stays the reference, and a unit test
// holds the two passes' gates together.
#pragma once

#include "formats/Checkpoint.h"
#include "formats/Status.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace stc {

// Runs `sequences` (each from position 0) and calls `onGate(layer, expert,
// gate)` with every routed (token, expert) pair's F gate pre-activations,
// from one thread, in token then routing order.
Status calibrationForward(
    const Checkpoint &ck, const std::vector<std::vector<int64_t>> &sequences,
    const std::function<void(int64_t layer, int64_t expert, const float *gate)>
        &onGate);

} // namespace stc
