// RUN: stc-opt %s --split-input-file --st-sparse-reglu | FileCheck %s
// RUN: stc-opt %s --split-input-file --st-sparse-reglu --st-lower-to-kernels | FileCheck %s --check-prefix=LOWERED
// RUN: stc-opt %s --split-input-file --st-sparse-reglu=down-layout=neuron_rows | FileCheck %s --check-prefix=ROWS
// RUN: not stc-opt %s --split-input-file --st-sparse-reglu=down-layout=rows 2>&1 | FileCheck %s --check-prefix=BADLAYOUT
// BADLAYOUT: st-sparse-reglu: down-layout must be transposed or neuron_rows, got 'rows'

// A q4_0 expert block: up becomes blocks16 (rows alone), down transposed (one row per
// neuron), the moe sparse_reglu; the gate keeps the dense layout st-lower-to-kernels
// gives it, and the moe lowers to the sparse_reglu kernel.
// CHECK-LABEL: st.weight @g : tensor<4x64x128xf32>
// CHECK-NOT: layout
// CHECK-SAME: {quant = "q4_0"}
// CHECK: st.weight @u : tensor<4x64x128xf32> extents {{.*}} {layout = "blocks16", quant = "q4_0"}
// CHECK: st.weight @d : tensor<4x128x64xf32> extents {{.*}} {layout = "transposed", quant = "q4_0"}
// CHECK: st.moe {{.*}} {layer = 0 : i64, sparse_reglu}
// LOWERED-DAG: st.weight @g : tensor<4x64x128x!st.q4_0> from tensor<4x64x128xf32> extents {{.*}} {layout = "rows16", quant = "q4_0"}
// LOWERED-DAG: st.weight @u : tensor<4x64x128x!st.q4_0> from tensor<4x64x128xf32> extents {{.*}} {layout = "blocks16", quant = "q4_0"}
// LOWERED-DAG: st.weight @d : tensor<4x128x64x!st.q4_0> from tensor<4x128x64xf32> extents {{.*}} {layout = "transposed", quant = "q4_0"}
// LOWERED: st.kernel "moe"["sparse_reglu"]
// With down-layout=neuron_rows the float down (quantized by the compile) takes
// PowerInfer's layout: blocks along the outputs, each neuron's row with its scales.
// ROWS-LABEL: st.weight @d : tensor<4x128x64xf32> extents {{.*}} {layout = "neuron_rows", quant = "q4_0"}
st.weight @g : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "q4_0"}
st.weight @u : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "q4_0"}
st.weight @d : tensor<4x128x64xf32> extents [#st.extent<"m", 0, 131072>] {quant = "q4_0"}
func.func @moe(%h: tensor<?x128xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x128xf32> {
  %g = st.load_weight @g : tensor<4x64x128xf32>
  %u = st.load_weight @u : tensor<4x64x128xf32>
  %d = st.load_weight @d : tensor<4x128x64xf32>
  %y = st.moe %h, %w, %i, %g, %u, %d {layer = 0 : i64} : (tensor<?x128xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x128xf32>, tensor<4x64x128xf32>, tensor<4x128x64xf32>) -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

// f32 experts: up stays row-major (its rows are already contiguous), down is
// transposed; the runtime's f32 path reads them.
// CHECK-LABEL: st.weight @u : tensor<4x64x128xf32> extents {{.*}} {layout = "row_major", quant = "f32"}
// CHECK: st.weight @d : tensor<4x128x64xf32> extents {{.*}} {layout = "transposed", quant = "f32"}
// CHECK: sparse_reglu
st.weight @g : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "f32"}
st.weight @u : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "f32"}
st.weight @d : tensor<4x128x64xf32> extents [#st.extent<"m", 0, 131072>] {quant = "f32"}
func.func @moe(%h: tensor<?x128xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x128xf32> {
  %g = st.load_weight @g : tensor<4x64x128xf32>
  %u = st.load_weight @u : tensor<4x64x128xf32>
  %d = st.load_weight @d : tensor<4x128x64xf32>
  %y = st.moe %h, %w, %i, %g, %u, %d {layer = 0 : i64} : (tensor<?x128xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x128xf32>, tensor<4x64x128xf32>, tensor<4x128x64xf32>) -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

// Left dense: f16 experts (no sparse kernel reads f16), and quantized experts whose
// hidden size (96) is not a multiple of the down kernel's 64-output chunk.
// CHECK-LABEL: st.weight @u : tensor<4x64x128xf32>
// CHECK-NOT: layout
// CHECK: st.moe
// CHECK-NOT: sparse_reglu}
// CHECK: st.weight @u2 : tensor<4x64x96xf32>
// CHECK-NOT: layout
// CHECK: st.moe
// CHECK-NOT: sparse_reglu}
st.weight @u : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "f16"}
st.weight @d : tensor<4x128x64xf32> extents [#st.extent<"m", 0, 131072>] {quant = "f16"}
func.func @f16(%h: tensor<?x128xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x128xf32> {
  %u = st.load_weight @u : tensor<4x64x128xf32>
  %d = st.load_weight @d : tensor<4x128x64xf32>
  %y = st.moe %h, %w, %i, %u, %u, %d {layer = 0 : i64} : (tensor<?x128xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x128xf32>, tensor<4x64x128xf32>, tensor<4x128x64xf32>) -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}
st.weight @u2 : tensor<4x64x96xf32> extents [#st.extent<"m", 0, 98304>] {quant = "q4_0"}
st.weight @d2 : tensor<4x96x64xf32> extents [#st.extent<"m", 0, 98304>] {quant = "q4_0"}
func.func @narrow(%h: tensor<?x96xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x96xf32> {
  %u = st.load_weight @u2 : tensor<4x64x96xf32>
  %d = st.load_weight @d2 : tensor<4x96x64xf32>
  %y = st.moe %h, %w, %i, %u, %u, %d {layer = 0 : i64} : (tensor<?x96xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x96xf32>, tensor<4x64x96xf32>, tensor<4x96x64xf32>) -> tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}

// -----

// mode=auto (stc compile's default) decides per layer from the calibrated dead share
// with the cost model: q4_0 gate, up and down of equal size, live-row cost 2: sparse
// costs (1 + (1 - d) * 2 * 2) / 3 of dense, so d = 0.9 goes sparse (0.47), d = 0.5
// stays dense (1.0), and a layer without a profile stays dense. Each profiled op keeps
// its ratio; the module records the mode and the cost.
// RUN: stc-opt %s --split-input-file --st-sparse-reglu="mode=auto live-row-cost=2" | FileCheck %s --check-prefix=AUTO
// AUTO-LABEL: module attributes {st.sparse_reglu = {live_row_cost = 2.000000e+00 : f64, mode = "auto"}}
// AUTO: st.moe {{.*}} {dead_share = 9.000000e-01 : f64, layer = 0 : i64, sparse_cost = 0.4666{{[0-9]*}} : f64, sparse_reglu}
// AUTO: st.moe {{.*}} {dead_share = 5.000000e-01 : f64, layer = 1 : i64, sparse_cost = 1.000000e+00 : f64}
// AUTO: st.moe {{.*}} {layer = 2 : i64}
// With mode=on every layer the kernels can take goes sparse, profiled or not.
// RUN: stc-opt %s --split-input-file --st-sparse-reglu="mode=on" | FileCheck %s --check-prefix=ON
// ON-LABEL: module attributes {st.sparse_reglu = {live_row_cost = 3.000000e+00 : f64, mode = "on"}}
// ON-COUNT-3: sparse_reglu}
// CHECK-LABEL: func.func @layers
st.weight @g : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "q4_0"}
st.weight @u : tensor<4x64x128xf32> extents [#st.extent<"m", 0, 131072>] {quant = "q4_0"}
st.weight @d : tensor<4x128x64xf32> extents [#st.extent<"m", 0, 131072>] {quant = "q4_0"}
func.func @layers(%h: tensor<?x128xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x128xf32> {
  %g = st.load_weight @g : tensor<4x64x128xf32>
  %u = st.load_weight @u : tensor<4x64x128xf32>
  %d = st.load_weight @d : tensor<4x128x64xf32>
  %y0 = st.moe %h, %w, %i, %g, %u, %d {dead_share = 0.9 : f64, layer = 0 : i64} : (tensor<?x128xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x128xf32>, tensor<4x64x128xf32>, tensor<4x128x64xf32>) -> tensor<?x128xf32>
  %y1 = st.moe %y0, %w, %i, %g, %u, %d {dead_share = 0.5 : f64, layer = 1 : i64} : (tensor<?x128xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x128xf32>, tensor<4x64x128xf32>, tensor<4x128x64xf32>) -> tensor<?x128xf32>
  %y2 = st.moe %y1, %w, %i, %g, %u, %d {layer = 2 : i64} : (tensor<?x128xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x128xf32>, tensor<4x64x128xf32>, tensor<4x128x64xf32>) -> tensor<?x128xf32>
  return %y2 : tensor<?x128xf32>
}

// -----

// PowerInfer's down (transposed_source, already q4_0 along the outputs) keeps its
// blocks in the neuron_rows layout whatever down-layout says; a q4_0 down in
// llama.cpp's layout (blocks along the neurons) goes transposed.
// CHECK-LABEL: st.weight @pi_d : tensor<4x128x64x!st.q4_0> extents {{.*}} {layout = "neuron_rows", quant = "q4_0", transposed_source}
// ROWS-LABEL: st.weight @pi_d : {{.*}}layout = "neuron_rows"
st.weight @pi_g : tensor<4x64x128x!st.q4_0> extents [#st.extent<"m", 0, 18432>] {quant = "q4_0"}
st.weight @pi_u : tensor<4x64x128x!st.q4_0> extents [#st.extent<"m", 0, 18432>] {quant = "q4_0"}
st.weight @pi_d : tensor<4x128x64x!st.q4_0> extents [#st.extent<"m", 0, 18432>] {quant = "q4_0", transposed_source}
func.func @moe(%h: tensor<?x128xf32>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x128xf32> {
  %g = st.load_weight @pi_g : tensor<4x64x128x!st.q4_0>
  %u = st.load_weight @pi_u : tensor<4x64x128x!st.q4_0>
  %d = st.load_weight @pi_d : tensor<4x128x64x!st.q4_0>
  %y = st.moe %h, %w, %i, %g, %u, %d {layer = 0 : i64} : (tensor<?x128xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<4x64x128x!st.q4_0>, tensor<4x64x128x!st.q4_0>, tensor<4x128x64x!st.q4_0>) -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}
