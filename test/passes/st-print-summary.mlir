// RUN: stc-opt %s --st-print-summary -o /dev/null 2>&1 | FileCheck %s
// RUN: stc-opt %s --st-print-summary=output=%t.txt | FileCheck %s --check-prefix=IR
// RUN: FileCheck %s < %t.txt

// A two-layer model: a RoPE global layer and a NoPE sliding-window layer, experts in q4_0.
// Per decoded token: embedding row 128 + norms 3*(2*128) + routers 2*512 +
// attention 2*(4*4096) + 2 of 4 experts (2*3*2304/2... see below) + head 16384.

// CHECK: st summary: 2 layers, hidden 32, 4 heads / 2 kv heads x 8, 4 experts (top-2, softmax), ffn 64, vocab 128
// CHECK-NEXT: layer 0: rope global
// CHECK-NEXT: layer 1: nope window 16
// CHECK-NEXT: weights: 0.1 MiB in 16 tensors
// Experts: 4 x 64 x 32 q4_0 = 4608 bytes per matrix, 3 matrices, 2 of 4 active: 6912 per layer.
// 128 + 5*128 + 2*512 + 2*(4096+2048+2048+4096) + 2*6912 + 16384 = 56576
// CHECK-NEXT: bytes per decoded token: 0.1 MiB (56576 bytes; dense: every active weight read once)

// The IR is unchanged.
// IR: st.weight @embd
// IR: st.lm_head

st.weight @embd : tensor<128x32xf32> extents [#st.extent<"m", 0, 16384>]
st.weight @n0 : tensor<32xf32> extents [#st.extent<"m", 0, 128>]
st.weight @n1 : tensor<32xf32> extents [#st.extent<"m", 0, 128>]
st.weight @nf : tensor<32xf32> extents [#st.extent<"m", 0, 128>]
st.weight @r : tensor<4x32xf32> extents [#st.extent<"m", 0, 512>]
st.weight @wq : tensor<32x32xf32> extents [#st.extent<"m", 0, 4096>]
st.weight @wk : tensor<16x32xf32> extents [#st.extent<"m", 0, 2048>]
st.weight @wv : tensor<16x32xf32> extents [#st.extent<"m", 0, 2048>]
st.weight @wo : tensor<32x32xf32> extents [#st.extent<"m", 0, 4096>]
st.weight @g : tensor<4x64x32x!st.q4_0> extents [#st.extent<"m", 0, 4608>]
st.weight @u : tensor<4x64x32x!st.q4_0> extents [#st.extent<"m", 0, 4608>]
st.weight @d : tensor<4x32x64x!st.q4_0> extents [#st.extent<"m", 0, 4608>]
st.weight @unused1 : tensor<32xf32> extents [#st.extent<"m", 0, 128>]
st.weight @unused2 : tensor<32xf32> extents [#st.extent<"m", 0, 128>]
st.weight @unused3 : tensor<32xf32> extents [#st.extent<"m", 0, 128>]
st.weight @head : tensor<128x32xf32> extents [#st.extent<"m", 0, 16384>]

func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x128xf32> {
  %e = st.load_weight @embd : tensor<128x32xf32>
  %x0 = st.embedding %ids, %e : (tensor<?xi32>, tensor<128x32xf32>) -> tensor<?x32xf32>
  %n0 = st.load_weight @n0 : tensor<32xf32>
  %n1 = st.load_weight @n1 : tensor<32xf32>
  %nf = st.load_weight @nf : tensor<32xf32>
  %r = st.load_weight @r : tensor<4x32xf32>
  %wq = st.load_weight @wq : tensor<32x32xf32>
  %wk = st.load_weight @wk : tensor<16x32xf32>
  %wv = st.load_weight @wv : tensor<16x32xf32>
  %wo = st.load_weight @wo : tensor<32x32xf32>
  %g = st.load_weight @g : tensor<4x64x32x!st.q4_0>
  %u = st.load_weight @u : tensor<4x64x32x!st.q4_0>
  %d = st.load_weight @d : tensor<4x32x64x!st.q4_0>
  // Layer 0.
  %w0, %i0 = st.router %x0, %r {layer = 0 : i64, top_k = 2 : i64, weighting = #st<weighting softmax>} : (tensor<?x32xf32>, tensor<4x32xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  %h0 = st.rms_norm %x0, %n0 {eps = 1.0e-06 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %a0 = st.attention %h0, %pos, %wq, %wk, %wv, %wo {head_dim = 8 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = 0 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %x1 = st.add %x0, %a0 : tensor<?x32xf32>
  %f0 = st.rms_norm %x1, %n1 {eps = 1.0e-06 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %y0 = st.moe %f0, %w0, %i0, %g, %u, %d {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x32x!st.q4_0>, tensor<4x64x32x!st.q4_0>, tensor<4x32x64x!st.q4_0>) -> tensor<?x32xf32>
  %x2 = st.add %x1, %y0 : tensor<?x32xf32>
  // Layer 1 (shares weights with layer 0 to keep the test short).
  %w1, %i1 = st.router %x2, %r {layer = 1 : i64, top_k = 2 : i64, weighting = #st<weighting softmax>} : (tensor<?x32xf32>, tensor<4x32xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  %h1 = st.rms_norm %x2, %n0 {eps = 1.0e-06 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %a1 = st.attention %h1, %pos, %wq, %wk, %wv, %wo {head_dim = 8 : i64, layer = 1 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = false, rope_theta = 1.0e4 : f64, window = 16 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %x3 = st.add %x2, %a1 : tensor<?x32xf32>
  %f1 = st.rms_norm %x3, %n1 {eps = 1.0e-06 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %y1 = st.moe %f1, %w1, %i1, %g, %u, %d {layer = 1 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x32x!st.q4_0>, tensor<4x64x32x!st.q4_0>, tensor<4x32x64x!st.q4_0>) -> tensor<?x32xf32>
  %x4 = st.add %x3, %y1 : tensor<?x32xf32>
  %hf = st.rms_norm %x4, %nf {eps = 1.0e-06 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %h = st.load_weight @head : tensor<128x32xf32>
  %l = st.lm_head %hf, %h : (tensor<?x32xf32>, tensor<128x32xf32>) -> tensor<?x128xf32>
  return %l : tensor<?x128xf32>
}
