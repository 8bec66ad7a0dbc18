// RUN: stc-opt %s --split-input-file --verify-diagnostics

// Every st verifier error, one case each.

// A quantized weight's rows must be whole 32-element blocks.
// expected-error @+1 {{innermost dimension of a '!st.q4_0' weight must be a multiple of 32, got 'tensor<4x48x!st.q4_0>'}}
st.weight @w : tensor<4x48x!st.q4_0> extents [#st.extent<"f", 0, 108>]

// -----

// A ggml block type's rows must be whole blocks (Q4_K: 256 elements).
// expected-error @+1 {{innermost dimension of a '!st.block<"q4_k", 256, 144>' source must be whole blocks, got 'tensor<4x128x!st.block<"q4_k", 256, 144>>'}}
st.weight @w : tensor<4x128x!st.block<"q4_k", 256, 144>> extents [#st.extent<"f", 0, 288>]

// -----

// The extents must hold exactly the bytes the type needs.
// expected-error @+1 {{extents hold 100 bytes, but 'tensor<4x32xf32>' needs 512}}
st.weight @w : tensor<4x32xf32> extents [#st.extent<"f", 0, 60>, #st.extent<"g", 0, 40>]

// -----

// expected-error @+1 {{needs at least one extent}}
st.weight @w : tensor<4x32xf32> extents []

// -----

// expected-error @+1 {{weight type must have a static shape}}
st.weight @w : tensor<?x32xf32> extents [#st.extent<"f", 0, 128>]

// -----

// Integer weights are not a SmallThinker storage type.
// expected-error @+1 {{attribute 'type' failed to satisfy constraint: type attribute of ranked tensor of f32, f16, bf16, !st.q8_0, !st.q4_0 or !st.block}}
st.weight @w : tensor<4x32xi8> extents [#st.extent<"f", 0, 128>]

// -----

func.func @f() {
  // expected-error @+1 {{'missing' does not name an st.weight}}
  %w = st.load_weight @missing : tensor<4xf32>
  return
}

// -----

st.weight @w : tensor<4xf32> extents [#st.extent<"f", 0, 16>]
func.func @f() {
  // expected-error @+1 {{result type 'tensor<8xf32>' differs from the declared 'tensor<4xf32>' of @w}}
  %w = st.load_weight @w : tensor<8xf32>
  return
}

// -----

func.func @f(%ids: tensor<?xi32>, %t: tensor<64x16xf32>) {
  // expected-error @+1 {{table dimension 1 (hidden) is 16, but the result has 32 features}}
  %x = st.embedding %ids, %t : (tensor<?xi32>, tensor<64x16xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%ids: tensor<?xi32>, %t: tensor<64xf32>) {
  // expected-error @+1 {{table must be [vocab, hidden]}}
  %x = st.embedding %ids, %t : (tensor<?xi32>, tensor<64xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<16xf32>) {
  // expected-error @+1 {{weight dimension 0 (hidden) is 16, expected 32}}
  %h = st.rms_norm %x, %w {eps = 1.0e-06 : f64} : (tensor<?x32xf32>, tensor<16xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{eps must be positive}}
  %h = st.rms_norm %x, %w {eps = 0.0 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<4x32xf32>) {
  // expected-error @+1 {{top_k (5) exceeds the number of experts (4)}}
  %a, %b = st.router %x, %w {layer = 0 : i64, top_k = 5 : i64, weighting = #st<weighting sigmoid>} : (tensor<?x32xf32>, tensor<4x32xf32>) -> (tensor<?x5xf32>, tensor<?x5xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<4x32xf32>) {
  // expected-error @+1 {{top_k must be positive, got 0}}
  %a, %b = st.router %x, %w {layer = 0 : i64, top_k = 0 : i64, weighting = #st<weighting sigmoid>} : (tensor<?x32xf32>, tensor<4x32xf32>) -> (tensor<?x0xf32>, tensor<?x0xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<4x16xf32>) {
  // expected-error @+1 {{weight dimension 1 (hidden) is 16, expected 32}}
  %a, %b = st.router %x, %w {layer = 0 : i64, top_k = 2 : i64, weighting = #st<weighting sigmoid>} : (tensor<?x32xf32>, tensor<4x16xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<4x32xf32>) {
  // expected-error @+1 {{indices result dimension 1 (top_k) is 3, expected 2}}
  %a, %b = st.router %x, %w {layer = 0 : i64, top_k = 2 : i64, weighting = #st<weighting sigmoid>} : (tensor<?x32xf32>, tensor<4x32xf32>) -> (tensor<?x2xf32>, tensor<?x3xi32>)
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %q: tensor<24x32xf32>, %k: tensor<16x32xf32>, %o: tensor<32x24xf32>) {
  // expected-error @+1 {{num_heads (3) is not divisible by num_kv_heads (2)}}
  %a = st.attention %x, %p, %q, %k, %k, %o {head_dim = 8 : i64, layer = 0 : i64, num_heads = 3 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = 0 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<24x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x24xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %q: tensor<28x32xf32>, %k: tensor<14x32xf32>, %o: tensor<32x28xf32>) {
  // expected-error @+1 {{head_dim (7) must be even for NEOX RoPE}}
  %a = st.attention %x, %p, %q, %k, %k, %o {head_dim = 7 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = 0 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<28x32xf32>, tensor<14x32xf32>, tensor<14x32xf32>, tensor<32x28xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %q: tensor<32x32xf32>, %k: tensor<16x32xf32>, %o: tensor<32x32xf32>) {
  // expected-error @+1 {{window must be 0 (global) or positive, got -1}}
  %a = st.attention %x, %p, %q, %k, %k, %o {head_dim = 8 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = -1 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %q: tensor<32x32xf32>, %k: tensor<16x32xf32>, %o: tensor<32x32xf32>) {
  // expected-error @+1 {{wk dimension 0 (num_kv_heads*head_dim) is 16, expected 8}}
  %a = st.attention %x, %p, %q, %k, %k, %o {head_dim = 8 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 1 : i64, rope = false, rope_theta = 1.0e4 : f64, window = 0 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %q: tensor<32x32xf32>, %k: tensor<16x32xf32>, %o: tensor<32x16xf32>) {
  // expected-error @+1 {{wo dimension 1 (num_heads*head_dim) is 16, expected 32}}
  %a = st.attention %x, %p, %q, %k, %k, %o {head_dim = 8 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = 0 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x16xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %q: tensor<48x32xf32>, %k: tensor<16x32xf32>, %o: tensor<32x32xf32>) {
  // expected-error @+1 {{wq dimension 0 (num_heads*head_dim) is 48, expected 32}}
  %a = st.attention %x, %p, %q, %k, %k, %o {head_dim = 8 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = 0 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<48x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>, %g: tensor<4x8x32xf32>, %u: tensor<4x8x16xf32>, %d: tensor<4x32x8xf32>) {
  // expected-error @+1 {{up dimension 2 (hidden) is 16, expected 32}}
  %y = st.moe %x, %w, %i, %g, %u, %d {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x8x32xf32>, tensor<4x8x16xf32>, tensor<4x32x8xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>, %g: tensor<4x8x32xf32>, %d: tensor<4x8x32xf32>) {
  // expected-error @+1 {{down dimension 1 (hidden) is 8, expected 32}}
  %y = st.moe %x, %w, %i, %g, %g, %d {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x8x32xf32>, tensor<4x8x32xf32>, tensor<4x8x32xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<?x5xf32>, %i: tensor<?x5xi32>, %g: tensor<4x8x32xf32>, %d: tensor<4x32x8xf32>) {
  // expected-error @+1 {{top_k (5) exceeds the number of experts (4)}}
  %y = st.moe %x, %w, %i, %g, %g, %d {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x5xf32>, tensor<?x5xi32>, tensor<4x8x32xf32>, tensor<4x8x32xf32>, tensor<4x32x8xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>, %g: tensor<8x32xf32>, %d: tensor<4x32x8xf32>) {
  // expected-error @+1 {{gate must be [experts, ffn, hidden]}}
  %y = st.moe %x, %w, %i, %g, %g, %d {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<4x32x8xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<64x16xf32>) {
  // expected-error @+1 {{weight dimension 1 (hidden) is 16, expected 32}}
  %l = st.lm_head %x, %w : (tensor<?x32xf32>, tensor<64x16xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<64x32xf32>) {
  // expected-error @+1 {{result dimension 1 (vocab) is 65, expected 64}}
  %l = st.lm_head %x, %w : (tensor<?x32xf32>, tensor<64x32xf32>) -> tensor<?x65xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %y: tensor<?x16xf32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %z = "st.add"(%x, %y) : (tensor<?x32xf32>, tensor<?x16xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>) {
  // expected-error @+1 {{unknown kernel op 'conv'}}
  %y = st.kernel "conv"["halide"] (%x) {} : (tensor<?x32xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>) {
  // expected-error @+1 {{'add' takes 2 inputs and 1 results, got 1 and 1}}
  %y = st.kernel "add"["runtime"] (%x) {} : (tensor<?x32xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<16x64xf32>) {
  // expected-error @+1 {{gemm weight dimension 1 (in) is 64, expected 32}}
  %y = st.kernel "gemm"["gemm_f32"] (%x, %w) {} : (tensor<?x32xf32>, tensor<16x64xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<16x32xf32>) {
  // expected-error @+1 {{gemm result dimension 1 (out) is 8, expected 16}}
  %y = st.kernel "gemm"["gemm_f32"] (%x, %w) {} : (tensor<?x32xf32>, tensor<16x32xf32>) -> tensor<?x8xf32>
  return
}

// -----

// expected-error @+1 {{source type 'tensor<4x64xf32>' and stored type 'tensor<4x32x!st.q4_0>' must have the same shape}}
st.weight @w : tensor<4x32x!st.q4_0> from tensor<4x64xf32> extents [#st.extent<"f", 0, 1024>]
