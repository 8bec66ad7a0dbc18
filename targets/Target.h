// Target: the CPU targets stc compiles for: the Halide target string the
// kernels are generated with, the vector width, and the CPU features the code
// needs (checked by the runtime before it runs any kernel). `host` picks the
// best one for this CPU from its cpuid, never from Halide's own host detection
// (which misreads Zen4 and emits SIGILL).
#pragma once

#include "formats/Status.h"

#include <string>
#include <vector>

namespace stc {

struct TargetInfo {
  std::string name;         // x86-64-avx2, x86-64-avx512, arm64
  std::string halideTarget; // without the -no_runtime suffix
  int vectorBits = 0;
  std::vector<std::string> features; // required CPU features
  bool cross = false; // not runnable on this machine's architecture
  std::string description;
  // When set, the int8 dot-product kernels are generated as LLVM IR for this
  // Halide target and compiled with LLVM 14 for `dotLlcCpu` (the VNNI route;
  // KernelBuild.cpp).
  std::string dotHalideTarget;
  std::string dotLlcCpu;
  // st-sparse-reglu's cost model (auto mode): what one byte of a live
  // neuron's up and down rows costs in decode time, relative to a byte of the
  // dense up/down matrices. 3: measured on a Zen 5 (2 threads, the 4B shape at
  // the paper's sparsity, stc-bench --profile): the sparse kernels spent 3.0x
  // the time per byte of the dense ones (rows at data-dependent places, 16-bit
  // sums, a kernel call per expert), and auto with 3 decoded faster than with 2
  // or with every layer sparse. Assumed the same on arm64 (not measured).
  double liveRowCost = 3.0;
};

const std::vector<TargetInfo> &allTargets();
// Resolves a name ("host" included); the error lists the known targets.
Status resolveTarget(const std::string &name, TargetInfo &out);

} // namespace stc
