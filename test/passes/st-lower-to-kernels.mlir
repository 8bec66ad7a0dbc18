// RUN: stc-opt %s --split-input-file --verify-diagnostics --st-lower-to-kernels | FileCheck %s

// One layer with RoPE: the router becomes gemm + route, attention becomes q/k/v gemms,
// rope on q and k, the attention kernel and the output gemm; quantized weights get
// their storage type (the source type kept on record) and the rows16 layout.

// CHECK-DAG: st.weight @wq : tensor<32x32x!st.q4_0> from tensor<32x32xbf16> extents {{.*}} {layout = "rows16", quant = "q4_0"}
// CHECK-DAG: st.weight @r : tensor<4x32xf32> from tensor<4x32xbf16> extents {{.*}} {layout = "row_major", quant = "f32"}
// CHECK-DAG: st.weight @n : tensor<32xf32> extents {{.*}} {layout = "row_major"}
// CHECK-DAG: st.weight @g : tensor<4x32x32x!st.q8_0> from tensor<4x32x32xf32> extents {{.*}} {layout = "rows16", quant = "q8_0"}
// CHECK-LABEL: func.func @layer
// CHECK: %[[X:.+]] = st.kernel "embed"["runtime"] (%{{.+}}, %{{.+}}) {} : (tensor<?xi32>, tensor<64x32xf32>) -> tensor<?x32xf32>
// CHECK: %[[L:.+]] = st.kernel "gemm"["gemm_f32"] (%[[X]], %{{.+}}) {} : (tensor<?x32xf32>, tensor<4x32xf32>) -> tensor<?x4xf32>
// CHECK: %[[R:.+]]:2 = st.kernel "route"["runtime"] (%[[L]]) {layer = 0 : i64, top_k = 2 : i64, weighting = "sigmoid"}
// CHECK: %[[H:.+]] = st.kernel "rms_norm"["halide"] (%[[X]], %{{.+}}) {eps = 9.9999999999999995E-7 : f64}
// CHECK: %[[Q:.+]] = st.kernel "gemm"["gemm_q4_0"] (%[[H]], %{{.+}}) {} : (tensor<?x32xf32>, tensor<32x32x!st.q4_0>) -> tensor<?x32xf32>
// CHECK: %[[K:.+]] = st.kernel "gemm"["gemm_f16"] (%[[H]], %{{.+}})
// CHECK: %[[V:.+]] = st.kernel "gemm"["gemm_f32"] (%[[H]], %{{.+}})
// CHECK: %[[QR:.+]] = st.kernel "rope"["halide"] (%[[Q]], %{{.+}}) {head_dim = 8 : i64, heads = 4 : i64, theta = 1.000000e+04 : f64}
// CHECK: %[[KR:.+]] = st.kernel "rope"["halide"] (%[[K]], %{{.+}}) {head_dim = 8 : i64, heads = 2 : i64, theta = 1.000000e+04 : f64}
// CHECK: %[[A:.+]] = st.kernel "attention"["halide"] (%[[QR]], %[[KR]], %[[V]], %{{.+}}) {head_dim = 8 : i64, heads = 4 : i64, kv_heads = 2 : i64, kv_slots = 0 : i64, kv_type = "f32", layer = 0 : i64, window = 16 : i64}
// CHECK: %[[O:.+]] = st.kernel "gemm"["gemm_f32"] (%[[A]], %{{.+}})
// CHECK: %[[X1:.+]] = st.kernel "add"["runtime"] (%[[X]], %[[O]])
// CHECK: st.kernel "moe"["runtime"] (%{{.+}}, %[[R]]#0, %[[R]]#1, %{{.+}}, %{{.+}}, %{{.+}}) {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x32x32x!st.q8_0>, tensor<4x32x32x!st.q8_0>, tensor<4x32x32x!st.q8_0>)
// CHECK: st.kernel "gemm"["gemm_f32"]
// CHECK-NOT: st.lm_head
// CHECK-NOT: st.attention
st.weight @e : tensor<64x32xf32> extents [#st.extent<"m", 0, 8192>]
st.weight @n : tensor<32xf32> extents [#st.extent<"m", 0, 128>]
st.weight @r : tensor<4x32xbf16> extents [#st.extent<"m", 0, 256>] {quant = "f32"}
st.weight @wq : tensor<32x32xbf16> extents [#st.extent<"m", 0, 2048>] {quant = "q4_0"}
st.weight @wk : tensor<16x32xf32> extents [#st.extent<"m", 0, 2048>] {quant = "f16"}
st.weight @wv : tensor<16x32xf32> extents [#st.extent<"m", 0, 2048>]
st.weight @wo : tensor<32x32xf32> extents [#st.extent<"m", 0, 4096>]
st.weight @g : tensor<4x32x32xf32> extents [#st.extent<"m", 0, 16384>] {quant = "q8_0"}
st.weight @u : tensor<4x32x32xf32> extents [#st.extent<"m", 0, 16384>] {quant = "q8_0"}
st.weight @d : tensor<4x32x32xf32> extents [#st.extent<"m", 0, 16384>] {quant = "q8_0"}
func.func @layer(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  %e = st.load_weight @e : tensor<64x32xf32>
  %x = st.embedding %ids, %e : (tensor<?xi32>, tensor<64x32xf32>) -> tensor<?x32xf32>
  %r = st.load_weight @r : tensor<4x32xbf16>
  %w, %i = st.router %x, %r {layer = 0 : i64, top_k = 2 : i64, weighting = #st<weighting sigmoid>} : (tensor<?x32xf32>, tensor<4x32xbf16>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  %n = st.load_weight @n : tensor<32xf32>
  %h = st.rms_norm %x, %n {eps = 1.0e-06 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %wq = st.load_weight @wq : tensor<32x32xbf16>
  %wk = st.load_weight @wk : tensor<16x32xf32>
  %wv = st.load_weight @wv : tensor<16x32xf32>
  %wo = st.load_weight @wo : tensor<32x32xf32>
  %a = st.attention %h, %pos, %wq, %wk, %wv, %wo {head_dim = 8 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = 16 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xbf16>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %x1 = st.add %x, %a : tensor<?x32xf32>
  %g = st.load_weight @g : tensor<4x32x32xf32>
  %u = st.load_weight @u : tensor<4x32x32xf32>
  %d = st.load_weight @d : tensor<4x32x32xf32>
  %y = st.moe %x1, %w, %i, %g, %u, %d {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x32x32xf32>, tensor<4x32x32xf32>, tensor<4x32x32xf32>) -> tensor<?x32xf32>
  %x2 = st.add %x1, %y : tensor<?x32xf32>
  %l = st.lm_head %x2, %e : (tensor<?x32xf32>, tensor<64x32xf32>) -> tensor<?x64xf32>
  return %l : tensor<?x64xf32>
}

// -----

// NoPE layers get no rope kernels; a resumed kernel-level gemm follows an edited weight.
// CHECK-LABEL: func.func @nope
// CHECK-NOT: "rope"
// CHECK: st.kernel "attention"
// CHECK-LABEL: func.func @resumed
// CHECK: st.kernel "gemm"["gemm_q8_0"]
st.weight @wq : tensor<32x32xf32> extents [#st.extent<"m", 0, 4096>]
st.weight @wk : tensor<16x32xf32> extents [#st.extent<"m", 0, 2048>]
st.weight @wo : tensor<32x32x!st.q4_0> from tensor<32x32xf32> extents [#st.extent<"m", 0, 4096>] {layout = "rows16", quant = "q8_0"}
func.func @nope(%h: tensor<?x32xf32>, %pos: tensor<?xi32>) -> tensor<?x32xf32> {
  %wq = st.load_weight @wq : tensor<32x32xf32>
  %wk = st.load_weight @wk : tensor<16x32xf32>
  %a = st.attention %h, %pos, %wq, %wk, %wk, %wq {head_dim = 8 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = false, rope_theta = 1.0e4 : f64, window = 0 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return %a : tensor<?x32xf32>
}
func.func @resumed(%h: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %wo = st.load_weight @wo : tensor<32x32x!st.q4_0>
  %o = st.kernel "gemm"["gemm_q4_0"] (%h, %wo) {} : (tensor<?x32xf32>, tensor<32x32x!st.q4_0>) -> tensor<?x32xf32>
  return %o : tensor<?x32xf32>
}

// -----

// A quantized matrix must be whole 16-row groups of 32-column blocks.
// expected-error @+1 {{weight @w is 8x32; storing it as '!st.q4_0' needs rows in multiples of 16 and columns in multiples of 32}}
st.weight @w : tensor<8x32xf32> extents [#st.extent<"m", 0, 1024>] {quant = "q4_0"}
