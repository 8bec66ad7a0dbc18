// st-print-summary: prints the model's shape and weight bytes (see Passes.td).
#include "dialects/st/StDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

namespace stc::st {
#define GEN_PASS_DEF_STPRINTSUMMARY
#include "passes/Passes.h.inc"
} // namespace stc::st

using namespace mlir;
using namespace stc::st;

namespace {

uint64_t weightBytes(Value v) {
  auto t = cast<RankedTensorType>(v.getType());
  uint64_t bytes = 0;
  storageBytes(t.getElementType(), t.getNumElements(), bytes);
  return bytes;
}

std::string mib(uint64_t bytes) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format("%.1f MiB", bytes / 1048576.0);
  return s;
}

struct StPrintSummary
    : public stc::st::impl::StPrintSummaryBase<StPrintSummary> {
  using StPrintSummaryBase::StPrintSummaryBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    uint64_t total = 0;
    unsigned count = 0;
    module.walk([&](WeightOp w) {
      total += w.getStorageBytes();
      ++count;
    });
    numWeights = count;

    std::string text;
    llvm::raw_string_ostream os(text);
    int64_t layers = 0, hidden = 0, vocab = 0;
    uint64_t perToken = 0;
    std::string header;
    SmallVector<std::string> layerLines;
    module.walk([&](Operation *op) {
      if (auto e = dyn_cast<EmbeddingOp>(op)) {
        auto t = cast<RankedTensorType>(e.getTable().getType());
        perToken += weightBytes(e.getTable()) / t.getDimSize(0);
        hidden = t.getDimSize(1);
      } else if (auto n = dyn_cast<RmsNormOp>(op)) {
        perToken += weightBytes(n.getWeight());
      } else if (auto r = dyn_cast<RouterOp>(op)) {
        perToken += weightBytes(r.getWeight());
      } else if (auto a = dyn_cast<AttentionOp>(op)) {
        perToken += weightBytes(a.getWq()) + weightBytes(a.getWk()) +
                    weightBytes(a.getWv()) + weightBytes(a.getWo());
        ++layers;
        std::string line;
        llvm::raw_string_ostream ls(line);
        ls << "layer " << a.getLayer() << ": "
           << (a.getRope() ? "rope" : "nope") << " ";
        if (a.getWindow() > 0)
          ls << "window " << a.getWindow();
        else
          ls << "global";
        layerLines.push_back(line);
        if (header.empty()) {
          llvm::raw_string_ostream hs(header);
          hs << a.getNumHeads() << " heads / " << a.getNumKvHeads()
             << " kv heads x " << a.getHeadDim();
        }
      } else if (auto m = dyn_cast<MoeOp>(op)) {
        auto g = cast<RankedTensorType>(m.getGate().getType());
        int64_t experts = g.getDimSize(0);
        int64_t k =
            cast<RankedTensorType>(m.getWeights().getType()).getDimSize(1);
        uint64_t all = weightBytes(m.getGate()) + weightBytes(m.getUp()) +
                       weightBytes(m.getDown());
        perToken += all / experts * k;
        if (auto r = m.getWeights().getDefiningOp<RouterOp>()) {
          if (layerLines.size() == 1) {
            llvm::raw_string_ostream hs(header);
            hs << ", " << experts << " experts (top-" << k << ", "
               << stringifyRouterWeighting(r.getWeighting()) << "), ffn "
               << g.getDimSize(1);
          }
        }
      } else if (auto l = dyn_cast<LmHeadOp>(op)) {
        perToken += weightBytes(l.getWeight());
        vocab = cast<RankedTensorType>(l.getWeight().getType()).getDimSize(0);
      }
    });
    os << "st summary: " << layers << " layers, hidden " << hidden << ", "
       << header << ", vocab " << vocab << "\n";
    for (const std::string &l : layerLines)
      os << l << "\n";
    os << "weights: " << mib(total) << " in " << count << " tensors\n";
    os << "bytes per decoded token: " << mib(perToken) << " (" << perToken
       << " bytes; dense: every active weight read once)\n";

    if (output == "-") {
      llvm::errs() << text;
      return;
    }
    std::string err;
    auto file = openOutputFile(output, &err);
    if (!file) {
      module.emitError() << "st-print-summary: " << err;
      return signalPassFailure();
    }
    file->os() << text;
    file->keep();
  }
};

} // namespace
