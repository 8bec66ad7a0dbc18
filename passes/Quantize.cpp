// st-quantize: chooses each weight's storage scheme (see Passes.td).
#include "dialects/st/StDialect.h"
#include "passes/Passes.h"

namespace stc::st {
#define GEN_PASS_DEF_STQUANTIZE
#include "passes/Passes.h.inc"
} // namespace stc::st

using namespace mlir;
using namespace stc::st;

namespace {

// Glob match with '*' (any run) and '?' (any one character).
bool globMatch(llvm::StringRef pattern, llvm::StringRef text) {
  if (pattern.empty())
    return text.empty();
  if (pattern.front() == '*') {
    for (size_t i = 0; i <= text.size(); ++i)
      if (globMatch(pattern.drop_front(), text.drop_front(i)))
        return true;
    return false;
  }
  if (text.empty())
    return false;
  if (pattern.front() != '?' && pattern.front() != text.front())
    return false;
  return globMatch(pattern.drop_front(), text.drop_front());
}

// The K-quants the kernels read in rows16k tiles.
bool isKScheme(llvm::StringRef s) { return kTileKind(s).has_value(); }

bool isScheme(llvm::StringRef s) {
  return s == "q4_0" || s == "q8_0" || s == "f16" || s == "f32" || isKScheme(s);
}

// Whether a K-quant matrix of this shape fits rows16k tiles (16 rows x 256
// columns).
bool fitsKTiles(RankedTensorType t) {
  return t.getRank() >= 2 && t.getDimSize(t.getRank() - 2) % 16 == 0 &&
         t.getDimSize(t.getRank() - 1) % 256 == 0;
}

struct StQuantize : public stc::st::impl::StQuantizeBase<StQuantize> {
  using StQuantizeBase::StQuantizeBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (!isScheme(defaultScheme)) {
      module.emitError()
          << "st-quantize: unknown quant scheme '" << defaultScheme
          << "' (expected q4_0, q8_0, q4_k, q5_k, q6_k, q3_k, f16 or f32)";
      return signalPassFailure();
    }
    SmallVector<std::pair<std::string, std::string>> parsed;
    for (const std::string &rule : rules) {
      size_t eq = rule.rfind('=');
      std::string scheme = eq == std::string::npos ? "" : rule.substr(eq + 1);
      if (eq == std::string::npos || !isScheme(scheme)) {
        module.emitError() << "st-quantize: rule '" << rule
                           << "' must be glob=scheme with scheme q4_0, q8_0, "
                              "q4_k, q5_k, q6_k, q3_k, f16 or f32";
        return signalPassFailure();
      }
      parsed.push_back({rule.substr(0, eq), scheme});
    }
    bool failed = false;
    module.walk([&](WeightOp w) {
      llvm::StringRef name = w.getSymName();
      std::string scheme;
      for (const auto &r : parsed)
        if (globMatch(r.first, name)) {
          scheme = r.second;
          break;
        }
      auto t = cast<RankedTensorType>(w.getType());
      Type elt = w.getSourceTensorType().getElementType();
      auto existing = w->getAttrOfType<StringAttr>("quant");
      if (scheme.empty()) {
        if (existing) {
          // A decision already in the IR (an earlier run, or a hand edit of
          // emitted IR) stands unless a rule names this weight.
          scheme = existing.getValue().str();
        } else if (t.getRank() == 1 || name.ends_with(".ffn_gate_inp")) {
          scheme = "f32";
        } else if (w->hasAttr("transposed_source") && isa<BlockType>(elt)) {
          // PowerInfer's transposed down in another block type: its blocks
          // run along D, which only the neuron_rows layout (q4_0, q8_0)
          // holds.
          scheme = "f32";
          ++numConverted;
        } else if (isa<Q4_0Type, Q8_0Type>(elt)) {
          // (PowerInfer's transposed q4_0 / q8_0 down too: the neuron_rows
          // layout keeps its blocks.)
          scheme = isa<Q4_0Type>(elt) ? "q4_0" : "q8_0";
          ++numPassedThrough;
        } else if (auto block = dyn_cast<BlockType>(elt);
                   block && isKScheme(block.getKind()) && fitsKTiles(t)) {
          // Kept: the K-quant kernels read the blocks' own levels and scales.
          scheme = block.getKind().str();
          ++numPassedThrough;
        } else if (auto block = dyn_cast<BlockType>(elt)) {
          // The exact image in a kernel type: Q5_0's q - 16 and IQ4_NL's
          // table values are int8 under the block's own scale; the others have
          // none (a min, or sub-block scales; a K-quant matrix whose rows are
          // not a multiple of 16), so f32 holds them exactly.
          scheme = block.getKind() == "q5_0" || block.getKind() == "iq4_nl"
                       ? "q8_0"
                       : "f32";
          ++numConverted;
        } else {
          scheme = defaultScheme;
        }
      }
      if (!isScheme(scheme)) {
        w.emitError()
            << "unknown quant scheme '" << scheme << "' on @" << name
            << " (expected q4_0, q8_0, q4_k, q5_k, q6_k, q3_k, f16 or f32)";
        failed = true;
        return;
      }
      if (isKScheme(scheme) && !fitsKTiles(t)) {
        w.emitError() << "@" << name << " (" << t << ") cannot be stored as "
                      << scheme
                      << ": its tiles need rows in multiples of 16 and "
                         "columns in multiples of 256";
        failed = true;
        return;
      }
      if (scheme == "q4_0" || scheme == "q8_0")
        ++numQuantized;
      w->setAttr("quant", StringAttr::get(&getContext(), scheme));
    });
    if (failed)
      signalPassFailure();
  }
};

} // namespace
