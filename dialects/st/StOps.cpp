// Verifiers of the st ops. Each message names the operand or attribute and the
// dimension that is wrong, with the expected and actual values.
#include "dialects/st/StDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace stc::st;

#define GET_OP_CLASSES
#include "dialects/st/StOps.cpp.inc"

namespace {

// Checks that `type` has rank `expected.size()` and each static dimension
// equals the expected one (a negative expected value means "any"); `what` names
// the operand.
LogicalResult checkShape(Operation *op, Type type, StringRef what,
                         ArrayRef<int64_t> expected,
                         ArrayRef<StringRef> names) {
  auto t = cast<RankedTensorType>(type);
  if (t.getRank() != static_cast<int64_t>(expected.size()))
    return op->emitOpError()
           << what << " must have rank " << expected.size() << ", got " << t;
  for (size_t i = 0; i < expected.size(); ++i) {
    int64_t got = t.getDimSize(i);
    if (expected[i] < 0 || ShapedType::isDynamic(got))
      continue;
    if (got != expected[i])
      return op->emitOpError()
             << what << " dimension " << i << " (" << names[i] << ") is " << got
             << ", expected " << expected[i];
  }
  return success();
}

int64_t dim(Value v, unsigned i) {
  return cast<RankedTensorType>(v.getType()).getDimSize(i);
}

// Activations are [tokens, features]; returns the feature size or emits an
// error.
FailureOr<int64_t> features(Operation *op, Value v, StringRef what) {
  auto t = cast<RankedTensorType>(v.getType());
  if (t.getRank() != 2)
    return op->emitOpError()
           << what << " must be [tokens, features], got " << t;
  if (t.isDynamicDim(1))
    return op->emitOpError() << what << " must have a static feature size";
  return t.getDimSize(1);
}

LogicalResult sameTokens(Operation *op, Value a, Value b, StringRef what) {
  int64_t x = dim(a, 0), y = dim(b, 0);
  if (!ShapedType::isDynamic(x) && !ShapedType::isDynamic(y) && x != y)
    return op->emitOpError()
           << what << " has " << y << " tokens, input has " << x;
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// st.weight / st.load_weight
//===----------------------------------------------------------------------===//

uint64_t WeightOp::getStorageBytes() {
  auto t = cast<RankedTensorType>(getType());
  uint64_t bytes = 0;
  // A K-quant kept for its kernels is stored as rows16k tiles (a little more
  // than ggml's blocks: the sub-block scales unpacked to bytes).
  auto b = dyn_cast<BlockType>(t.getElementType());
  if (b && t.getRank() >= 2) {
    const std::optional<stc::rt::KKind> kind = kTileKind(b.getKind());
    const int64_t rows = t.getDimSize(t.getRank() - 2),
                  cols = t.getDimSize(t.getRank() - 1);
    if (kind && rows % stc::rt::kKTileRows == 0 &&
        cols % stc::rt::kKTileCols == 0)
      return stc::rt::kTileMatrixBytes(*kind, rows, cols) *
             static_cast<uint64_t>(t.getNumElements() / (rows * cols));
  }
  storageBytes(t.getElementType(), t.getNumElements(), bytes);
  return bytes;
}

RankedTensorType WeightOp::getSourceTensorType() {
  if (auto s = getSourceType())
    return cast<RankedTensorType>(*s);
  return cast<RankedTensorType>(getType());
}

LogicalResult WeightOp::verify() {
  auto t = cast<RankedTensorType>(getType());
  if (getSourceType() && getSourceTensorType().getShape() != t.getShape())
    return emitOpError() << "source type " << getSourceTensorType()
                         << " and stored type " << t
                         << " must have the same shape";
  if (!t.hasStaticShape())
    return emitOpError() << "weight type must have a static shape, got " << t;
  Type elt = t.getElementType();
  if (isa<Q8_0Type, Q4_0Type>(elt) &&
      (t.getRank() == 0 || t.getDimSize(t.getRank() - 1) % 32 != 0))
    return emitOpError() << "innermost dimension of a " << elt
                         << " weight must be a multiple of 32, got " << t;
  if (auto b = dyn_cast<BlockType>(getSourceTensorType().getElementType()))
    if (b.getElements() == 0 || getSourceTensorType().getRank() == 0 ||
        getSourceTensorType().getDimSize(getSourceTensorType().getRank() - 1) %
                b.getElements() !=
            0)
      return emitOpError() << "innermost dimension of a " << b
                           << " source must be whole blocks, got "
                           << getSourceTensorType();
  if (getExtents().empty())
    return emitOpError() << "needs at least one extent";
  uint64_t sum = 0, need = 0;
  for (Attribute a : getExtents())
    sum += cast<ExtentAttr>(a).getSize();
  RankedTensorType src = getSourceTensorType();
  if (!storageBytes(src.getElementType(), src.getNumElements(), need))
    return emitOpError() << "source type " << src
                         << " is not a whole number of blocks";
  if (sum != need)
    return emitOpError() << "extents hold " << sum << " bytes, but " << src
                         << " needs " << need;
  return success();
}

LogicalResult
LoadWeightOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto weight =
      symbolTable.lookupNearestSymbolFrom<WeightOp>(*this, getNameAttr());
  if (!weight)
    return emitOpError() << "'" << getName() << "' does not name an st.weight";
  if (weight.getType() != getResult().getType())
    return emitOpError() << "result type " << getResult().getType()
                         << " differs from the declared " << weight.getType()
                         << " of @" << getName();
  return success();
}

//===----------------------------------------------------------------------===//
// Compute ops
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  auto table = cast<RankedTensorType>(getTable().getType());
  if (table.getRank() != 2)
    return emitOpError() << "table must be [vocab, hidden], got " << table;
  FailureOr<int64_t> d = features(*this, getResult(), "result");
  if (failed(d))
    return failure();
  if (table.getDimSize(1) != *d)
    return emitOpError() << "table dimension 1 (hidden) is "
                         << table.getDimSize(1) << ", but the result has " << *d
                         << " features";
  return sameTokens(*this, getIds(), getResult(), "result");
}

LogicalResult RmsNormOp::verify() {
  FailureOr<int64_t> d = features(*this, getInput(), "input");
  if (failed(d))
    return failure();
  if (failed(
          checkShape(*this, getWeight().getType(), "weight", {*d}, {"hidden"})))
    return failure();
  if (getResult().getType() != getInput().getType())
    return emitOpError() << "result type must equal the input type";
  if (getEps().convertToDouble() <= 0)
    return emitOpError() << "eps must be positive";
  return success();
}

LogicalResult RouterOp::verify() {
  FailureOr<int64_t> d = features(*this, getInput(), "input");
  if (failed(d))
    return failure();
  auto w = cast<RankedTensorType>(getWeight().getType());
  if (failed(checkShape(*this, w, "weight", {-1, *d}, {"experts", "hidden"})))
    return failure();
  int64_t experts = w.getDimSize(0), k = getTopK();
  if (k <= 0)
    return emitOpError() << "top_k must be positive, got " << k;
  if (k > experts)
    return emitOpError() << "top_k (" << k
                         << ") exceeds the number of experts (" << experts
                         << ")";
  if (failed(checkShape(*this, getWeights().getType(), "weights result",
                        {-1, k}, {"tokens", "top_k"})) ||
      failed(checkShape(*this, getIndices().getType(), "indices result",
                        {-1, k}, {"tokens", "top_k"})))
    return failure();
  return success();
}

LogicalResult AttentionOp::verify() {
  FailureOr<int64_t> d = features(*this, getInput(), "input");
  if (failed(d))
    return failure();
  int64_t h = getNumHeads(), kv = getNumKvHeads(), hd = getHeadDim();
  if (h <= 0 || kv <= 0 || hd <= 0)
    return emitOpError() << "num_heads, num_kv_heads and head_dim must be "
                            "positive";
  if (h % kv != 0)
    return emitOpError() << "num_heads (" << h
                         << ") is not divisible by num_kv_heads (" << kv << ")";
  if (getRope() && hd % 2 != 0)
    return emitOpError() << "head_dim (" << hd
                         << ") must be even for NEOX RoPE";
  if (static_cast<int64_t>(getWindow()) < 0)
    return emitOpError() << "window must be 0 (global) or positive, got "
                         << static_cast<int64_t>(getWindow());
  if (getRopeTheta().convertToDouble() <= 0)
    return emitOpError() << "rope_theta must be positive";
  if (failed(checkShape(*this, getWq().getType(), "wq", {h * hd, *d},
                        {"num_heads*head_dim", "hidden"})) ||
      failed(checkShape(*this, getWk().getType(), "wk", {kv * hd, *d},
                        {"num_kv_heads*head_dim", "hidden"})) ||
      failed(checkShape(*this, getWv().getType(), "wv", {kv * hd, *d},
                        {"num_kv_heads*head_dim", "hidden"})) ||
      failed(checkShape(*this, getWo().getType(), "wo", {*d, h * hd},
                        {"hidden", "num_heads*head_dim"})))
    return failure();
  if (getResult().getType() != getInput().getType())
    return emitOpError() << "result type must equal the input type";
  return sameTokens(*this, getInput(), getPositions(), "positions");
}

LogicalResult MoeOp::verify() {
  FailureOr<int64_t> d = features(*this, getInput(), "input");
  if (failed(d))
    return failure();
  auto gate = cast<RankedTensorType>(getGate().getType());
  if (gate.getRank() != 3)
    return emitOpError() << "gate must be [experts, ffn, hidden], got " << gate;
  int64_t e = gate.getDimSize(0), f = gate.getDimSize(1);
  if (failed(checkShape(*this, gate, "gate", {e, f, *d},
                        {"experts", "ffn", "hidden"})) ||
      failed(checkShape(*this, getUp().getType(), "up", {e, f, *d},
                        {"experts", "ffn", "hidden"})) ||
      failed(checkShape(*this, getDown().getType(), "down", {e, *d, f},
                        {"experts", "hidden", "ffn"})))
    return failure();
  auto w = cast<RankedTensorType>(getWeights().getType());
  if (w.getRank() != 2)
    return emitOpError() << "weights must be [tokens, top_k], got " << w;
  int64_t k = w.getDimSize(1);
  if (failed(checkShape(*this, getIndices().getType(), "indices", {-1, k},
                        {"tokens", "top_k"})))
    return failure();
  if (k > e)
    return emitOpError() << "top_k (" << k
                         << ") exceeds the number of experts (" << e << ")";
  if (getResult().getType() != getInput().getType())
    return emitOpError() << "result type must equal the input type";
  return sameTokens(*this, getInput(), getWeights(), "weights");
}

LogicalResult LmHeadOp::verify() {
  FailureOr<int64_t> d = features(*this, getInput(), "input");
  if (failed(d))
    return failure();
  auto w = cast<RankedTensorType>(getWeight().getType());
  if (failed(checkShape(*this, w, "weight", {-1, *d}, {"vocab", "hidden"})))
    return failure();
  if (failed(checkShape(*this, getResult().getType(), "result",
                        {-1, w.getDimSize(0)}, {"tokens", "vocab"})))
    return failure();
  return sameTokens(*this, getInput(), getResult(), "result");
}

//===----------------------------------------------------------------------===//
// st.kernel
//===----------------------------------------------------------------------===//

LogicalResult KernelOp::verify() {
  struct Arity {
    const char *op;
    unsigned inputs, results;
  };
  static const Arity arities[] = {
      {"embed", 2, 1},     {"rms_norm", 2, 1}, {"gemm", 2, 1},
      {"route", 1, 2},     {"dispatch", 2, 2}, {"rope", 2, 1},
      {"attention", 4, 1}, {"moe", 6, 1},      {"add", 2, 1}};
  for (const Arity &a : arities) {
    if (getOp() != a.op)
      continue;
    if (getInputs().size() != a.inputs || getResults().size() != a.results)
      return emitOpError() << "'" << getOp() << "' takes " << a.inputs
                           << " inputs and " << a.results << " results, got "
                           << getInputs().size() << " and "
                           << getResults().size();
    if (getOp() == "gemm") {
      auto x = cast<RankedTensorType>(getInputs()[0].getType());
      auto w = cast<RankedTensorType>(getInputs()[1].getType());
      auto y = cast<RankedTensorType>(getResults()[0].getType());
      if (w.getRank() != 2 || x.getRank() != 2 || y.getRank() != 2)
        return emitOpError() << "gemm takes [tokens, in] x [out, in]";
      if (w.getDimSize(1) != x.getDimSize(1))
        return emitOpError()
               << "gemm weight dimension 1 (in) is " << w.getDimSize(1)
               << ", expected " << x.getDimSize(1);
      if (w.getDimSize(0) != y.getDimSize(1))
        return emitOpError()
               << "gemm result dimension 1 (out) is " << y.getDimSize(1)
               << ", expected " << w.getDimSize(0);
    }
    return success();
  }
  return emitOpError() << "unknown kernel op '" << getOp() << "'";
}
