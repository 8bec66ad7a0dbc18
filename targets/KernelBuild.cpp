#include "KernelBuild.h"

#include "formats/FileIO.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace stc {

bool programExists(const std::string &name) {
  if (name.find('/') != std::string::npos)
    return ::access(name.c_str(), X_OK) == 0;
  const char *path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos)
      end = p.size();
    std::string candidate = p.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0)
      return true;
    start = end + 1;
  }
  return false;
}

Status runProgram(const std::vector<std::string> &argv, const std::string &what,
                  const std::string &stdinPath) {
  if (!programExists(argv[0]))
    return Status::error(what + ": cannot find '" + argv[0] + "'");
  std::vector<char *> args;
  for (const std::string &a : argv)
    args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0)
    return Status::error(what + ": fork failed: " + std::strerror(errno));
  if (pid == 0) {
    if (!stdinPath.empty()) {
      const int fd = ::open(stdinPath.c_str(), O_RDONLY);
      if (fd < 0 || ::dup2(fd, 0) < 0)
        _exit(126);
      ::close(fd);
    }
    ::execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return Status::error(what + ": wait failed: " + std::strerror(errno));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return Status::success();
  return Status::error(what + " failed (" +
                       (WIFEXITED(status)
                            ? "exit " + std::to_string(WEXITSTATUS(status))
                            : "signal " + std::to_string(WTERMSIG(status))) +
                       ")");
}

namespace {

struct KernelSpec {
  const char *generator, *function, *params;
  bool
      dotProduct; // the hot int8 dot-product loop: built through the VNNI route
};

// Every kernel the runtime calls. Shapes are run-time parameters, so one set
// per target serves every model.
const KernelSpec kKernels[] = {
    {"gemm_quant", "stc_gemm_q4_0", "bits=4", true},
    {"gemm_quant", "stc_gemm_q8_0", "bits=8", true},
    {"gemm_quant_experts", "stc_gemm_experts_q4_0", "bits=4", true},
    {"gemm_quant_experts", "stc_gemm_experts_q8_0", "bits=8", true},
    {"sparse_up", "stc_sparse_up_q4_0", "bits=4", true},
    {"sparse_up", "stc_sparse_up_q8_0", "bits=8", true},
    {"sparse_down", "stc_sparse_down_q4_0", "bits=4", false},
    {"sparse_down", "stc_sparse_down_q8_0", "bits=8", false},
    {"gemm_float", "stc_gemm_f32", "w.type=float32", false},
    {"gemm_float", "stc_gemm_f16", "w.type=float16", false},
    {"quantize_q8", "stc_quantize_q8", "", false},
    {"rms_norm", "stc_rms_norm", "", false},
    {"rope_neox", "stc_rope_neox", "", false},
    {"attention", "stc_attention", "", false},
};

// Halide 14 reaches vpdpbusd only through its avx512_sapphirerapids target,
// whose objects assume AVX512-FP16 and AVX-VNNI (SIGILL on Zen4; toolchain note
// H1). The route that works: emit LLVM IR for that target, define the one
// wrapper Halide leaves undeclared in that output, and compile the IR for a CPU
// with AVX-512 VNNI only.
const char *kDpbusdDecl =
    "declare <16 x i32> @dpbusdx16(<16 x i32>, <64 x i8>, <64 x i8>)";
const char *kDpbusdDef =
    "declare <16 x i32> @llvm.x86.avx512.vpdpbusd.512(<16 x i32>, <16 x i32>, "
    "<16 x i32>)\n"
    "define internal <16 x i32> @dpbusdx16(<16 x i32> %init, <64 x i8> %a, <64 "
    "x "
    "i8> %b) alwaysinline nounwind readnone {\n"
    "  %1 = bitcast <64 x i8> %a to <16 x i32>\n"
    "  %2 = bitcast <64 x i8> %b to <16 x i32>\n"
    "  %3 = tail call <16 x i32> @llvm.x86.avx512.vpdpbusd.512(<16 x i32> "
    "%init, "
    "<16 x i32> %1, <16 x i32> %2)\n"
    "  ret <16 x i32> %3\n"
    "}\n";

// Runs the generator for one kernel, emitting `emit` for `halideTarget`.
Status runGenerator(const std::string &kernelgen, const KernelSpec &k,
                    const std::string &dir, const char *emit,
                    const std::string &halideTarget) {
  std::vector<std::string> argv = {
      kernelgen,   "-g",
      k.generator, "-f",
      k.function,  "-o",
      dir,         "-e",
      emit,        "target=" + halideTarget + "-no_runtime"};
  if (*k.params)
    argv.push_back(k.params);
  return runProgram(argv, std::string("stc-kernelgen ") + k.function);
}

Status buildThroughLlvmIr(const TargetInfo &target,
                          const std::string &kernelgen, const KernelSpec &k,
                          const std::string &dir) {
  std::string base = joinPath(dir, k.function);
  STC_TRY(
      runGenerator(kernelgen, k, dir, "llvm_assembly", target.dotHalideTarget));
  std::string ir;
  STC_TRY(readSmallFile(base + ".ll", 64u << 20, ir));
  size_t at = ir.find(kDpbusdDecl);
  if (at != std::string::npos) {
    size_t end = ir.find('\n', at);
    ir.replace(at, end - at, kDpbusdDef);
  }
  // Any other wrapper left undefined would fail at link time; say so now.
  size_t pos = 0;
  while ((pos = ir.find("\ndeclare ", pos)) != std::string::npos) {
    size_t end = ir.find('\n', pos + 1);
    std::string line = ir.substr(pos + 1, end - pos - 1);
    size_t at2 = line.find('@');
    std::string name = at2 == std::string::npos ? "" : line.substr(at2 + 1);
    // llvm intrinsics, Halide's runtime, and stc_prefetch from stc's runtime.
    if (name.rfind("llvm.", 0) != 0 && name.rfind("halide_", 0) != 0 &&
        name.rfind("stc_prefetch(", 0) != 0)
      return Status::error(std::string(k.function) +
                           ": Halide's IR calls an undefined helper: " + line);
    pos = end;
  }
  {
    AtomicOutputFile f;
    STC_TRY(f.open(base + ".fixed.ll"));
    STC_TRY(f.write(ir.data(), ir.size()));
    STC_TRY(f.commit());
  }
  const std::string cpu = "-mcpu=" + target.dotLlcCpu;
  STC_TRY(
      runProgram({"opt-14", "-O3", cpu, base + ".fixed.ll", "-o", base + ".bc"},
                 std::string("opt-14 ") + k.function));
  STC_TRY(runProgram({"llc-14", "-O3", cpu, "-relocation-model=pic",
                      "-filetype=obj", base + ".bc", "-o", base + ".o"},
                     std::string("llc-14 ") + k.function));
  ::unlink((base + ".a").c_str());
  return runProgram({"ar", "rcs", base + ".a", base + ".o"},
                    std::string("ar ") + k.function);
}

} // namespace

std::vector<std::string> allKernelFunctions() {
  std::vector<std::string> out;
  for (const KernelSpec &k : kKernels)
    out.push_back(k.function);
  return out;
}

Status buildKernels(const TargetInfo &target, const std::string &kernelgen,
                    const std::string &dir, std::vector<std::string> &archives,
                    const std::vector<std::string> &wanted) {
  if (!fileExists(kernelgen))
    return Status::error(kernelgen + ": the kernel generator is missing (it is "
                                     "built with stc)");
  for (const std::string &w : wanted)
    if (std::none_of(std::begin(kKernels), std::end(kKernels),
                     [&](const KernelSpec &k) { return w == k.function; }))
      return Status::error("no generator makes the kernel '" + w + "'");
  for (const KernelSpec &k : kKernels) {
    if (!wanted.empty() &&
        std::find(wanted.begin(), wanted.end(), k.function) == wanted.end())
      continue;
    if (k.dotProduct && !target.dotHalideTarget.empty()) {
      STC_TRY(buildThroughLlvmIr(target, kernelgen, k, dir));
    } else {
      STC_TRY(runGenerator(kernelgen, k, dir, "static_library",
                           target.halideTarget));
    }
    archives.push_back(joinPath(dir, std::string(k.function) + ".a"));
  }
  STC_TRY(runProgram({kernelgen, "-r", "stc_halide_runtime", "-o", dir, "-e",
                      "static_library", "target=" + target.halideTarget},
                     "stc-kernelgen runtime"));
  archives.push_back(joinPath(dir, "stc_halide_runtime.a"));
  return Status::success();
}

} // namespace stc
