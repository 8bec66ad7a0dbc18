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

// Writes <dir>/<kernel>.a for every kernel and <dir>/stc_halide_runtime.a (last
// in `archives`, the link order).
Status buildKernels(const TargetInfo &target, const std::string &kernelgen,
                    const std::string &dir, std::vector<std::string> &archives);

} // namespace stc
