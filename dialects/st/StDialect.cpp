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

namespace {
struct KTileScheme {
  const char *name;
  stc::rt::KKind kind;
  unsigned blockBytes; // ggml's
};
constexpr KTileScheme kKTileSchemes[] = {{"q4_k", stc::rt::KKind::Q4_K, 144},
                                         {"q5_k", stc::rt::KKind::Q5_K, 176},
                                         {"q6_k", stc::rt::KKind::Q6_K, 210},
                                         {"q3_k", stc::rt::KKind::Q3_K, 110}};
} // namespace

std::optional<stc::rt::KKind> stc::st::kTileKind(llvm::StringRef name) {
  for (const KTileScheme &k : kKTileSchemes)
    if (name == k.name)
      return k.kind;
  return std::nullopt;
}

stc::st::BlockType stc::st::kTileBlockType(MLIRContext *ctx,
                                           llvm::StringRef name) {
  for (const KTileScheme &k : kKTileSchemes)
    if (name == k.name)
      return BlockType::get(ctx, k.name, 256, k.blockBytes);
  return {};
}

Type stc::st::storageType(MLIRContext *ctx, Type current, StringAttr quant) {
  if (quant) {
    llvm::StringRef q = quant.getValue();
    if (q == "q4_0")
      return Q4_0Type::get(ctx);
    if (q == "q8_0")
      return Q8_0Type::get(ctx);
    if (kTileKind(q))
      return kTileBlockType(ctx, q);
    if (q == "f16")
      return Float16Type::get(ctx);
    return Float32Type::get(ctx);
  }
  if (current.isBF16())
    return Float32Type::get(ctx); // no kernel reads bf16
  return current;
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
