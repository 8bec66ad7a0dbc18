// The st pipelines: the passes of Passes.td in the order `stc compile` runs
// them, registered under one name so stc-opt (and --pass-pipeline) can run them
// too.
#include "passes/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

namespace stc::st {

void buildStCompilePipeline(OpPassManager &pm,
                            const StCompilePipelineOptions &options) {
  if (options.routeAhead)
    pm.addPass(createStRouteAhead());
  StQuantizeOptions quant;
  quant.defaultScheme = options.quant;
  quant.rules = options.rules;
  pm.addPass(createStQuantize(quant));
  if (options.sparseReglu != "off") {
    StSparseRegluOptions sparse;
    sparse.mode = options.sparseReglu;
    sparse.liveRowCost = options.liveRowCost;
    sparse.downLayout = options.sparseDownLayout;
    pm.addPass(createStSparseReglu(sparse));
    pm.addPass(createStNeuronLayout());
  }
  StKvPlanOptions kv;
  kv.maxBatch = options.maxBatch;
  kv.kvType = options.kvType;
  pm.addPass(createStKvPlan(kv));
  pm.addPass(createStLowerToKernels());
  StExpertCachePlanOptions budget;
  budget.budget = options.memoryBudget;
  pm.addPass(createStExpertCachePlan(budget));
}

void registerStPipelines() {
  PassPipelineRegistration<StCompilePipelineOptions>(
      "st-compile",
      "The stc compile pipeline: st-route-ahead, st-quantize, "
      "[st-sparse-reglu, st-neuron-layout], st-kv-plan, st-lower-to-kernels, "
      "st-expert-cache-plan (route-ahead=false leaves st-route-ahead out; "
      "sparse-reglu=auto|on runs st-sparse-reglu in that mode and "
      "st-neuron-layout, off leaves both out)",
      buildStCompilePipeline);
}

} // namespace stc::st
