// RUN: stc-opt %s --split-input-file --st-quantize=default=q4_0 | FileCheck %s
// RUN: stc-opt %s --split-input-file --st-quantize="default=q8_0 rules=blk.1.*=f16,*attn_v=q4_0" | FileCheck %s --check-prefix=RULES
// RUN: not stc-opt %s --split-input-file --st-quantize=default=q2_k 2>&1 | FileCheck %s --check-prefix=BAD

// Default rules: matrices get the default, norms and the router stay f32, and weights
// already quantized in the checkpoint keep their scheme (their bytes pass through).
// CHECK-LABEL: module
// CHECK-DAG: st.weight @blk.0.attn_norm : tensor<128xbf16> {{.*}}quant = "f32"
// CHECK-DAG: st.weight @blk.0.ffn_gate_inp : tensor<8x128xbf16> {{.*}}quant = "f32"
// CHECK-DAG: st.weight @blk.0.attn_q : tensor<128x128xbf16> {{.*}}quant = "q4_0"
// CHECK-DAG: st.weight @blk.1.attn_q : tensor<128x128xbf16> {{.*}}quant = "q4_0"
// CHECK-DAG: st.weight @blk.0.attn_v : tensor<64x128x!st.q8_0> {{.*}}quant = "q8_0"
// CHECK-DAG: st.weight @blk.0.attn_k : tensor<64x128xf32> {{.*}}quant = "f16"

// Rules come first, in order; an existing decision stands when no rule names the weight.
// RULES-DAG: st.weight @blk.0.attn_q : {{.*}}quant = "q8_0"
// RULES-DAG: st.weight @blk.1.attn_q : {{.*}}quant = "f16"
// RULES-DAG: st.weight @blk.0.attn_v : {{.*}}quant = "q4_0"
// RULES-DAG: st.weight @blk.0.attn_norm : {{.*}}quant = "f32"
// RULES-DAG: st.weight @blk.0.attn_k : {{.*}}quant = "f16"

// BAD: unknown quant scheme 'q2_k' (expected q4_0, q8_0, q4_k, q5_k, q6_k, q3_k, f16 or f32)
st.weight @blk.0.attn_norm : tensor<128xbf16> extents [#st.extent<"m", 0, 256>]
st.weight @blk.0.ffn_gate_inp : tensor<8x128xbf16> extents [#st.extent<"m", 0, 2048>]
st.weight @blk.0.attn_q : tensor<128x128xbf16> extents [#st.extent<"m", 0, 32768>]
st.weight @blk.1.attn_q : tensor<128x128xbf16> extents [#st.extent<"m", 0, 32768>]
st.weight @blk.0.attn_v : tensor<64x128x!st.q8_0> extents [#st.extent<"m", 0, 8704>]
st.weight @blk.0.attn_k : tensor<64x128xf32> extents [#st.extent<"m", 0, 32768>] {quant = "f16"}

// -----

// The K-quants the kernels read keep their type when their rows fill 16-row tiles;
// ggml block types no kernel reads get their exact image, whatever the default: q8_0
// for q5_0 and iq4_nl (int8 values under the block's own scale), f32 for the rest (and
// for a K-quant of 8 rows); a rule may still name a lossy scheme.
// CHECK-LABEL: module
// CHECK-DAG: st.weight @blk.0.attn_q : tensor<256x256x!st.block<"q4_k", 256, 144>> {{.*}}quant = "q4_k"
// CHECK-DAG: st.weight @blk.0.attn_v : tensor<128x256x!st.block<"q6_k", 256, 210>> {{.*}}quant = "q6_k"
// CHECK-DAG: st.weight @blk.0.ffn_up : tensor<256x256x!st.block<"q2_k", 256, 84>> {{.*}}quant = "f32"
// CHECK-DAG: st.weight @blk.0.ffn_gate : tensor<8x256x!st.block<"q3_k", 256, 110>> {{.*}}quant = "f32"
// CHECK-DAG: st.weight @blk.0.attn_k : tensor<128x256x!st.block<"q5_0", 32, 22>> {{.*}}quant = "q8_0"
// CHECK-DAG: st.weight @blk.0.attn_output : tensor<256x256x!st.block<"iq4_nl", 32, 18>> {{.*}}quant = "q8_0"
// RULES-DAG: st.weight @blk.0.attn_v : tensor<128x256x!st.block<"q6_k", 256, 210>> {{.*}}quant = "q4_0"
// RULES-DAG: st.weight @blk.0.attn_q : tensor<256x256x!st.block<"q4_k", 256, 144>> {{.*}}quant = "q4_k"
st.weight @blk.0.attn_q : tensor<256x256x!st.block<"q4_k", 256, 144>> extents [#st.extent<"m", 0, 36864>]
st.weight @blk.0.attn_v : tensor<128x256x!st.block<"q6_k", 256, 210>> extents [#st.extent<"m", 0, 26880>]
st.weight @blk.0.attn_k : tensor<128x256x!st.block<"q5_0", 32, 22>> extents [#st.extent<"m", 0, 22528>]
st.weight @blk.0.attn_output : tensor<256x256x!st.block<"iq4_nl", 32, 18>> extents [#st.extent<"m", 0, 36864>]
st.weight @blk.0.ffn_up : tensor<256x256x!st.block<"q2_k", 256, 84>> extents [#st.extent<"m", 0, 21504>]
st.weight @blk.0.ffn_gate : tensor<8x256x!st.block<"q3_k", 256, 110>> extents [#st.extent<"m", 0, 880>]
