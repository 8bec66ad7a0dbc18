// RUN: stc-opt %s --split-input-file --st-neuron-layout | FileCheck %s
// RUN: stc-opt %s --split-input-file --st-neuron-layout --st-lower-to-kernels | FileCheck %s --check-prefix=LOWERED

// A sparse moe with a calibrated profile: each expert's neurons are ordered by
// decreasing firing frequency (ties: lower index first), the order recorded, the
// profile permuted with it; nothing else changes (the weights, their layouts and the
// op's other attributes are as before; the model writer applies the order). The hot
// prefix (neurons firing for half the tokens or more) is summarized for the report.
// CHECK-LABEL: st.weight @g : tensor<2x4x64xf32> extents [#st.extent<"m", 0, 2048>] {quant = "f32"}
// CHECK-NEXT: st.weight @u : tensor<2x4x64xf32> extents [#st.extent<"m", 0, 2048>] {layout = "row_major", quant = "f32"}
// CHECK-NEXT: st.weight @d : tensor<2x64x4xf32> extents [#st.extent<"m", 0, 2048>] {layout = "transposed", quant = "f32"}
// CHECK: st.moe %arg0, %arg1, %arg2, %0, %1, %2 {dead_share = 6.250000e-01 : f64, hot_live_share = 0.{{[0-9]+}} : f64, hot_prefix = 1.500000e+00 : f64, layer = 0 : i64,
// CHECK-SAME: neuron_firing = dense<{{\[\[}}8.000000e-01, 5.000000e-01, 1.000000e-01, 0.000000e+00], [7.500000e-01, 2.500000e-01, 2.500000e-01, 0.000000e+00]]> : tensor<2x4xf32>
// CHECK-SAME: neuron_order = dense<{{\[\[}}1, 2, 0, 3], [0, 2, 3, 1]]> : tensor<2x4xi32>, sparse_reglu}
// The order travels with the moe kernel to the model writer.
// LOWERED: st.kernel "moe"["sparse_reglu"] {{.*}} {dead_share = 6.250000e-01 : f64, hot_live_share = {{.*}}, hot_prefix = {{.*}}, layer = 0 : i64, neuron_order = dense<{{\[\[}}1, 2, 0, 3], [0, 2, 3, 1]]> : tensor<2x4xi32>}
st.weight @g : tensor<2x4x64xf32> extents [#st.extent<"m", 0, 2048>] {quant = "f32"}
st.weight @u : tensor<2x4x64xf32> extents [#st.extent<"m", 0, 2048>] {layout = "row_major", quant = "f32"}
st.weight @d : tensor<2x64x4xf32> extents [#st.extent<"m", 0, 2048>] {layout = "transposed", quant = "f32"}
func.func @moe(%h: tensor<?x64xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi32>) -> tensor<?x64xf32> {
  %g = st.load_weight @g : tensor<2x4x64xf32>
  %u = st.load_weight @u : tensor<2x4x64xf32>
  %d = st.load_weight @d : tensor<2x64x4xf32>
  %y = st.moe %h, %w, %i, %g, %u, %d {dead_share = 0.625 : f64, layer = 0 : i64, neuron_firing = dense<[[0.1, 0.8, 0.5, 0.0], [0.75, 0.0, 0.25, 0.25]]> : tensor<2x4xf32>, sparse_reglu} : (tensor<?x64xf32>, tensor<?x1xf32>, tensor<?x1xi32>, tensor<2x4x64xf32>, tensor<2x4x64xf32>, tensor<2x64x4xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// A dense moe (st-sparse-reglu left it so) and a sparse one without a profile are
// not touched.
// CHECK-LABEL: func.func @untouched
// CHECK: st.moe {{.*}} {layer = 0 : i64, neuron_firing = dense<{{\[\[}}1.000000e-01, 8.000000e-01]]> : tensor<1x2xf32>}
// CHECK: st.moe {{.*}} {layer = 1 : i64, sparse_reglu}
st.weight @g : tensor<1x2x64xf32> extents [#st.extent<"m", 0, 512>] {quant = "f32"}
st.weight @d : tensor<1x64x2xf32> extents [#st.extent<"m", 0, 512>] {quant = "f32"}
func.func @untouched(%h: tensor<?x64xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi32>) -> tensor<?x64xf32> {
  %g = st.load_weight @g : tensor<1x2x64xf32>
  %d = st.load_weight @d : tensor<1x64x2xf32>
  %y = st.moe %h, %w, %i, %g, %g, %d {layer = 0 : i64, neuron_firing = dense<[[0.1, 0.8]]> : tensor<1x2xf32>} : (tensor<?x64xf32>, tensor<?x1xf32>, tensor<?x1xi32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<1x64x2xf32>) -> tensor<?x64xf32>
  %z = st.moe %y, %w, %i, %g, %g, %d {layer = 1 : i64, sparse_reglu} : (tensor<?x64xf32>, tensor<?x1xf32>, tensor<?x1xi32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<1x64x2xf32>) -> tensor<?x64xf32>
  return %z : tensor<?x64xf32>
}

