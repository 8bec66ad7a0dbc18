// Import: builds the st-dialect module of a SmallThinker checkpoint (HF or
// GGUF). The module references weights by file extents; no weight data is read.
#pragma once

#include "formats/Checkpoint.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

namespace stc {

// Loads the dialects the imported module uses (st, func).
void registerImportDialects(mlir::MLIRContext &context);

// The module has one st.weight per checkpoint weight and a func.func
// @forward(%ids, %positions) -> logits with the graph of spec §2.2, per-layer
// attributes taken from the checkpoint's config (HF arrays, or llama.cpp's
// rules for GGUF).
mlir::OwningOpRef<mlir::ModuleOp> importCheckpoint(mlir::MLIRContext &context,
                                                   const Checkpoint &ck);

} // namespace stc
