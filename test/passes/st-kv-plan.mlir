// RUN: stc-opt %s --split-input-file --st-kv-plan=max-batch=4 | FileCheck %s
// RUN: stc-opt %s --split-input-file --st-kv-plan | FileCheck %s --check-prefix=DEFAULT
// RUN: not stc-opt %s --split-input-file --st-kv-plan=kv-type=q8_0 | FileCheck %s --check-prefix=Q8
// RUN: not stc-opt %s --split-input-file --st-kv-plan=max-batch=0 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not stc-opt %s --split-input-file --st-kv-plan=kv-type=q4_0 2>&1 | FileCheck %s --check-prefix=BADTYPE

// Sliding-window layers get a ring of window + max-batch - 1 slots; global layers keep
// the full context (no kv_slots); the planned chunk is recorded on the module. Every
// weight is f32, so `auto` keeps an f32 cache.
// CHECK: module attributes {st.max_batch = 4 : i64}
// CHECK: st.attention {{.*}}{head_dim = 32 : i64, kv_slots = 11 : i64, kv_type = "f32", layer = 0 : i64{{.*}}window = 8 : i64}
// CHECK: st.attention
// CHECK-NOT: kv_slots
// CHECK-SAME: kv_type = "f32"
// CHECK-SAME: window = 0 : i64
// DEFAULT: kv_slots = 263 : i64
// Q8: kv_type = "q8_0"
// Q8: kv_type = "q8_0"
// BAD: st-kv-plan: max-batch must be at least 1, got 0
// BADTYPE: st-kv-plan: kv-type 'q4_0' is not one of f16, q8_0, f32, auto
st.weight @wq : tensor<128x128xf32> extents [#st.extent<"m", 0, 65536>]
st.weight @wk : tensor<64x128xf32> extents [#st.extent<"m", 0, 32768>]
func.func @f(%h: tensor<?x128xf32>, %pos: tensor<?xi32>) -> tensor<?x128xf32> {
  %wq = st.load_weight @wq : tensor<128x128xf32>
  %wk = st.load_weight @wk : tensor<64x128xf32>
  %a = st.attention %h, %pos, %wq, %wk, %wk, %wq {head_dim = 32 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = 8 : i64} : (tensor<?x128xf32>, tensor<?xi32>, tensor<128x128xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x128xf32>) -> tensor<?x128xf32>
  %b = st.attention %a, %pos, %wq, %wk, %wk, %wq {head_dim = 32 : i64, layer = 1 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = false, rope_theta = 1.0e4 : f64, window = 0 : i64} : (tensor<?x128xf32>, tensor<?xi32>, tensor<128x128xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x128xf32>) -> tensor<?x128xf32>
  return %b : tensor<?x128xf32>
}

// -----

// A quantized module takes an f16 cache under `auto`; q8_0 needs head_dim to be whole
// blocks of 32.
// DEFAULT-LABEL: func.func @quantized
// DEFAULT: kv_type = "f16"
// RUN: not stc-opt %s --split-input-file --st-kv-plan=kv-type=q8_0 2>&1 >/dev/null | FileCheck %s --check-prefix=Q8HD
// Q8HD: st-kv-plan: a q8_0 KV cache needs head_dim to be a multiple of 32, got 8
st.weight @wq : tensor<32x32x!st.q4_0> from tensor<32x32xf32> extents [#st.extent<"m", 0, 4096>] {quant = "q4_0"}
st.weight @wk : tensor<16x32xf32> extents [#st.extent<"m", 0, 2048>]
func.func @quantized(%h: tensor<?x32xf32>, %pos: tensor<?xi32>) -> tensor<?x32xf32> {
  %wq = st.load_weight @wq : tensor<32x32x!st.q4_0>
  %wk = st.load_weight @wk : tensor<16x32xf32>
  %a = st.attention %h, %pos, %wq, %wk, %wk, %wq {head_dim = 8 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = 0 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32x!st.q4_0>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32x!st.q4_0>) -> tensor<?x32xf32>
  return %a : tensor<?x32xf32>
}
