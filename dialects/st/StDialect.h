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
} // namespace stc::st
