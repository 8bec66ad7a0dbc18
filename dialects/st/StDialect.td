//===- StDialect.td - the SmallThinker graph dialect -------*- tablegen -*-===//
//
// The `st` dialect: the dialect, its types (GGUF-compatible quantized element types)
// and attributes (weight byte extents, router weighting).
//
//===----------------------------------------------------------------------===//

#ifndef ST_DIALECT_TD
#define ST_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def St_Dialect : Dialect {
  let name = "st";
  let cppNamespace = "::stc::st";
  let summary = "The SmallThinker mixture-of-experts model graph";
  let description = [{
    Graph-level ops for SmallThinker (spec/smallthinker.md): token embedding, RMSNorm,
    the pre-attention router, GQA attention with per-layer RoPE/NoPE and sliding
    window, the ReGLU MoE block, the LM head and residual adds. Weights are module-level
    symbols (`st.weight`) that reference byte extents of the checkpoint files; the IR
    never holds weight data.
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
}

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

class St_Type<string name, string typeMnemonic> : TypeDef<St_Dialect, name> {
  let mnemonic = typeMnemonic;
}

def St_Q8_0Type : St_Type<"Q8_0", "q8_0"> {
  let summary = "GGUF Q8_0 element: blocks of 32 int8 with one f16 scale";
  let description = [{
    An element type for tensors of weights quantized in GGUF's Q8_0 layout: along the
    innermost dimension, every 32 elements form a 34-byte block (f16 scale d, then 32
    int8 q; value = d * q). The tensor's shape counts elements, so the innermost
    dimension must be a multiple of 32.
  }];
}

def St_Q4_0Type : St_Type<"Q4_0", "q4_0"> {
  let summary = "GGUF Q4_0 element: blocks of 32 4-bit values with one f16 scale";
  let description = [{
    GGUF's Q4_0 layout: 18-byte blocks of 32 elements along the innermost dimension
    (f16 scale d, then 16 bytes; byte j holds element j in its low nibble and element
    j + 16 in its high nibble; value = d * (nibble - 8)).
  }];
}

def St_BlockType : St_Type<"Block", "block"> {
  let summary = "A ggml block type that stc reads but has no kernel for";
  let description = [{
    The element type of a checkpoint tensor stored in one of ggml's other block
    layouts (Q4_1, Q5_0, Q5_1, Q2_K-Q6_K, IQ4_NL, IQ4_XS), as the source of an
    `st.weight`: `$elements` consecutive elements of the innermost dimension form a
    block of `$bytes` bytes. No kernel reads it: st-quantize picks a stored type
    (the exact image in a kernel type where one exists, else f32) and the model-file
    writer converts, with ggml's dequantization.

    ```mlir
    st.weight @blk.0.attn_q : tensor<256x256xf32> from tensor<256x256x!st.block<"q4_k", 256, 144>> ...
    ```
  }];
  let parameters = (ins StringRefParameter<"ggml type name">:$kind,
                        "unsigned":$elements, "unsigned":$bytes);
  let assemblyFormat = "`<` $kind `,` $elements `,` $bytes `>`";
}

def St_QuantType : AnyTypeOf<[St_Q8_0Type, St_Q4_0Type]>;
def St_WeightElement : AnyTypeOf<[F32, F16, BF16, St_Q8_0Type, St_Q4_0Type,
                                  St_BlockType]>;

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

def St_ExtentAttr : AttrDef<St_Dialect, "Extent"> {
  let mnemonic = "extent";
  let summary = "A byte range of a checkpoint file";
  let parameters = (ins StringRefParameter<"file path">:$file,
                        "uint64_t":$offset, "uint64_t":$size);
  let assemblyFormat = "`<` $file `,` $offset `,` $size `>`";
}

def St_WeightingSoftmax : I32EnumAttrCase<"softmax", 0>;
def St_WeightingSigmoid : I32EnumAttrCase<"sigmoid", 1>;
def St_RouterWeighting : I32EnumAttr<"RouterWeighting",
    "how the top-k router logits become combine weights",
    [St_WeightingSoftmax, St_WeightingSigmoid]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::stc::st";
}
def St_RouterWeightingAttr : EnumAttr<St_Dialect, St_RouterWeighting, "weighting">;

#endif // ST_DIALECT_TD
