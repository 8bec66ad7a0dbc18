// KernelBuild: produces a target's kernel archives by running stc-kernelgen
// (Halide 14, a separate process) for every kernel the runtime calls, plus one
// Halide runtime.
#pragma once

#include "Target.h"

#include "formats/Status.h"

#include <string>
#include <vector>

namespace stc {

// Runs `argv` (argv[0] looked up on PATH unless it contains '/'), with
// standard input from `stdinPath` when given; `what` names the step in the
// error.
Status runProgram(const std::vector<std::string> &argv, const std::string &what,
                  const std::string &stdinPath = "");
bool programExists(const std::string &name);

// The function name of every kernel the generators make ("stc_gemm_q4_0", ...).
std::vector<std::string> allKernelFunctions();

// Writes <dir>/<kernel>.a for each kernel function named in `wanted` (all of
// them when empty) and <dir>/stc_halide_runtime.a (last in `archives`, the
// link order). An unknown name is an error.
Status buildKernels(const TargetInfo &target, const std::string &kernelgen,
                    const std::string &dir, std::vector<std::string> &archives,
                    const std::vector<std::string> &wanted = {});

} // namespace stc
