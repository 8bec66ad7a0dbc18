// stc-opt: mlir-opt for the st dialect: parses .mlir, runs st passes by name,
// prints IR.
#include "dialects/st/StDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<stc::st::StDialect, mlir::func::FuncDialect>();
  mlir::registerTransformsPasses(); // canonicalize, cse, ... for pipelines
  stc::st::registerStPasses();
  stc::st::registerStPipelines();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "stc optimizer driver\n", registry));
}
