// RUN: stc-opt %s | stc-opt | FileCheck %s
// RUN: stc-opt %s --mlir-print-op-generic | stc-opt | FileCheck %s

// Round trip of every st op, type and attribute: one layer of a small model whose
// weights mix f32, f16, bf16, q8_0 and q4_0 storage.

// CHECK-LABEL: module
// CHECK: st.weight @embd : tensor<64x32x!st.q4_0> extents [#st.extent<"m.gguf", 0, 1152>]
st.weight @embd : tensor<64x32x!st.q4_0> extents [#st.extent<"m.gguf", 0, 1152>]
// CHECK: st.weight @norm : tensor<32xf32>
st.weight @norm : tensor<32xf32> extents [#st.extent<"m.gguf", 1152, 128>]
// CHECK: st.weight @router : tensor<4x32xf32>
st.weight @router : tensor<4x32xf32> extents [#st.extent<"m.gguf", 1280, 512>]
// CHECK: st.weight @wq : tensor<32x32xbf16>
st.weight @wq : tensor<32x32xbf16> extents [#st.extent<"m.gguf", 1792, 2048>]
// CHECK: st.weight @wk : tensor<16x32xf16>
st.weight @wk : tensor<16x32xf16> extents [#st.extent<"m.gguf", 3840, 1024>]
// CHECK: st.weight @wv : tensor<16x32x!st.q8_0>
st.weight @wv : tensor<16x32x!st.q8_0> extents [#st.extent<"m.gguf", 4864, 544>]
// CHECK: st.weight @wo : tensor<32x32xf32>
st.weight @wo : tensor<32x32xf32> extents [#st.extent<"m.gguf", 5408, 4096>]
// Stacked experts from an HF checkpoint: one extent per expert.
// CHECK: st.weight @gate : tensor<4x32x32xf32> extents [#st.extent<"a.safetensors", 0, 4096>, #st.extent<"a.safetensors", 4096, 4096>, #st.extent<"b.safetensors", 0, 4096>, #st.extent<"b.safetensors", 4096, 4096>]
st.weight @gate : tensor<4x32x32xf32> extents [#st.extent<"a.safetensors", 0, 4096>, #st.extent<"a.safetensors", 4096, 4096>, #st.extent<"b.safetensors", 0, 4096>, #st.extent<"b.safetensors", 4096, 4096>]
st.weight @up : tensor<4x32x32xf32> extents [#st.extent<"c", 0, 16384>]
st.weight @down : tensor<4x32x32xf32> extents [#st.extent<"c", 16384, 16384>]
// A ggml block type no kernel reads (one 144-byte Q4_K block per 256 elements).
// CHECK: st.weight @k4 : tensor<2x256x!st.block<"q4_k", 256, 144>> extents [#st.extent<"k.gguf", 0, 288>]
st.weight @k4 : tensor<2x256x!st.block<"q4_k", 256, 144>> extents [#st.extent<"k.gguf", 0, 288>]

// CHECK-LABEL: func.func @layer
func.func @layer(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: %[[E:.+]] = st.load_weight @embd : tensor<64x32x!st.q4_0>
  %e = st.load_weight @embd : tensor<64x32x!st.q4_0>
  // CHECK: %[[X:.+]] = st.embedding %{{.+}}, %[[E]] : (tensor<?xi32>, tensor<64x32x!st.q4_0>) -> tensor<?x32xf32>
  %x = st.embedding %ids, %e : (tensor<?xi32>, tensor<64x32x!st.q4_0>) -> tensor<?x32xf32>
  %wr = st.load_weight @router : tensor<4x32xf32>
  // CHECK: st.router %[[X]], %{{.+}} {layer = 0 : i64, top_k = 2 : i64, weighting = #st<weighting sigmoid>} : (tensor<?x32xf32>, tensor<4x32xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  %w, %i = st.router %x, %wr {layer = 0 : i64, top_k = 2 : i64, weighting = #st<weighting sigmoid>} : (tensor<?x32xf32>, tensor<4x32xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  // CHECK: st.router {{.*}}weighting = #st<weighting softmax>
  %w2, %i2 = st.router %x, %wr {layer = 0 : i64, top_k = 4 : i64, weighting = #st<weighting softmax>} : (tensor<?x32xf32>, tensor<4x32xf32>) -> (tensor<?x4xf32>, tensor<?x4xi32>)
  %n = st.load_weight @norm : tensor<32xf32>
  // CHECK: st.rms_norm %[[X]], %{{.+}} {eps = 9.9999999999999995E-7 : f64}
  %h = st.rms_norm %x, %n {eps = 1.0e-06 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %wq = st.load_weight @wq : tensor<32x32xbf16>
  %wk = st.load_weight @wk : tensor<16x32xf16>
  %wv = st.load_weight @wv : tensor<16x32x!st.q8_0>
  %wo = st.load_weight @wo : tensor<32x32xf32>
  // CHECK: st.attention {{.*}} {head_dim = 8 : i64, layer = 1 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.500000e+06 : f64, window = 4096 : i64}
  %a = st.attention %h, %pos, %wq, %wk, %wv, %wo {head_dim = 8 : i64, layer = 1 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.5e6 : f64, window = 4096 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xbf16>, tensor<16x32xf16>, tensor<16x32x!st.q8_0>, tensor<32x32xf32>) -> tensor<?x32xf32>
  // CHECK: %[[X1:.+]] = st.add %[[X]], %{{.+}} : tensor<?x32xf32>
  %x1 = st.add %x, %a : tensor<?x32xf32>
  %g = st.load_weight @gate : tensor<4x32x32xf32>
  %u = st.load_weight @up : tensor<4x32x32xf32>
  %d = st.load_weight @down : tensor<4x32x32xf32>
  // CHECK: st.moe %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x32x32xf32>, tensor<4x32x32xf32>, tensor<4x32x32xf32>) -> tensor<?x32xf32>
  %y = st.moe %x1, %w, %i, %g, %u, %d {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x32x32xf32>, tensor<4x32x32xf32>, tensor<4x32x32xf32>) -> tensor<?x32xf32>
  %x2 = st.add %x1, %y : tensor<?x32xf32>
  // CHECK: st.lm_head %{{.+}}, %[[E]] : (tensor<?x32xf32>, tensor<64x32x!st.q4_0>) -> tensor<?x64xf32>
  %l = st.lm_head %x2, %e : (tensor<?x32xf32>, tensor<64x32x!st.q4_0>) -> tensor<?x64xf32>
  return %l : tensor<?x64xf32>
}

// Kernel level: st.kernel with its op, implementation and parameters.
// CHECK-LABEL: func.func @kernels
func.func @kernels(%x: tensor<?x32xf32>, %pos: tensor<?xi32>) -> (tensor<?x32xf32>, tensor<?x2xi32>) {
  %wq = st.load_weight @wq : tensor<32x32xbf16>
  // CHECK: st.kernel "gemm"["gemm_f32"] (%{{.+}}, %{{.+}}) {} : (tensor<?x32xf32>, tensor<32x32xbf16>) -> tensor<?x32xf32>
  %q = st.kernel "gemm"["gemm_f32"] (%x, %wq) {} : (tensor<?x32xf32>, tensor<32x32xbf16>) -> tensor<?x32xf32>
  // CHECK: st.kernel "rope"["halide"] (%{{.+}}, %{{.+}}) {head_dim = 8 : i64, heads = 4 : i64, theta = 1.000000e+04 : f64}
  %r = st.kernel "rope"["halide"] (%q, %pos) {head_dim = 8 : i64, heads = 4 : i64, theta = 1.0e4 : f64} : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  %l = st.kernel "gemm"["gemm_f32"] (%r, %wq) {} : (tensor<?x32xf32>, tensor<32x32xbf16>) -> tensor<?x32xf32>
  // CHECK: st.kernel "route"["runtime"]
  %w:2 = st.kernel "route"["runtime"] (%l) {top_k = 2 : i64, weighting = "softmax"} : (tensor<?x32xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  return %r, %w#1 : tensor<?x32xf32>, tensor<?x2xi32>
}
