// RUN: stc-opt %s --st-route-ahead | FileCheck %s
// RUN: stc-opt %s --st-route-ahead --st-lower-to-kernels | FileCheck %s --check-prefix=LOWERED

// A router written after attention moves up to just after its input's definition,
// above the attention norm, and is marked route_ahead; lowered, it is one dispatch
// kernel (no separate router gemm and route).
// CHECK-LABEL: func.func @layer
// CHECK: %[[X:.+]] = st.embedding
// CHECK-NEXT: st.load_weight @r
// CHECK-NEXT: %{{.+}}, %{{.+}} = st.router %[[X]], %{{.+}} {layer = 0 : i64, route_ahead, top_k = 2 : i64, weighting = #st<weighting softmax>}
// CHECK-NEXT: st.load_weight @n
// CHECK-NEXT: st.rms_norm %[[X]]
// CHECK: st.attention
// CHECK-NOT: st.router

// LOWERED: %[[D:.+]]:2 = st.kernel "dispatch"["gemm_f32"] (%{{.+}}, %{{.+}}) {layer = 0 : i64, top_k = 2 : i64, weighting = "softmax"} : (tensor<?x32xf32>, tensor<4x32xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
// LOWERED-NOT: "route"
// LOWERED: st.kernel "moe"["runtime"] (%{{.+}}, %[[D]]#0, %[[D]]#1
st.weight @e : tensor<64x32xf32> extents [#st.extent<"m", 0, 8192>]
st.weight @n : tensor<32xf32> extents [#st.extent<"m", 0, 128>]
st.weight @r : tensor<4x32xf32> extents [#st.extent<"m", 0, 512>]
st.weight @wq : tensor<32x32xf32> extents [#st.extent<"m", 0, 4096>]
st.weight @wk : tensor<16x32xf32> extents [#st.extent<"m", 0, 2048>]
st.weight @g : tensor<4x32x32xf32> extents [#st.extent<"m", 0, 16384>]
func.func @layer(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x32xf32> {
  %e = st.load_weight @e : tensor<64x32xf32>
  %x = st.embedding %ids, %e : (tensor<?xi32>, tensor<64x32xf32>) -> tensor<?x32xf32>
  %n = st.load_weight @n : tensor<32xf32>
  %h = st.rms_norm %x, %n {eps = 1.0e-06 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %wq = st.load_weight @wq : tensor<32x32xf32>
  %wk = st.load_weight @wk : tensor<16x32xf32>
  %a = st.attention %h, %pos, %wq, %wk, %wk, %wq {head_dim = 8 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = 0 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %x1 = st.add %x, %a : tensor<?x32xf32>
  %r = st.load_weight @r : tensor<4x32xf32>
  %w, %i = st.router %x, %r {layer = 0 : i64, top_k = 2 : i64, weighting = #st<weighting softmax>} : (tensor<?x32xf32>, tensor<4x32xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  %g = st.load_weight @g : tensor<4x32x32xf32>
  %y = st.moe %x1, %w, %i, %g, %g, %g {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x32x32xf32>, tensor<4x32x32xf32>, tensor<4x32x32xf32>) -> tensor<?x32xf32>
  %x2 = st.add %x1, %y : tensor<?x32xf32>
  return %x2 : tensor<?x32xf32>
}
