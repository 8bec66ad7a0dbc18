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
  // st-sparse-reglu's cost model (auto mode): what reading one live neuron's
  // up and down rows costs per byte, relative to streaming the dense matrices.
  // 2: on the x86 machines measured (stc-bench's live_row_read_share, ~0.5),
  // a live row (~800 bytes at a data-dependent place) reads at about half the
  // streaming rate; assumed the same on arm64 (not measured there).
  double liveRowCost = 2.0;
};

const std::vector<TargetInfo> &allTargets();
// Resolves a name ("host" included); the error lists the known targets.
Status resolveTarget(const std::string &name, TargetInfo &out);

} // namespace stc
