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

// How buildKernels went: archives generated, and taken from the cache (with
// the damaged entries it found and rebuilt).
struct KernelBuildStats {
  int generated = 0, cached = 0, damaged = 0;
};

// Writes <dir>/<kernel>.a for each kernel function named in `wanted` (all of
// them when empty) and <dir>/stc_halide_runtime.a (last in `archives`, the
// link order). An unknown name is an error. With a `cacheDir`, an archive is
// taken from there when everything that determines it (the stc-kernelgen
// binary, Halide's version, the generator, its parameters, the target) is the
// same, and stored there after it is built; an entry is served only whole
// and with its checksum matching.
Status buildKernels(const TargetInfo &target, const std::string &kernelgen,
                    const std::string &dir, std::vector<std::string> &archives,
                    const std::vector<std::string> &wanted,
                    const std::string &cacheDir, KernelBuildStats &stats);

} // namespace stc
