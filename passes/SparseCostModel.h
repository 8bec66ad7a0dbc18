// st-sparse-reglu's cost model (its auto mode): per expert a decoded token
// reads every gate row, and with the sparse kernels the up and down rows of
// the live neurons only, each such byte costing `liveRowCost` times a streamed
// one (a target property, TargetInfo::liveRowCost). Header-only and free of
// MLIR so that the unit tests check the choice directly.
#pragma once

namespace stc::st {

struct SparseCost {
  double dense = 0, sparse = 0; // streamed-byte equivalents per expert
  double ratio() const { return dense > 0 ? sparse / dense : 1; }
};

// Bytes of one expert's gate, up and down matrices; `dead` the share of its
// neurons with relu(gate) = 0.
inline SparseCost sparseCost(double dead, double gateBytes, double upBytes,
                             double downBytes, double liveRowCost) {
  SparseCost c;
  c.dense = gateBytes + upBytes + downBytes;
  c.sparse = gateBytes + (1 - dead) * (upBytes + downBytes) * liveRowCost;
  return c;
}

// The sparse path also lists the live neurons and quantizes the activations
// in two orders: it must win by this margin.
constexpr double kSparseMargin = 0.95;

inline bool sparsePays(const SparseCost &c) {
  return c.sparse < kSparseMargin * c.dense;
}

} // namespace stc::st
