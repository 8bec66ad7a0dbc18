// RUN: stc-opt %s --st-compile | FileCheck %s
// RUN: stc-opt %s --pass-pipeline='builtin.module(st-compile{quant=q8_0 max-batch=4 rules=wq=f16})' | FileCheck %s --check-prefix=OPTS

// The registered pipeline stc compile runs: route-ahead dispatch, quantization,
// st-sparse-reglu in auto mode (this IR carries no calibration profile, so the
// moe stays dense) and st-neuron-layout, KV plan, lowering, all in one name.
// CHECK: module attributes {st.max_batch = 256 : i64, st.sparse_reglu = {live_row_cost = 3.000000e+00 : f64, mode = "auto"}}
// CHECK-DAG: st.weight @wq : tensor<32x32x!st.q4_0> from tensor<32x32xf32>
// CHECK-DAG: st.weight @blk.0.ffn_gate_inp : tensor<4x32xf32> {{.*}}quant = "f32"
// CHECK: st.kernel "dispatch"
// CHECK: st.kernel "attention"{{.*}}kv_slots = 263 : i64
// CHECK: st.kernel "moe"["runtime"]
// OPTS: module attributes {st.max_batch = 4 : i64, st.sparse_reglu = {{.*}}}
// OPTS-DAG: st.weight @wq : tensor<32x32xf16>
// OPTS-DAG: st.weight @g : tensor<4x32x32x!st.q8_0>
// OPTS: st.kernel "attention"{{.*}}kv_slots = 11 : i64
st.weight @e : tensor<64x32xf32> extents [#st.extent<"m", 0, 8192>]
st.weight @n : tensor<32xf32> extents [#st.extent<"m", 0, 128>]
st.weight @blk.0.ffn_gate_inp : tensor<4x32xf32> extents [#st.extent<"m", 0, 512>]
st.weight @wq : tensor<32x32xf32> extents [#st.extent<"m", 0, 4096>]
st.weight @wk : tensor<16x32xf32> extents [#st.extent<"m", 0, 2048>]
st.weight @g : tensor<4x32x32xf32> extents [#st.extent<"m", 0, 16384>]
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x32xf32> {
  %e = st.load_weight @e : tensor<64x32xf32>
  %x = st.embedding %ids, %e : (tensor<?xi32>, tensor<64x32xf32>) -> tensor<?x32xf32>
  %r = st.load_weight @blk.0.ffn_gate_inp : tensor<4x32xf32>
  %w, %i = st.router %x, %r {layer = 0 : i64, top_k = 2 : i64, weighting = #st<weighting sigmoid>} : (tensor<?x32xf32>, tensor<4x32xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  %n = st.load_weight @n : tensor<32xf32>
  %h = st.rms_norm %x, %n {eps = 1.0e-06 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %wq = st.load_weight @wq : tensor<32x32xf32>
  %wk = st.load_weight @wk : tensor<16x32xf32>
  %a = st.attention %h, %pos, %wq, %wk, %wk, %wq {head_dim = 8 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = 8 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %x1 = st.add %x, %a : tensor<?x32xf32>
  %g = st.load_weight @g : tensor<4x32x32xf32>
  %y = st.moe %x1, %w, %i, %g, %g, %g {layer = 0 : i64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x32x32xf32>, tensor<4x32x32xf32>, tensor<4x32x32xf32>) -> tensor<?x32xf32>
  %x2 = st.add %x1, %y : tensor<?x32xf32>
  return %x2 : tensor<?x32xf32>
}
