//===- StOps.td - st dialect operations --------------------*- tablegen -*-===//
//
// Graph-level SmallThinker ops. Activations are f32 tensors whose leading dimension is
// the number of tokens (dynamic); weight operands come from st.load_weight.
//
//===----------------------------------------------------------------------===//

#ifndef ST_OPS_TD
#define ST_OPS_TD

include "StDialect.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

class St_Op<string mnemonic, list<Trait> traits = []>
    : Op<St_Dialect, mnemonic, traits>;

def St_Activation : RankedTensorOf<[F32]>;
def St_Weight : AnyTypeOf<[RankedTensorOf<[F32, F16, BF16, St_Q8_0Type, St_Q4_0Type,
                                           St_BlockType]>],
    "ranked tensor of f32, f16, bf16, !st.q8_0, !st.q4_0 or !st.block",
    "::mlir::RankedTensorType">;
def St_TokenIds : 1DTensorOf<[I32]>;

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def St_WeightOp : St_Op<"weight", [Symbol]> {
  let summary = "A weight tensor stored in checkpoint files";
  let description = [{
    Declares a weight by name with its logical type (PyTorch order, [out, in]; stacked
    experts [E, out, in]) and the file extents that hold its bytes. Concatenated in
    order, the extents hold the tensor row-major in its element type's storage layout
    (quantized types in GGUF blocks). HF checkpoints give one extent per expert for
    stacked expert weights; GGUF gives one extent.

    ```mlir
    st.weight @blk.0.attn_q : tensor<128x128xf32>
        extents [#st.extent<"model.safetensors", 4096, 65536>]
    ```
    When a pass changes how the weight is stored (quantization), `type` becomes the
    stored type and `source_type` keeps the type the extents hold, so the transform is
    on record and the model-file writer knows what to convert from:
    ```mlir
    st.weight @blk.0.attn_q : tensor<128x128x!st.q4_0> from tensor<128x128xf32>
        extents [#st.extent<"model.safetensors", 4096, 65536>] {layout = "rows16"}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<St_Weight>:$type,
                       OptionalAttr<TypeAttrOf<St_Weight>>:$source_type,
                       TypedArrayAttrBase<St_ExtentAttr, "extents">:$extents);
  let assemblyFormat = "$sym_name `:` $type (`from` $source_type^)? `extents` $extents attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    // Bytes the weight's type needs in its storage layout.
    uint64_t getStorageBytes();
    // The type the checkpoint extents hold: source_type when set, else type.
    mlir::RankedTensorType getSourceTensorType();
  }];
}

def St_LoadWeightOp : St_Op<"load_weight",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "The value of a declared weight";
  let description = [{
    ```mlir
    %w = st.load_weight @blk.0.attn_q : tensor<128x128xf32>
    ```
    The result type must equal the declared type of the named `st.weight`.
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs St_Weight:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Compute
//===----------------------------------------------------------------------===//

def St_EmbeddingOp : St_Op<"embedding", [Pure]> {
  let summary = "Token embedding gather (no scaling)";
  let description = [{
    `result[t] = table[ids[t]]`, the rows converted to f32.
    ```mlir
    %x = st.embedding %ids, %table : (tensor<?xi32>, tensor<512x128xf32>) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins St_TokenIds:$ids, St_Weight:$table);
  let results = (outs St_Activation:$result);
  let assemblyFormat = "$ids `,` $table attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def St_RmsNormOp : St_Op<"rms_norm", [Pure]> {
  let summary = "RMSNorm over the last dimension";
  let description = [{
    `y = x * rsqrt(mean(x^2) + eps) * weight`, per token.
    ```mlir
    %h = st.rms_norm %x, %w {eps = 1.0e-06 : f64} : (tensor<?x128xf32>, tensor<128xf32>) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins St_Activation:$input, St_Weight:$weight, F64Attr:$eps);
  let results = (outs St_Activation:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def St_RouterOp : St_Op<"router", [Pure]> {
  let summary = "Pre-attention MoE router: logits, top-k, combine weights";
  let description = [{
    Computes `logits = input @ weight^T` ([T, E]) from the layer's raw input (the
    residual stream before input_layernorm), selects the `top_k` largest per token in
    descending order, and turns them into combine weights: `softmax` over the k
    selected logits, or `sigmoid` of each divided by their sum.
    ```mlir
    %w, %i = st.router %x, %wr {layer = 0 : i64, top_k = 2 : i64, weighting = #st<weighting sigmoid>}
        : (tensor<?x128xf32>, tensor<8x128xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
    ```
  }];
  let arguments = (ins St_Activation:$input, St_Weight:$weight,
                       I64Attr:$top_k, St_RouterWeightingAttr:$weighting,
                       I64Attr:$layer);
  let results = (outs St_Activation:$weights, RankedTensorOf<[I32]>:$indices);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def St_AttentionOp : St_Op<"attention", [Pure]> {
  let summary = "GQA self-attention with per-layer RoPE/NoPE and sliding window";
  let description = [{
    From the normed input: `q = x Wq^T`, `k = x Wk^T`, `v = x Wv^T`, split into heads
    of `head_dim`; NEOX RoPE with base `rope_theta` on q and k when `rope`; query head
    h reads kv head `h / (num_heads / num_kv_heads)`; scores scaled by
    `1/sqrt(head_dim)`, causal, and with `window` > 0 a key is visible only when
    `key_pos > query_pos - window`; softmax; heads concatenated; output `@ Wo^T`.
    `positions` holds each token's absolute position.
    ```mlir
    %a = st.attention %h, %pos, %wq, %wk, %wv, %wo {head_dim = 32 : i64, layer = 1 : i64,
        num_heads = 4 : i64, num_kv_heads = 1 : i64, rope = true, rope_theta = 1.0e+04 : f64,
        window = 8 : i64} : (...) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins St_Activation:$input, St_TokenIds:$positions,
                       St_Weight:$wq, St_Weight:$wk, St_Weight:$wv, St_Weight:$wo,
                       I64Attr:$num_heads, I64Attr:$num_kv_heads, I64Attr:$head_dim,
                       BoolAttr:$rope, F64Attr:$rope_theta, I64Attr:$window,
                       I64Attr:$layer);
  let results = (outs St_Activation:$result);
  let assemblyFormat = "$input `,` $positions `,` $wq `,` $wk `,` $wv `,` $wo attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def St_MoeOp : St_Op<"moe", [Pure]> {
  let summary = "ReGLU mixture-of-experts block";
  let description = [{
    For each token and each selected expert e with weight w:
    `y += w * (down_e @ (relu(gate_e @ x) * (up_e @ x)))`. Expert weights are stacked:
    gate and up `[E, F, D]`, down `[E, D, F]`. No shared expert, no biases.
    ```mlir
    %y = st.moe %h, %w, %i, %gate, %up, %down {layer = 0 : i64}
        : (tensor<?x128xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x64x128xf32>,
           tensor<8x64x128xf32>, tensor<8x128x64xf32>) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins St_Activation:$input, St_Activation:$weights,
                       RankedTensorOf<[I32]>:$indices, St_Weight:$gate,
                       St_Weight:$up, St_Weight:$down, I64Attr:$layer);
  let results = (outs St_Activation:$result);
  let assemblyFormat = "$input `,` $weights `,` $indices `,` $gate `,` $up `,` $down attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def St_AddOp : St_Op<"add", [Pure, SameOperandsAndResultType]> {
  let summary = "Residual add";
  let description = [{
    ```mlir
    %x1 = st.add %x0, %a : tensor<?x128xf32>
    ```
  }];
  let arguments = (ins St_Activation:$lhs, St_Activation:$rhs);
  let results = (outs St_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def St_LmHeadOp : St_Op<"lm_head", [Pure]> {
  let summary = "Vocabulary projection: logits = x @ weight^T";
  let description = [{
    No scaling or softcap. With tied embeddings the weight is the embedding table.
    ```mlir
    %logits = st.lm_head %h, %w : (tensor<?x128xf32>, tensor<512x128xf32>) -> tensor<?x512xf32>
    ```
  }];
  let arguments = (ins St_Activation:$input, St_Weight:$weight);
  let results = (outs St_Activation:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Kernel level
//===----------------------------------------------------------------------===//

def St_KernelOp : St_Op<"kernel", [Pure]> {
  let summary = "One call of a runtime kernel, with its implementation chosen";
  let description = [{
    The kernel-level form that `st-lower-to-kernels` produces and the model-file writer
    turns into the execution plan, one step per op in program order. `op` names the
    runtime operation (embed, rms_norm, gemm, route, rope, attention, moe, add); `impl`
    names the chosen kernel (for gemm: gemm_f32, gemm_f16, gemm_q8_0, gemm_q4_0);
    `params` holds the op's static parameters. Weight inputs come from st.load_weight.
    ```mlir
    %q = st.kernel "gemm" [gemm_q4_0] (%h, %wq) {} : (tensor<?x128xf32>, tensor<128x128x!st.q4_0>) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins StrAttr:$op, StrAttr:$impl, Variadic<AnyRankedTensor>:$inputs,
                       DictionaryAttr:$params);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = "$op `[` $impl `]` `(` $inputs `)` $params attr-dict `:` functional-type($inputs, $results)";
  let hasVerifier = 1;
}

#endif // ST_OPS_TD
