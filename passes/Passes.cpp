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
  if (options.sparseReglu)
    pm.addPass(createStSparseReglu());
  StKvPlanOptions kv;
  kv.maxBatch = options.maxBatch;
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
      "[st-sparse-reglu], st-kv-plan, st-lower-to-kernels, "
      "st-expert-cache-plan (route-ahead=false leaves st-route-ahead out; "
      "sparse-reglu=true puts st-sparse-reglu in)",
      buildStCompilePipeline);
}

} // namespace stc::st
