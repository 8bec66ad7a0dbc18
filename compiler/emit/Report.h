// Report: `stc compile --report`: what each kernel call is, how it is built for
// the target (and so why it may be slow), the weight bytes a decoded token
// reads, the roofline they imply, and where each weight lives.
#pragma once

#include "targets/Target.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace stc {

// `bandwidth` in bytes/s (0: not known) gives the roofline line.
std::string compileReport(mlir::ModuleOp kernelModule, const TargetInfo &target,
                          double bandwidth);

} // namespace stc
