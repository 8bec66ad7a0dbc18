// st-lower-to-kernels: graph ops to st.kernel calls (see Passes.td).
#include "dialects/st/StDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace stc::st {
#define GEN_PASS_DEF_STLOWERTOKERNELS
#include "passes/Passes.h.inc"
} // namespace stc::st

using namespace mlir;
using namespace stc::st;

namespace {

// The K-quant block type a weight is stored in (rows16k tiles), or null.
BlockType kQuantType(Type t) {
  auto b = dyn_cast<BlockType>(t);
  return b && kTileKind(b.getKind()) ? b : BlockType();
}

std::string gemmImpl(Value w) {
  Type e = cast<RankedTensorType>(w.getType()).getElementType();
  if (isa<Q4_0Type>(e))
    return "gemm_q4_0";
  if (isa<Q8_0Type>(e))
    return "gemm_q8_0";
  if (BlockType k = kQuantType(e))
    return "gemm_" + k.getKind().str();
  if (e.isF16())
    return "gemm_f16";
  return "gemm_f32";
}

struct StLowerToKernels
    : public stc::st::impl::StLowerToKernelsBase<StLowerToKernels> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    if (failed(retypeWeights(module)))
      return signalPassFailure();
    module.walk([&](func::FuncOp fn) {
      SmallVector<Operation *> ops;
      for (Operation &op : fn.getBody().front())
        ops.push_back(&op);
      for (Operation *op : ops)
        lower(op);
    });
    // Kernel calls already in the IR (resuming from emitted IR whose `quant`
    // was edited) follow their weights' new types.
    module.walk([&](KernelOp k) {
      if (k.getOp() == "gemm" || k.getOp() == "dispatch")
        k.setImplAttr(StringAttr::get(ctx, gemmImpl(k.getInputs()[1])));
    });
  }

  LogicalResult retypeWeights(ModuleOp module) {
    MLIRContext *ctx = &getContext();
    llvm::StringMap<Type> types;
    WalkResult r = module.walk([&](WeightOp w) {
      auto t = cast<RankedTensorType>(w.getType());
      auto quant = w->getAttrOfType<StringAttr>("quant");
      Type elt = storageType(ctx, t.getElementType(), quant);
      const bool kquant = static_cast<bool>(kQuantType(elt));
      bool quantized = isa<Q4_0Type, Q8_0Type>(elt) || kquant;
      // st-sparse-reglu's layouts stay; everything else gets the dense one.
      auto requested = w->getAttrOfType<StringAttr>("layout");
      llvm::StringRef layout = quantized ? "rows16" : "row_major";
      if (requested && (requested.getValue() == "blocks16" ||
                        requested.getValue() == "transposed")) {
        if (kquant) {
          w.emitError() << "weight @" << w.getSymName() << " is laid out "
                        << requested.getValue()
                        << " for st-sparse-reglu, whose kernels read f32, "
                           "q8_0 or q4_0, not "
                        << elt;
          return WalkResult::interrupt();
        }
        layout = requested.getValue();
      }
      // PowerInfer's transposed q4_0 / q8_0 down keeps its blocks (along D)
      // in the neuron_rows layout, whether its layer runs dense or sparse.
      const bool neuronRows =
          isa<Q4_0Type, Q8_0Type>(elt) && t.getRank() == 3 &&
          ((w->hasAttr("transposed_source") &&
            !isa<FloatType>(w.getSourceTensorType().getElementType())) ||
           (requested && requested.getValue() == "neuron_rows"));
      if (neuronRows)
        layout = "neuron_rows";
      if (layout == "blocks16" && !quantized)
        layout = "row_major";
      if (layout == "transposed" && !quantized && !elt.isF32()) {
        w.emitError() << "weight @" << w.getSymName()
                      << " is transposed for st-sparse-reglu, which reads it "
                         "as f32, q8_0 or q4_0, not "
                      << elt;
        return WalkResult::interrupt();
      }
      if (quantized && layout != "rows16") {
        // Blocks run along the columns (F of a transposed [E, D, F]); the
        // transposed layout also packs the D outputs in chunks of 64.
        int64_t rank = t.getRank();
        int64_t rows = rank >= 2 ? t.getDimSize(rank - 2) : 0,
                cols = rank >= 1 ? t.getDimSize(rank - 1) : 0;
        const bool transposed = layout == "transposed";
        if (rank < 2 || cols % 32 != 0 || (transposed && rows % 64 != 0) ||
            (neuronRows && rows % 32 != 0)) {
          w.emitError() << "weight @" << w.getSymName() << " is " << rows << "x"
                        << cols << "; storing it as " << elt << " in layout "
                        << layout << " needs columns in multiples of 32"
                        << (transposed   ? " and rows in multiples of 64"
                            : neuronRows ? " and rows in multiples of 32"
                                         : "");
          return WalkResult::interrupt();
        }
      } else if (quantized) {
        int64_t rank = t.getRank();
        if (rank < 2) {
          w.emitError() << "weight @" << w.getSymName()
                        << " is 1-D and cannot be stored as " << elt;
          return WalkResult::interrupt();
        }
        int64_t rows = t.getDimSize(rank - 2), cols = t.getDimSize(rank - 1);
        if (kquant && (rows % 16 != 0 || cols % 256 != 0)) {
          w.emitError() << "weight @" << w.getSymName() << " is " << rows << "x"
                        << cols << "; storing it as " << elt
                        << " (rows16k tiles) needs rows in multiples of 16 and "
                           "columns in multiples of 256";
          return WalkResult::interrupt();
        }
        if (rows % 16 != 0 || cols % 32 != 0) {
          w.emitError() << "weight @" << w.getSymName() << " is " << rows << "x"
                        << cols << "; storing it as " << elt
                        << " needs rows in multiples of 16 and columns in "
                           "multiples of 32";
          return WalkResult::interrupt();
        }
      }
      auto nt = RankedTensorType::get(t.getShape(), elt);
      if (nt != t && !w.getSourceType())
        w.setSourceTypeAttr(TypeAttr::get(t));
      w.setTypeAttr(TypeAttr::get(nt));
      w->setAttr("layout", StringAttr::get(ctx, layout));
      types[w.getSymName()] = nt;
      return WalkResult::advance();
    });
    if (r.wasInterrupted())
      return failure();
    module.walk([&](LoadWeightOp l) {
      auto it = types.find(l.getName());
      if (it != types.end())
        l.getResult().setType(cast<RankedTensorType>(it->second));
    });
    return success();
  }

  Value kernel(OpBuilder &b, Location loc, llvm::StringRef op,
               llvm::StringRef impl, ValueRange inputs, TypeRange results,
               ArrayRef<NamedAttribute> params, unsigned index = 0) {
    auto k = b.create<KernelOp>(loc, results, b.getStringAttr(op),
                                b.getStringAttr(impl), inputs,
                                b.getDictionaryAttr(params));
    return k.getResult(index);
  }

  RankedTensorType act(OpBuilder &b, int64_t width) {
    return RankedTensorType::get({ShapedType::kDynamic, width}, b.getF32Type());
  }

  Value gemm(OpBuilder &b, Location loc, Value x, Value w) {
    int64_t out = cast<RankedTensorType>(w.getType()).getDimSize(0);
    return kernel(b, loc, "gemm", gemmImpl(w), {x, w}, {act(b, out)}, {});
  }

  void lower(Operation *op) {
    OpBuilder b(op);
    Location loc = op->getLoc();
    auto i64 = [&](int64_t v) { return b.getI64IntegerAttr(v); };
    auto named = [&](llvm::StringRef n, Attribute a) {
      return b.getNamedAttr(n, a);
    };
    if (auto e = dyn_cast<EmbeddingOp>(op)) {
      Value r = kernel(b, loc, "embed", "runtime", {e.getIds(), e.getTable()},
                       {e.getType()}, {});
      e.replaceAllUsesWith(r);
    } else if (auto n = dyn_cast<RmsNormOp>(op)) {
      Value r =
          kernel(b, loc, "rms_norm", "halide", {n.getInput(), n.getWeight()},
                 {n.getType()}, {named("eps", n.getEpsAttr())});
      n.replaceAllUsesWith(r);
    } else if (auto r = dyn_cast<RouterOp>(op)) {
      auto params = b.getDictionaryAttr(
          {named("layer", r.getLayerAttr()), named("top_k", r.getTopKAttr()),
           named("weighting",
                 b.getStringAttr(stringifyRouterWeighting(r.getWeighting())))});
      KernelOp k;
      if (r->hasAttr("route_ahead")) {
        // st-route-ahead: router matmul, top-k and weighting in one dispatch
        // step that also starts reading the chosen experts in.
        k = b.create<KernelOp>(
            loc, TypeRange{r.getWeights().getType(), r.getIndices().getType()},
            b.getStringAttr("dispatch"),
            b.getStringAttr(gemmImpl(r.getWeight())),
            ValueRange{r.getInput(), r.getWeight()}, params);
      } else {
        Value logits = gemm(b, loc, r.getInput(), r.getWeight());
        k = b.create<KernelOp>(
            loc, TypeRange{r.getWeights().getType(), r.getIndices().getType()},
            b.getStringAttr("route"), b.getStringAttr("runtime"),
            ValueRange{logits}, params);
      }
      r.getWeights().replaceAllUsesWith(k.getResult(0));
      r.getIndices().replaceAllUsesWith(k.getResult(1));
    } else if (auto a = dyn_cast<AttentionOp>(op)) {
      int64_t h = a.getNumHeads(), kv = a.getNumKvHeads(), hd = a.getHeadDim();
      Value q = gemm(b, loc, a.getInput(), a.getWq());
      Value k = gemm(b, loc, a.getInput(), a.getWk());
      Value v = gemm(b, loc, a.getInput(), a.getWv());
      if (a.getRope()) {
        auto rope = [&](Value x, int64_t heads) {
          return kernel(b, loc, "rope", "halide", {x, a.getPositions()},
                        {x.getType()},
                        {named("head_dim", i64(hd)), named("heads", i64(heads)),
                         named("theta", a.getRopeThetaAttr())});
        };
        q = rope(q, h);
        k = rope(k, kv);
      }
      // The KV plan (st-kv-plan) travels with the kernel; 0 = full context.
      auto slots = a->getAttrOfType<IntegerAttr>("kv_slots");
      auto kvType = a->getAttrOfType<StringAttr>("kv_type");
      Value o =
          kernel(b, loc, "attention", "halide", {q, k, v, a.getPositions()},
                 {act(b, h * hd)},
                 {named("head_dim", i64(hd)), named("heads", i64(h)),
                  named("kv_heads", i64(kv)),
                  named("kv_slots", i64(slots ? slots.getInt() : 0)),
                  named("kv_type", kvType ? kvType : b.getStringAttr("f32")),
                  named("layer", a.getLayerAttr()),
                  named("window", a.getWindowAttr())});
      a.replaceAllUsesWith(gemm(b, loc, o, a.getWo()));
    } else if (auto m = dyn_cast<MoeOp>(op)) {
      // st-neuron-layout's order travels to the model writer, which stores
      // the rows in it; the sparsity plan's numbers to the report.
      llvm::SmallVector<NamedAttribute> params = {
          named("layer", m.getLayerAttr())};
      for (const char *key : {"neuron_order", "dead_share", "sparse_cost",
                              "hot_prefix", "hot_live_share"})
        if (Attribute a = m->getAttr(key))
          params.push_back(named(key, a));
      Value r = kernel(b, loc, "moe",
                       m->hasAttr("sparse_reglu") ? "sparse_reglu" : "runtime",
                       {m.getInput(), m.getWeights(), m.getIndices(),
                        m.getGate(), m.getUp(), m.getDown()},
                       {m.getType()}, params);
      m.replaceAllUsesWith(r);
    } else if (auto s = dyn_cast<AddOp>(op)) {
      Value r = kernel(b, loc, "add", "runtime", {s.getLhs(), s.getRhs()},
                       {s.getType()}, {});
      s.replaceAllUsesWith(r);
    } else if (auto l = dyn_cast<LmHeadOp>(op)) {
      l.replaceAllUsesWith(gemm(b, loc, l.getInput(), l.getWeight()));
    } else {
      return;
    }
    op->erase();
  }
};

} // namespace
