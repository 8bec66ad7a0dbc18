// RUN: stc-opt %s --st-expert-cache-plan=budget=1048576 | FileCheck %s
// RUN: stc-opt %s --st-expert-cache-plan | FileCheck %s --check-prefix=NONE
// RUN: not stc-opt %s --st-expert-cache-plan=budget=20000 2>&1 | FileCheck %s --check-prefix=SMALL

// Dense weights: 64x32 f32 = 8 KiB. Experts: 4 per tensor, each 32x32 q4_0 = 576 bytes
// stored as one 4 KiB page; top-2 x (gate, up, down) = 24 KiB. Minimum 32 KiB.
// CHECK: module attributes {st.memory_budget = 1048576 : i64}
// NONE-NOT: st.memory_budget
// SMALL: error: memory budget 0.0 MiB is below the minimum 0.0 MiB: dense weights 0.0 MiB plus one layer's 2 active experts 0.0 MiB
st.weight @e : tensor<64x32xf32> extents [#st.extent<"m", 0, 8192>]
st.weight @g : tensor<4x32x32x!st.q4_0> extents [#st.extent<"m", 0, 2304>]
func.func @f(%x: tensor<?x32xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x32xf32> {
  %g = st.load_weight @g : tensor<4x32x32x!st.q4_0>
  %y = st.kernel "moe"["runtime"] (%x, %w, %i, %g, %g, %g) {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x32x32x!st.q4_0>, tensor<4x32x32x!st.q4_0>, tensor<4x32x32x!st.q4_0>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
