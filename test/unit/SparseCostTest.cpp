// st-sparse-reglu's auto mode: the per-layer choice its cost model makes
// (passes/SparseCostModel.h), for given dead shares and live-row costs. The
// pass applies exactly this rule (test/passes/st-sparse-reglu.mlir).
#include "passes/SparseCostModel.h"

#include <gtest/gtest.h>

#include <vector>

namespace {

using stc::st::sparseCost;
using stc::st::sparsePays;

// One expert of the 4B shape in q4_0: 768 x 1536 values per matrix.
constexpr double kMatrix = 768.0 * 1536 * 18 / 32;

TEST(SparseCostTest, PaperProfileWithCostTwo) {
  // stc synth --activation-sparsity paper on 32 layers: 0.95 in the first
  // quarter, 0.6 mid-depth, 0.5 last. With a live row costing twice a
  // streamed byte, sparse pays above 1 - (3 x 0.95 - 1) / 4 = 53.75% dead.
  const std::vector<std::pair<double, bool>> layers = {
      {0.95, true}, {0.80, true},  {0.62, true},
      {0.55, true}, {0.52, false}, {0.50, false}};
  for (const auto &[dead, sparse] : layers)
    EXPECT_EQ(sparsePays(sparseCost(dead, kMatrix, kMatrix, kMatrix, 2.0)),
              sparse)
        << "dead " << dead;
}

TEST(SparseCostTest, RatioIsBytesWeightedByTheLiveRowCost) {
  // gate + 0.3 * (up + down) * 2 over gate + up + down.
  const stc::st::SparseCost c = sparseCost(0.7, 100, 100, 100, 2.0);
  EXPECT_DOUBLE_EQ(c.dense, 300);
  EXPECT_DOUBLE_EQ(c.sparse, 100 + 0.3 * 200 * 2.0);
  EXPECT_DOUBLE_EQ(c.ratio(), 220.0 / 300);
}

TEST(SparseCostTest, CheaperLiveRowsMakeMoreLayersSparse) {
  // Random weights' ~50% dead: dense at cost 2 (auto == off on such a file),
  // sparse where a live row reads at streaming speed.
  EXPECT_FALSE(sparsePays(sparseCost(0.5, kMatrix, kMatrix, kMatrix, 2.0)));
  EXPECT_TRUE(sparsePays(sparseCost(0.5, kMatrix, kMatrix, kMatrix, 1.0)));
  // Nothing dead never pays, whatever the cost.
  EXPECT_FALSE(sparsePays(sparseCost(0.0, kMatrix, kMatrix, kMatrix, 1.0)));
}

TEST(SparseCostTest, ByteSizesOfEachMatrixCount) {
  // An f32 gate (4 bytes a value) with q4_0 up/down: the gate dominates both
  // sides, so the same dead share saves a smaller share of the time.
  const double gateF32 = 768.0 * 1536 * 4;
  const stc::st::SparseCost q = sparseCost(0.6, kMatrix, kMatrix, kMatrix, 2.0);
  const stc::st::SparseCost f = sparseCost(0.6, gateF32, kMatrix, kMatrix, 2.0);
  EXPECT_LT(q.ratio(), f.ratio());
}

} // namespace
