// A profile of the wrong shape is an error naming what was expected.
// RUN: stc-opt %s --st-neuron-layout --verify-diagnostics
st.weight @g : tensor<1x2x64xf32> extents [#st.extent<"m", 0, 512>] {quant = "f32"}
st.weight @d : tensor<1x64x2xf32> extents [#st.extent<"m", 0, 512>] {quant = "f32"}
func.func @bad(%h: tensor<?x64xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi32>) -> tensor<?x64xf32> {
  %g = st.load_weight @g : tensor<1x2x64xf32>
  %d = st.load_weight @d : tensor<1x64x2xf32>
  // expected-error @+1 {{neuron_firing must be [experts, ffn] = [1, 2], got 'tensor<1x3xf32>'}}
  %y = st.moe %h, %w, %i, %g, %g, %d {layer = 0 : i64, neuron_firing = dense<[[0.1, 0.8, 0.3]]> : tensor<1x3xf32>, sparse_reglu} : (tensor<?x64xf32>, tensor<?x1xf32>, tensor<?x1xi32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>, tensor<1x64x2xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
