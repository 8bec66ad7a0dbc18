#include "emit/Report.h"

#include "dialects/st/StDialect.h"

#include "Bandwidth.h"
#include "ModelLayout.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>
#include <vector>

using namespace mlir;

namespace stc {

namespace {

uint64_t bytesOf(Value v) {
  auto t = cast<RankedTensorType>(v.getType());
  uint64_t bytes = 0;
  st::storageBytes(t.getElementType(), t.getNumElements(), bytes);
  return bytes;
}

// How a kernel implementation is built for this target, and what that means for
// speed (measurements behind these lines: notes/kernels.md and the closing
// notes).
std::string howBuilt(llvm::StringRef op, llvm::StringRef impl,
                     const TargetInfo &t) {
  if (op == "moe" && impl == "sparse_reglu")
    return "st-sparse-reglu: all gate rows of the top-k experts (one "
           "expert-gathering call), then only the live neurons (relu(gate) > "
           "0): "
           "their up rows (blocks16, int8 dot, sparse_up) and their down rows "
           "(transposed, 16-bit integer sums per block of 32 neurons, "
           "sparse_down, rows walked in stored order), rows prefetched into "
           "L2 ahead of use; a live row costs 1.7-3 times its bytes in time "
           "(Zen 4: twice, the hardware prefetchers fetch the row after it "
           "too; Zen 5: 3x, the down's 16-bit sums and a call per expert; "
           "a 2.0 GHz Xeon: 1.7x, its dense kernels being slower too), so "
           "it pays from about half the neurons dead (the lines below "
           "measure the read rate on this machine, the plan below uses the "
           "target's cost); "
           "prefill: each expert once for all its tokens";
  if (op == "moe")
    return "the top-k experts' gate/up/down: in decode one expert-gathering "
           "call per projection (same dot-product path as the quantized gemm), "
           "in prefill each expert once for all its tokens";
  if (impl == "gemm_q4_0" || impl == "gemm_q8_0") {
    std::string s =
        "rows16 tiles (16 rows per vector), int8 dot of Q8_0 activations, "
        "row groups split in tasks; ";
    if (!t.dotHalideTarget.empty())
      return s + "vpdpbusd (AVX512-VNNI through LLVM IR + llc-14): streams at "
                 "about 85-95% of bandwidth";
    if (t.name == "x86-64-avx512")
      return s + "no VNNI: products widen to 16 bits (vpmaddwd), about 55% of "
                 "bandwidth";
    if (t.name == "x86-64-avx2")
      return s +
             "AVX2: products widen to 16 bits (Halide 14 emits no pmaddubsw), "
             "about 42% of bandwidth: the slow path";
    return s + "NEON (arm_dot_prod target)";
  }
  if (impl == "gemm_q4_k" || impl == "gemm_q5_k" || impl == "gemm_q6_k" ||
      impl == "gemm_q3_k")
    return "rows16k tiles (16 rows x 256 columns: the ggml blocks' own levels "
           "in 4/2/1-bit planes, sub-block scales as bytes), int8 dot of Q8_0 "
           "activations per 16 or 32 columns, the blocks' scales and mins "
           "applied as ggml defines them; one kernel for dense, prefill and "
           "experts" +
           std::string(t.dotHalideTarget.empty() ? "" : " (vpdpbusd)");
  if (impl == "gemm_f32" || impl == "gemm_f16")
    return "float weights, 8-lane partial sums, 16-row tasks";
  if (impl == "halide")
    return "Halide kernel (vectorized, threaded where it pays)";
  return "runtime C++ (small: top-k, gather, residual add)";
}

// The ReLU sparsity plan: what the calibration measured per layer, what the
// cost model made of it, and st-neuron-layout's hot prefix.
void sparsityPlan(ModuleOp module, llvm::raw_ostream &os) {
  auto plan = module->getAttrOfType<DictionaryAttr>("st.sparse_reglu");
  if (!plan)
    return;
  auto mode = plan.getAs<StringAttr>("mode");
  auto cost = plan.getAs<FloatAttr>("live_row_cost");
  auto calibration = module->getAttrOfType<StringAttr>("st.calibration");
  os << "\nReLU sparsity plan (st-sparse-reglu mode "
     << (mode ? mode.getValue() : "on") << "): calibrated on "
     << (calibration ? calibration.getValue()
                     : "nothing (no profile: auto "
                       "keeps every layer dense)")
     << "\n  cost model: sparse when gate + (1 - dead) x (up + down) x "
     << llvm::format("%.2f", cost ? cost.getValueAsDouble() : 0.0)
     << " (this target's cost of a live row's byte, TargetInfo::liveRowCost) "
        "< 0.95 x (gate + up + down)\n";
  module.walk([&](st::KernelOp k) {
    if (k.getOp() != "moe")
      return;
    DictionaryAttr p = k.getParams();
    auto layer = p.getAs<IntegerAttr>("layer");
    auto dead = p.getAs<FloatAttr>("dead_share");
    auto ratio = p.getAs<FloatAttr>("sparse_cost");
    auto hot = p.getAs<FloatAttr>("hot_prefix");
    auto hotShare = p.getAs<FloatAttr>("hot_live_share");
    os << "  layer " << (layer ? layer.getInt() : -1) << ": ";
    if (dead)
      os << llvm::format("%.1f%% dead", 100 * dead.getValueAsDouble());
    else
      os << "no profile";
    if (ratio)
      os << llvm::format(", sparse costs %.2f of dense",
                         ratio.getValueAsDouble());
    os << " -> " << (k.getImpl() == "sparse_reglu" ? "sparse" : "dense");
    // The down's layout: the file's blocks (transposed along the neurons,
    // neuron_rows along the outputs: PowerInfer's), or for a float checkpoint
    // the target's measured choice (TargetInfo::sparseDownLayout).
    if (auto load = k.getInputs()[5].getDefiningOp<st::LoadWeightOp>())
      if (auto w = SymbolTable::lookupNearestSymbolFrom<st::WeightOp>(
              k, load.getNameAttr()))
        if (auto layout = w->getAttrOfType<StringAttr>("layout");
            layout && layout.getValue() != "rows16")
          os << ", down " << layout.getValue();
    if (p.get("neuron_order") && hot && hotShare)
      os << llvm::format(", neurons hot-first: %.1f per expert fire for half "
                         "the tokens or more, %.0f%% of the live rows",
                         hot.getValueAsDouble(),
                         100 * hotShare.getValueAsDouble());
    os << "\n";
  });
}

} // namespace

std::string compileReport(ModuleOp module, const TargetInfo &target,
                          double bandwidth, const LiveRowShare &liveRowShare) {
  std::string text;
  llvm::raw_string_ostream os(text);
  auto source = module->getAttrOfType<StringAttr>("st.source");
  os << "stc compile report\n";
  os << "  source: " << (source ? source.getValue() : "?") << "\n";
  os << "  target: " << target.name << " (" << target.halideTarget << ")\n\n";

  struct Row {
    unsigned calls = 0;
    uint64_t bytes = 0;
    std::string impl, op;
  };
  std::map<std::string, Row> rows;
  uint64_t perToken = 0, total = 0, expertsAll = 0, expertsActive = 0;
  // Of the active experts' bytes, what a sparse ReGLU reads only for live
  // neurons (up rows, down values) and what it always reads (gates, the down
  // scales shared by 32 neurons).
  uint64_t skippable = 0;
  // One neuron's up row plus down values (the unit the sparse kernels read or
  // skip), from the first sparse MoE.
  uint64_t neuronBytes = 0;
  int64_t topK = 0;
  module.walk([&](st::WeightOp w) { total += w.getStorageBytes(); });
  module.walk([&](st::KernelOp k) {
    std::string key = k.getOp().str() + " [" + k.getImpl().str() + "]";
    Row &r = rows[key];
    r.impl = k.getImpl().str();
    r.op = k.getOp().str();
    ++r.calls;
    uint64_t b = 0;
    if (k.getOp() == "embed") {
      auto t = cast<RankedTensorType>(k.getInputs()[1].getType());
      b = bytesOf(k.getInputs()[1]) / t.getDimSize(0);
    } else if (k.getOp() == "moe") {
      topK = cast<RankedTensorType>(k.getInputs()[1].getType()).getDimSize(1);
      uint64_t moeSkippable = 0;
      for (int i = 3; i < 6; ++i) {
        auto t = cast<RankedTensorType>(k.getInputs()[i].getType());
        uint64_t all = bytesOf(k.getInputs()[i]);
        uint64_t active = all / t.getDimSize(0) * topK;
        expertsAll += all;
        expertsActive += active;
        b += active;
        if (k.getImpl() == "sparse_reglu" && i > 3) {
          uint64_t scales = 0;
          if (i == 5 && isa<st::Q4_0Type, st::Q8_0Type>(t.getElementType()))
            scales = t.getNumElements() / t.getDimSize(0) / 32 * 2 * topK;
          skippable += active - scales;
          moeSkippable += active - scales;
        }
      }
      // The up matrix [E][F][D]: F neurons per expert.
      auto up = cast<RankedTensorType>(k.getInputs()[4].getType());
      if (moeSkippable && !neuronBytes)
        neuronBytes = moeSkippable / topK / up.getDimSize(1);
    } else {
      for (Value v : k.getInputs())
        if (v.getDefiningOp<st::LoadWeightOp>())
          b += bytesOf(v);
    }
    r.bytes += b;
    perToken += b;
  });
  os << "kernels, per decoded token (every active weight read once):\n";
  for (const auto &kv : rows) {
    os << llvm::format("  %-28s %5u calls %10.2f MiB  ", kv.first.c_str(),
                       kv.second.calls, kv.second.bytes / 1048576.0)
       << howBuilt(kv.second.op, kv.second.impl, target) << "\n";
  }
  os << "\nweight bytes per decoded token: "
     << llvm::format("%.1f MiB", perToken / 1048576.0)
     << " dense (experts: top-" << topK << " of each layer, "
     << llvm::format("%.1f", expertsActive / 1048576.0) << " of "
     << llvm::format("%.1f", expertsAll / 1048576.0) << " MiB)\n";
  if (bandwidth > 0)
    os << llvm::format(
        "  roofline: %.1f tokens/s at %.1f GB/s (read bandwidth of "
        "the compiling machine, 2 threads)\n",
        bandwidth / perToken, bandwidth / 1e9);
  if (skippable == 0) {
    os << "  with ReLU sparsity: not planned (st-sparse-reglu did not run), so "
          "every row of each active expert is read\n";
  } else {
    os << "  with ReLU sparsity (st-sparse-reglu): "
       << llvm::format("%.1f", skippable / 1048576.0)
       << " MiB of up rows and down values are read only for live neurons; "
          "stc-bench measures the dead share\n";
    for (double dead : {0.5, 0.6}) {
      double bytes = perToken - dead * skippable;
      os << llvm::format("    at %.0f%% dead (%s): %.1f MiB per token",
                         dead * 100,
                         static_cast<const char *>(
                             dead == 0.5 ? "random weights" : "the paper's 4B"),
                         bytes / 1048576.0);
      if (bandwidth > 0)
        os << llvm::format(", roofline %.1f tokens/s", bandwidth / bytes);
      os << "\n";
      if (bandwidth > 0 && liveRowShare && neuronBytes) {
        // Live rows are short runs at data-dependent places: the machine may
        // read them slower than a stream (measured here), which is what the
        // skipped bytes are worth in time.
        double share = liveRowShare(neuronBytes / 2, 1 - dead);
        double seconds = rt::sparseSecondsPerToken(
            perToken, skippable, dead, bandwidth, std::max(share, 1e-3));
        double ratio = perToken / bandwidth / seconds; // over the dense one
        os << llvm::format(
            "      live rows (%llu bytes) read at %.0f%% of "
            "streaming bandwidth on this machine: roofline "
            "%.1f tokens/s, %.2fx the dense one%s\n",
            static_cast<unsigned long long>(neuronBytes / 2), share * 100,
            1 / seconds, ratio,
            static_cast<const char *>(ratio <= 1.0 ? " (no faster than reading "
                                                     "every row)"
                                                   : ""));
      }
    }
  }
  sparsityPlan(module, os);
  auto budget = module->getAttrOfType<IntegerAttr>("st.memory_budget");
  if (budget && budget.getInt() > 0) {
    uint64_t dense = total - expertsAll;
    uint64_t left = static_cast<uint64_t>(budget.getInt()) > dense
                        ? budget.getInt() - dense
                        : 0;
    os << "\nmemory budget "
       << llvm::format("%.1f MiB", budget.getInt() / 1048576.0)
       << ": resident: the dense weights ("
       << llvm::format("%.1f MiB", dense / 1048576.0)
       << ": embedding, attention, routers, norms, head); streamed: the "
          "experts ("
       << llvm::format("%.1f MiB", expertsAll / 1048576.0)
       << "), read from storage (O_DIRECT) on demand into a cache of at most "
       << llvm::format("%.1f MiB", left / 1048576.0)
       << " (an expert whose layer runs again furthest from now goes first), "
          "each layer's routed experts prefetched right after its dispatch; "
          "the runtime plans the budget at load (stc-run --stats and "
          "stc-bench print the plan): the KV cache for the context it chooses, "
          "activations, the process and a margin come out of that cache, and "
          "an embedding no matmul reads is read a row per token\n";
  } else {
    os << "\nmemory: all " << llvm::format("%.1f MiB", total / 1048576.0)
       << " of weights resident (no --memory-budget); no expert streams\n";
  }
  os << "KV cache:";
  bool any = false;
  std::string planned = "f32";
  // Bytes a position of context takes in the global layers (rings are fixed),
  // for each element type the runtime can hold (--kv-type).
  uint64_t perPosition[3] = {0, 0, 0};
  const model::KvType types[3] = {model::KvType::F16, model::KvType::Q8_0,
                                  model::KvType::F32};
  module.walk([&](st::KernelOp k) {
    if (k.getOp() != "attention")
      return;
    auto slots = k.getParams().getAs<IntegerAttr>("kv_slots");
    auto layer = k.getParams().getAs<IntegerAttr>("layer");
    if (auto t = k.getParams().getAs<StringAttr>("kv_type"))
      planned = t.getValue().str();
    if (slots && slots.getInt() > 0) {
      os << (any ? "," : "") << " layer " << (layer ? layer.getInt() : -1)
         << " ring of " << slots.getInt();
      any = true;
      return;
    }
    const int64_t kvHeads =
        k.getParams().getAs<IntegerAttr>("kv_heads").getInt();
    const int64_t headDim =
        k.getParams().getAs<IntegerAttr>("head_dim").getInt();
    for (int i = 0; i < 3; ++i)
      perPosition[i] += 2 * kvHeads * rt::kvRowBytes(types[i], headDim);
  });
  os << (any ? "; the other layers hold the whole context\n"
             : " every layer holds the whole context\n");
  os << "KV cache element type: " << planned
     << " (st-kv-plan; stc-run --kv-type chooses another); bytes per position "
        "of context:";
  for (int i = 0; i < 3; ++i)
    os << (i ? "," : "") << " " << rt::kvTypeName(types[i]) << " "
       << perPosition[i];
  os << "\n";
  return os.str();
}

} // namespace stc
