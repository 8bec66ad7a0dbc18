// Report: `stc compile --report`: what each kernel call is, how it is built for
// the target (and so why it may be slow), the weight bytes a decoded token
// reads, the roofline they imply, and where each weight lives.
#pragma once

#include "targets/Target.h"

#include "mlir/IR/BuiltinOps.h"

#include <functional>
#include <string>

namespace stc {

// `bandwidth` in bytes/s (0: not known) gives the roofline line.
// `liveRowShare(rowBytes, live)`, when given, measures how fast this machine
// reads rows of `rowBytes` of which a share `live` is read, as a fraction of
// its streaming bandwidth (rt::measureSparseReadBandwidth): the sparse ReGLU
// lines turn the bytes it skips into the time it can save with it.
using LiveRowShare = std::function<double(uint64_t rowBytes, double live)>;
std::string compileReport(mlir::ModuleOp kernelModule, const TargetInfo &target,
                          double bandwidth,
                          const LiveRowShare &liveRowShare = nullptr);

} // namespace stc
