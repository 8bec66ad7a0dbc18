// RUN: stc-opt %s --split-input-file --st-sparse-reglu | FileCheck %s
// RUN: stc-opt %s --split-input-file --st-sparse-reglu --st-lower-to-kernels | FileCheck %s --check-prefix=LOWERED

// A q4_0 expert block: up becomes blocks16 (rows alone), down transposed (one row per
// neuron), the moe sparse_reglu; the gate keeps the dense layout st-lower-to-kernels
// gives it, and the moe lowers to the sparse_reglu kernel.
// CHECK-LABEL: st.weight @g : tensor<4x64x128xf32>
// CHECK-NOT: layout
// CHECK-SAME: {quant = "q4_0"}
// CHECK: st.weight @u : tensor<4x64x128xf32> extents {{.*}} {layout = "blocks16", quant = "q4_0"}
// CHECK: st.weight @d : tensor<4x128x64xf32> extents {{.*}} {layout = "transposed", quant = "q4_0"}
// CHECK: st.moe {{.*}} {layer = 0 : i64, sparse_reglu}
// LOWERED-DAG: st.weight @g : tensor<4x64x128x!st.q4_0> from tensor<4x64x128xf32> extents {{.*}} {layout = "rows16", quant = "q4_0"}
// LOWERED-DAG: st.weight @u : tensor<4x64x128x!st.q4_0> from tensor<4x64x128xf32> extents {{.*}} {layout = "blocks16", quant = "q4_0"}
// LOWERED-DAG: st.weight @d : tensor<4x128x64x!st.q4_0> from tensor<4x128x64xf32> extents {{.*}} {layout = "transposed", quant = "q4_0"}
// LOWERED: st.kernel "moe"["sparse_reglu"]
st.weight @g : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "q4_0"}
st.weight @u : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "q4_0"}
st.weight @d : tensor<4x128x64xf32> extents [#st.extent<"m", 0, 131072>] {quant = "q4_0"}
func.func @moe(%h: tensor<?x128xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x128xf32> {
  %g = st.load_weight @g : tensor<4x64x128xf32>
  %u = st.load_weight @u : tensor<4x64x128xf32>
  %d = st.load_weight @d : tensor<4x128x64xf32>
  %y = st.moe %h, %w, %i, %g, %u, %d {layer = 0 : i64} : (tensor<?x128xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x128xf32>, tensor<4x64x128xf32>, tensor<4x128x64xf32>) -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

// f32 experts: up stays row-major (its rows are already contiguous), down is
// transposed; the runtime's f32 path reads them.
// CHECK-LABEL: st.weight @u : tensor<4x64x128xf32> extents {{.*}} {layout = "row_major", quant = "f32"}
// CHECK: st.weight @d : tensor<4x128x64xf32> extents {{.*}} {layout = "transposed", quant = "f32"}
// CHECK: sparse_reglu
st.weight @g : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "f32"}
st.weight @u : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "f32"}
st.weight @d : tensor<4x128x64xf32> extents [#st.extent<"m", 0, 131072>] {quant = "f32"}
func.func @moe(%h: tensor<?x128xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x128xf32> {
  %g = st.load_weight @g : tensor<4x64x128xf32>
  %u = st.load_weight @u : tensor<4x64x128xf32>
  %d = st.load_weight @d : tensor<4x128x64xf32>
  %y = st.moe %h, %w, %i, %g, %u, %d {layer = 0 : i64} : (tensor<?x128xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x128xf32>, tensor<4x64x128xf32>, tensor<4x128x64xf32>) -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

// Left dense: f16 experts (no sparse kernel reads f16), and quantized experts whose
// hidden size (96) is not a multiple of the down kernel's 64-output chunk.
// CHECK-LABEL: st.weight @u : tensor<4x64x128xf32>
// CHECK-NOT: layout
// CHECK: st.moe
// CHECK-NOT: sparse_reglu
// CHECK: st.weight @u2 : tensor<4x64x96xf32>
// CHECK-NOT: layout
// CHECK: st.moe
// CHECK-NOT: sparse_reglu
st.weight @u : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "f16"}
st.weight @d : tensor<4x128x64xf32> extents [#st.extent<"m", 0, 131072>] {quant = "f16"}
func.func @f16(%h: tensor<?x128xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x128xf32> {
  %u = st.load_weight @u : tensor<4x64x128xf32>
  %d = st.load_weight @d : tensor<4x128x64xf32>
  %y = st.moe %h, %w, %i, %u, %u, %d {layer = 0 : i64} : (tensor<?x128xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x128xf32>, tensor<4x64x128xf32>, tensor<4x128x64xf32>) -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}
st.weight @u2 : tensor<4x64x96xf32> extents [#st.extent<"m", 0, 98304>] {quant = "q4_0"}
st.weight @d2 : tensor<4x96x64xf32> extents [#st.extent<"m", 0, 98304>] {quant = "q4_0"}
func.func @narrow(%h: tensor<?x96xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x96xf32> {
  %u = st.load_weight @u2 : tensor<4x64x96xf32>
  %d = st.load_weight @d2 : tensor<4x96x64xf32>
  %y = st.moe %h, %w, %i, %u, %u, %d {layer = 0 : i64} : (tensor<?x96xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x96xf32>, tensor<4x64x96xf32>, tensor<4x96x64xf32>) -> tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}
