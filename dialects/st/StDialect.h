// The st dialect: SmallThinker's model graph (see StDialect.td / StOps.td).
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "runtime/KQuantLayout.h"

#include <optional>

#include "dialects/st/StOpsDialect.h.inc"
#include "dialects/st/StOpsEnums.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/st/StOpsTypes.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/st/StOpsAttrDefs.h.inc"

#define GET_OP_CLASSES
#include "dialects/st/StOps.h.inc"

namespace stc::st {
// Bytes `count` elements of weight element type `t` occupy (block types: whole
// blocks). Returns false for a block count that is not whole blocks.
bool storageBytes(mlir::Type t, uint64_t count, uint64_t &bytes);

// The storage element type of a weight whose element type is `current` and
// whose st-quantize scheme is `quant` (null: none chosen): the scheme's type,
// or `current` made kernel-readable (bf16 becomes f32).
mlir::Type storageType(mlir::MLIRContext *ctx, mlir::Type current,
                       mlir::StringAttr quant);

// The K-quants whose kernels read rows16k tiles (runtime/KQuantLayout.h), by
// ggml name ("q4_k", "q5_k", "q6_k", "q3_k"): the tile kind, or none for any
// other name. Their quant scheme has the same name.
std::optional<rt::KKind> kTileKind(llvm::StringRef ggmlName);
// The block type such a K-quant is stored as: 256 elements in ggml's block
// bytes.
BlockType kTileBlockType(mlir::MLIRContext *ctx, llvm::StringRef ggmlName);
} // namespace stc::st
