// The st dialect's passes (declared in Passes.td) and their registration.
#pragma once

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassOptions.h"

#include <memory>

namespace stc::st {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

// registerStPasses(): adds every st pass to the global registry, so stc-opt and
// pipelines given as text can name them.
#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

// Options of the `st-compile` pipeline (what `stc compile` runs by default).
struct StCompilePipelineOptions
    : public mlir::PassPipelineOptions<StCompilePipelineOptions> {
  Option<std::string> quant{*this, "quant",
                            llvm::cl::desc("Default weight scheme: q4_0, q8_0, "
                                           "f16 or f32"),
                            llvm::cl::init("q4_0")};
  ListOption<std::string> rules{*this, "rules",
                                llvm::cl::desc("Per-tensor rules glob=scheme")};
  Option<int64_t> maxBatch{*this, "max-batch",
                           llvm::cl::desc("Planned prefill chunk"),
                           llvm::cl::init(256)};
  Option<std::string> kvType{
      *this, "kv-type",
      llvm::cl::desc("The KV cache's element type: f16, q8_0, f32 or auto"),
      llvm::cl::init("auto")};
  Option<bool> routeAhead{*this, "route-ahead",
                          llvm::cl::desc("Run st-route-ahead"),
                          llvm::cl::init(true)};
  Option<std::string> sparseReglu{
      *this, "sparse-reglu",
      llvm::cl::desc(
          "st-sparse-reglu's mode, auto or on (then st-neuron-layout "
          "runs too), or off"),
      llvm::cl::init("auto")};
  Option<double> liveRowCost{
      *this, "live-row-cost",
      llvm::cl::desc("st-sparse-reglu's cost of a live row per streamed byte"),
      llvm::cl::init(3.0)};
  Option<std::string> sparseDownLayout{
      *this, "sparse-down-layout",
      llvm::cl::desc("st-sparse-reglu's layout of a float down it quantizes: "
                     "transposed or neuron_rows"),
      llvm::cl::init("transposed")};
  Option<int64_t> memoryBudget{*this, "memory-budget",
                               llvm::cl::desc("Bytes, 0 = unlimited"),
                               llvm::cl::init(0)};
};

void buildStCompilePipeline(mlir::OpPassManager &pm,
                            const StCompilePipelineOptions &options);
// Registers `st-compile` with the global pass registry.
void registerStPipelines();

} // namespace stc::st
