// RUN: stc-opt %s --st-kv-plan=max-batch=4 | FileCheck %s
// RUN: stc-opt %s --st-kv-plan | FileCheck %s --check-prefix=DEFAULT
// RUN: not stc-opt %s --st-kv-plan=max-batch=0 2>&1 | FileCheck %s --check-prefix=BAD

// Sliding-window layers get a ring of window + max-batch - 1 slots; global layers keep
// the full context (no kv_slots); the planned chunk is recorded on the module.
// CHECK: module attributes {st.max_batch = 4 : i64}
// CHECK: st.attention {{.*}}{head_dim = 8 : i64, kv_slots = 11 : i64, layer = 0 : i64{{.*}}window = 8 : i64}
// CHECK: st.attention
// CHECK-NOT: kv_slots
// CHECK-SAME: window = 0 : i64
// DEFAULT: kv_slots = 263 : i64
// BAD: st-kv-plan: max-batch must be at least 1, got 0
st.weight @wq : tensor<32x32xf32> extents [#st.extent<"m", 0, 4096>]
st.weight @wk : tensor<16x32xf32> extents [#st.extent<"m", 0, 2048>]
func.func @f(%h: tensor<?x32xf32>, %pos: tensor<?xi32>) -> tensor<?x32xf32> {
  %wq = st.load_weight @wq : tensor<32x32xf32>
  %wk = st.load_weight @wk : tensor<16x32xf32>
  %a = st.attention %h, %pos, %wq, %wk, %wk, %wq {head_dim = 8 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64, window = 8 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %b = st.attention %a, %pos, %wq, %wk, %wk, %wq {head_dim = 8 : i64, layer = 1 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = false, rope_theta = 1.0e4 : f64, window = 0 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return %b : tensor<?x32xf32>
}
