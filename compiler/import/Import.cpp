#include "import/Import.h"

#include "dialects/st/StDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

using namespace mlir;

namespace stc {

void registerImportDialects(MLIRContext &context) {
  context.loadDialect<st::StDialect, func::FuncDialect>();
}

static Type elementType(MLIRContext *ctx, DType t) {
  switch (t) {
  case DType::F32:
    return Float32Type::get(ctx);
  case DType::F16:
    return Float16Type::get(ctx);
  case DType::BF16:
    return BFloat16Type::get(ctx);
  case DType::Q8_0:
    return st::Q8_0Type::get(ctx);
  case DType::Q4_0:
    return st::Q4_0Type::get(ctx);
  default: // a block type no kernel reads: described by its block
    return st::BlockType::get(ctx, dtypeName(t), blockElements(t),
                              static_cast<unsigned>(blockBytes(t)));
  }
}

namespace {

class Importer {
public:
  Importer(MLIRContext &ctx, const Checkpoint &ck)
      : ctx_(ctx), ck_(ck), b_(&ctx),
        loc_(FileLineColLoc::get(&ctx, ck.path, 0, 0)) {}

  OwningOpRef<ModuleOp> run() {
    const ModelConfig &c = ck_.config;
    OwningOpRef<ModuleOp> module = ModuleOp::create(loc_);
    setModuleAttributes(*module);
    b_.setInsertionPointToEnd(module->getBody());
    for (const WeightInfo &w : ck_.weights)
      declareWeight(w);

    auto i32 = b_.getI32Type();
    auto ids = RankedTensorType::get({ShapedType::kDynamic}, i32);
    auto act = activation(c.hiddenSize);
    auto logitsType = activation(c.vocabSize);
    auto fn = b_.create<func::FuncOp>(
        loc_, "forward", b_.getFunctionType({ids, ids}, {logitsType}));
    Block *body = fn.addEntryBlock();
    b_.setInsertionPointToStart(body);
    Value tokens = body->getArgument(0), positions = body->getArgument(1);

    Value table = load("token_embd");
    Value x = b_.create<st::EmbeddingOp>(loc_, act, tokens, table);
    for (int64_t i = 0; i < c.numLayers; ++i)
      x = buildLayer(i, x, positions);
    Value finalNorm = load("output_norm");
    Value h = b_.create<st::RmsNormOp>(loc_, act, x, finalNorm,
                                       b_.getF64FloatAttr(c.rmsNormEps));
    Value head = load(ck_.lmHeadTied ? "token_embd" : "output");
    Value logits = b_.create<st::LmHeadOp>(loc_, logitsType, h, head);
    b_.create<func::ReturnOp>(loc_, logits);
    return module;
  }

private:
  RankedTensorType activation(int64_t features) {
    return RankedTensorType::get({ShapedType::kDynamic, features},
                                 b_.getF32Type());
  }

  void setModuleAttributes(ModuleOp m) {
    const ModelConfig &c = ck_.config;
    auto i64 = [&](int64_t v) { return b_.getI64IntegerAttr(v); };
    auto list = [&](const std::vector<int> &v) {
      SmallVector<int64_t> x(v.begin(), v.end());
      return b_.getDenseI64ArrayAttr(x);
    };
    SmallVector<NamedAttribute> cfg = {
        b_.getNamedAttr("num_hidden_layers", i64(c.numLayers)),
        b_.getNamedAttr("hidden_size", i64(c.hiddenSize)),
        b_.getNamedAttr("num_attention_heads", i64(c.numHeads)),
        b_.getNamedAttr("num_key_value_heads", i64(c.numKVHeads)),
        b_.getNamedAttr("head_dim", i64(c.headDim)),
        b_.getNamedAttr("vocab_size", i64(c.vocabSize)),
        b_.getNamedAttr("moe_num_primary_experts", i64(c.numExperts)),
        b_.getNamedAttr("moe_num_active_primary_experts", i64(c.topK)),
        b_.getNamedAttr("moe_ffn_hidden_size", i64(c.expertFfn)),
        b_.getNamedAttr("rope_theta", b_.getF64FloatAttr(c.ropeTheta)),
        b_.getNamedAttr("rms_norm_eps", b_.getF64FloatAttr(c.rmsNormEps)),
        b_.getNamedAttr("rope_layout", list(c.ropeLayout)),
        b_.getNamedAttr("sliding_window_layout", list(c.swaLayout)),
        b_.getNamedAttr("sliding_window_size", i64(c.slidingWindow)),
        b_.getNamedAttr("tie_word_embeddings", b_.getBoolAttr(ck_.lmHeadTied)),
        b_.getNamedAttr("bos_token_id", i64(c.bosTokenId)),
        b_.getNamedAttr("max_position_embeddings",
                        i64(c.maxPositions > 0 ? c.maxPositions : 4096)),
    };
    m->setAttr("st.config", b_.getDictionaryAttr(cfg));
    m->setAttr("st.source", b_.getStringAttr(ck_.path));
    m->setAttr(
        "st.format",
        b_.getStringAttr(ck_.format == CheckpointFormat::HF ? "hf" : "gguf"));
    m->setAttr(
        "st.convention",
        b_.getStringAttr(c.convention == Convention::HF ? "hf" : "llama.cpp"));
  }

  void declareWeight(const WeightInfo &w) {
    auto type = RankedTensorType::get(w.shape, elementType(&ctx_, w.dtype));
    SmallVector<Attribute> extents;
    for (const TensorExtent &e : w.extents)
      extents.push_back(st::ExtentAttr::get(&ctx_, e.file, e.offset, e.nbytes));
    auto op = b_.create<st::WeightOp>(loc_, w.name, type, TypeAttr(),
                                      b_.getArrayAttr(extents));
    // PowerInfer's transposed down: the extents hold each expert transposed.
    if (w.expertsTransposed)
      op->setAttr("transposed_source", b_.getUnitAttr());
    types_[w.name] = op.getType();
  }

  Value load(const std::string &name) {
    Type t = types_.lookup(name);
    return b_.create<st::LoadWeightOp>(loc_, t, name);
  }

  Value buildLayer(int64_t i, Value x, Value positions) {
    const ModelConfig &c = ck_.config;
    std::string p = "blk." + std::to_string(i) + ".";
    auto act = activation(c.hiddenSize);
    auto layer = b_.getI64IntegerAttr(i);
    auto eps = b_.getF64FloatAttr(c.rmsNormEps);

    // The router reads the raw layer input, before input_layernorm (spec §0.1).
    auto routed =
        RankedTensorType::get({ShapedType::kDynamic, c.topK}, b_.getF32Type());
    auto routedIdx =
        RankedTensorType::get({ShapedType::kDynamic, c.topK}, b_.getI32Type());
    auto weighting = st::RouterWeightingAttr::get(
        &ctx_, c.weighting == RouterWeighting::Softmax
                   ? st::RouterWeighting::softmax
                   : st::RouterWeighting::sigmoid);
    // Weights are loaded one statement at a time so the IR lists them in
    // operand order.
    Value wRouter = load(p + "ffn_gate_inp");
    auto router =
        b_.create<st::RouterOp>(loc_, routed, routedIdx, x, wRouter,
                                b_.getI64IntegerAttr(c.topK), weighting, layer);

    Value wNorm = load(p + "attn_norm");
    Value h = b_.create<st::RmsNormOp>(loc_, act, x, wNorm, eps);
    Value wq = load(p + "attn_q"), wk = load(p + "attn_k"),
          wv = load(p + "attn_v"), wo = load(p + "attn_output");
    Value a = b_.create<st::AttentionOp>(
        loc_, act, h, positions, wq, wk, wv, wo,
        b_.getI64IntegerAttr(c.numHeads), b_.getI64IntegerAttr(c.numKVHeads),
        b_.getI64IntegerAttr(c.headDim), b_.getBoolAttr(c.layerUsesRope(i)),
        b_.getF64FloatAttr(c.ropeTheta), b_.getI64IntegerAttr(c.layerWindow(i)),
        layer);
    x = b_.create<st::AddOp>(loc_, x, a);

    Value wNorm2 = load(p + "ffn_norm");
    Value h2 = b_.create<st::RmsNormOp>(loc_, act, x, wNorm2, eps);
    Value gate = load(p + "ffn_gate_exps"), up = load(p + "ffn_up_exps"),
          down = load(p + "ffn_down_exps");
    Value y = b_.create<st::MoeOp>(loc_, act, h2, router.getWeights(),
                                   router.getIndices(), gate, up, down, layer);
    return b_.create<st::AddOp>(loc_, x, y);
  }

  MLIRContext &ctx_;
  const Checkpoint &ck_;
  OpBuilder b_;
  Location loc_;
  llvm::StringMap<Type> types_;
};

} // namespace

OwningOpRef<ModuleOp> importCheckpoint(MLIRContext &context,
                                       const Checkpoint &ck) {
  registerImportDialects(context);
  return Importer(context, ck).run();
}

} // namespace stc
