// The st dialect: registration of its types, attributes and ops.
#include "dialects/st/StDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace stc::st;

#include "dialects/st/StOpsDialect.cpp.inc"
#include "dialects/st/StOpsEnums.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/st/StOpsTypes.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/st/StOpsAttrDefs.cpp.inc"

void StDialect::initialize() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/st/StOpsTypes.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/st/StOpsAttrDefs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/st/StOps.cpp.inc"
      >();
}

bool stc::st::storageBytes(Type t, uint64_t count, uint64_t &bytes) {
  if (auto b = dyn_cast<BlockType>(t)) {
    if (b.getElements() == 0 || count % b.getElements() != 0)
      return false;
    bytes = count / b.getElements() * b.getBytes();
    return true;
  }
  if (isa<Q8_0Type, Q4_0Type>(t)) {
    if (count % 32 != 0)
      return false;
    bytes = count / 32 * (isa<Q8_0Type>(t) ? 34 : 18);
    return true;
  }
  bytes = count * (t.getIntOrFloatBitWidth() / 8);
  return true;
}
