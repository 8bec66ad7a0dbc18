#include "KernelBuild.h"

#include "formats/FileIO.h"
#include "formats/Progress.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
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
  // Converts fp16 in its hot loop: on a target with the LLVM IR route, built
  // through it with native_half=true, where stc_half_to_float becomes LLVM's
  // fpext (one vcvtph2ps per vector; Halide 14 emulates fp16 casts on x86
  // with integer ops).
  bool nativeHalf = false;
};

// Every kernel the runtime calls. Shapes are run-time parameters, so one set
// per target serves every model.
const KernelSpec kKernels[] = {
    {"gemm_quant", "stc_gemm_q4_0", "bits=4", true, true},
    {"gemm_quant", "stc_gemm_q8_0", "bits=8", true, true},
    {"gemm_quant_experts", "stc_gemm_experts_q4_0", "bits=4", true, true},
    {"gemm_quant_experts", "stc_gemm_experts_q8_0", "bits=8", true, true},
    {"gemm_kquant", "stc_gemm_q4_k", "type=q4_k", true},
    {"gemm_kquant", "stc_gemm_q5_k", "type=q5_k", true},
    {"gemm_kquant", "stc_gemm_q6_k", "type=q6_k", true},
    {"gemm_kquant", "stc_gemm_q3_k", "type=q3_k", true},
    {"sparse_up", "stc_sparse_up_q4_0", "bits=4", true},
    {"sparse_up", "stc_sparse_up_q8_0", "bits=8", true},
    {"sparse_down", "stc_sparse_down_q4_0", "bits=4", false},
    {"sparse_down", "stc_sparse_down_q8_0", "bits=8", false},
    {"down_rows", "stc_down_rows_q4_0", "bits=4", false},
    {"down_rows", "stc_down_rows_q8_0", "bits=8", false},
    {"gemm_float", "stc_gemm_f32", "w.type=float32", false},
    {"gemm_float", "stc_gemm_f16", "w.type=float16", false},
    {"quantize_q8", "stc_quantize_q8", "", false},
    {"rms_norm", "stc_rms_norm", "", false},
    {"rope_neox", "stc_rope_neox", "", false},
    {"attention", "stc_attention_f32",
     "kv_type=f32 k.type=float32 v.type=float32", false},
    {"attention", "stc_attention_f32_hd128",
     "kv_type=f32 k.type=float32 v.type=float32 head_dim=128", false},
    {"attention", "stc_attention_f32_hd128_tile",
     "kv_type=f32 k.type=float32 v.type=float32 head_dim=128 tile=true", false},
    {"attention", "stc_attention_f16",
     "kv_type=f16 k.type=uint16 v.type=uint16", false, true},
    {"attention", "stc_attention_f16_hd128",
     "kv_type=f16 k.type=uint16 v.type=uint16 head_dim=128", false, true},
    {"attention", "stc_attention_f16_hd128_tile",
     "kv_type=f16 k.type=uint16 v.type=uint16 head_dim=128 tile=true", false,
     true},
    {"attention", "stc_attention_q8_0", "kv_type=q8_0 k.type=int8 v.type=int8",
     false, true},
    {"attention", "stc_attention_q8_0_hd128",
     "kv_type=q8_0 k.type=int8 v.type=int8 head_dim=128", false, true},
    {"attention", "stc_attention_q8_0_hd128_tile",
     "kv_type=q8_0 k.type=int8 v.type=int8 head_dim=128 tile=true", false,
     true},
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

// quant_dot.h's stc_half_to_float, which Halide scalarizes into one call per
// lane: defined as fpext, inlined, and vectorized back by opt's SLP pass into
// one vcvtph2ps per 16 lanes (checked on the attention kernels' assembly).
const char *kHalfDecl = "declare float @stc_half_to_float(i16)";
const char *kHalfDef =
    "define internal float @stc_half_to_float(i16 %h) alwaysinline nounwind "
    "readnone {\n"
    "  %1 = bitcast i16 %h to half\n"
    "  %2 = fpext half %1 to float\n"
    "  ret float %2\n"
    "}";

// Runs the generator for one kernel, emitting `emit` for `halideTarget`, with
// one more generator parameter if `extraParam` is set.
Status runGenerator(const std::string &kernelgen, const KernelSpec &k,
                    const std::string &dir, const char *emit,
                    const std::string &halideTarget,
                    const char *extraParam = nullptr) {
  std::vector<std::string> argv = {
      kernelgen,   "-g",
      k.generator, "-f",
      k.function,  "-o",
      dir,         "-e",
      emit,        "target=" + halideTarget + "-no_runtime"};
  // Space-separated name=value generator parameters, one argument each.
  for (size_t at = 0; k.params[at];) {
    const char *p = k.params + at;
    const size_t len = std::strcspn(p, " ");
    if (len > 0)
      argv.emplace_back(p, len);
    at += len + (p[len] == ' ');
  }
  if (extraParam)
    argv.emplace_back(extraParam);
  return runProgram(argv, std::string("stc-kernelgen ") + k.function);
}

Status buildThroughLlvmIr(const TargetInfo &target,
                          const std::string &kernelgen, const KernelSpec &k,
                          const std::string &dir) {
  std::string base = joinPath(dir, k.function);
  STC_TRY(runGenerator(kernelgen, k, dir, "llvm_assembly",
                       target.dotHalideTarget,
                       k.nativeHalf ? "native_half=true" : nullptr));
  std::string ir;
  STC_TRY(readSmallFile(base + ".ll", 64u << 20, ir));
  for (const auto &[decl, def] : {std::make_pair(kDpbusdDecl, kDpbusdDef),
                                  std::make_pair(kHalfDecl, kHalfDef)}) {
    size_t at = ir.find(decl);
    if (at != std::string::npos) {
      size_t end = ir.find('\n', at);
      ir.replace(at, end - at, def);
    }
  }
  // Any other wrapper left undefined would fail at link time; say so now.
  size_t pos = 0;
  while ((pos = ir.find("\ndeclare ", pos)) != std::string::npos) {
    size_t end = ir.find('\n', pos + 1);
    std::string line = ir.substr(pos + 1, end - pos - 1);
    size_t at2 = line.find('@');
    std::string name = at2 == std::string::npos ? "" : line.substr(at2 + 1);
    // llvm intrinsics, Halide's runtime, and the prefetches of stc's runtime.
    if (name.rfind("llvm.", 0) != 0 && name.rfind("halide_", 0) != 0 &&
        name.rfind("stc_prefetch(", 0) != 0 &&
        name.rfind("stc_prefetch_l1(", 0) != 0)
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

namespace {

uint64_t fnv1a(const std::string &bytes, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : bytes)
    h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(v));
  return buf;
}

// The kernel cache: <dir>/<name>-<key>.a and its checksum <...>.a.sum, both
// written under temporary names and renamed, the checksum last.
class KernelCache {
public:
  KernelCache(std::string dir, const std::string &kernelgen,
              const TargetInfo &target)
      : dir_(std::move(dir)) {
    if (dir_.empty())
      return;
    std::string bin;
    if (!readSmallFile(kernelgen, 1ull << 30, bin).ok() ||
        !makeDirectories(dir_).ok()) {
      dir_.clear(); // no cache rather than a wrong one
      return;
    }
    // Halide is the Debian package the generator links (Halide 14).
    base_ = fnv1a(bin) ^ fnv1a("halide-14|" + target.halideTarget + "|" +
                               target.dotHalideTarget + "|" + target.dotLlcCpu);
  }
  bool enabled() const { return !dir_.empty(); }
  std::string entry(const std::string &name, const std::string &what) const {
    return joinPath(dir_, name + "-" + hex(fnv1a(what, base_)) + ".a");
  }
  // Copies a whole, intact entry to `to`; damaged is set for one whose bytes
  // do not match its checksum.
  bool fetch(const std::string &entry, const std::string &to, bool &damaged) {
    damaged = false;
    std::string bytes, sum;
    if (!readSmallFile(entry + ".sum", 64, sum).ok())
      return false;
    if (!readSmallFile(entry, 1ull << 30, bytes).ok() ||
        sum != hex(fnv1a(bytes))) {
      damaged = true;
      return false;
    }
    return writeWhole(to, bytes).ok();
  }
  void store(const std::string &from, const std::string &entry) {
    std::string bytes;
    if (!readSmallFile(from, 1ull << 30, bytes).ok())
      return;
    // A failed store only costs a later rebuild.
    if (writeWhole(entry, bytes).ok())
      (void)writeWhole(entry + ".sum", hex(fnv1a(bytes)));
  }

private:
  static Status writeWhole(const std::string &path, const std::string &bytes) {
    AtomicOutputFile f;
    STC_TRY(f.open(path));
    STC_TRY(f.write(bytes.data(), bytes.size()));
    return f.commit();
  }
  std::string dir_;
  uint64_t base_ = 0;
};

} // namespace

Status buildKernels(const TargetInfo &target, const std::string &kernelgen,
                    const std::string &dir, std::vector<std::string> &archives,
                    const std::vector<std::string> &wanted,
                    const std::string &cacheDir, KernelBuildStats &stats) {
  if (!fileExists(kernelgen))
    return Status::error(kernelgen + ": the kernel generator is missing (it is "
                                     "built with stc)");
  for (const std::string &w : wanted)
    if (std::none_of(std::begin(kKernels), std::end(kKernels),
                     [&](const KernelSpec &k) { return w == k.function; }))
      return Status::error("no generator makes the kernel '" + w + "'");
  KernelCache cache(cacheDir, kernelgen, target);
  size_t count = 1; // the Halide runtime
  for (const KernelSpec &k : kKernels)
    count += wanted.empty() || std::find(wanted.begin(), wanted.end(),
                                         k.function) != wanted.end();
  Progress progress("kernels for " + target.name, count, Progress::Unit::Items);
  // Builds one archive through `build`, or takes it from the cache.
  auto make = [&](const std::string &name, const std::string &what,
                  const std::function<Status()> &build) {
    progress.set(archives.size(), name);
    const std::string out = joinPath(dir, name + ".a");
    const std::string entry = cache.enabled() ? cache.entry(name, what) : "";
    bool damaged = false;
    if (cache.enabled() && cache.fetch(entry, out, damaged)) {
      ++stats.cached;
    } else {
      stats.damaged += damaged;
      STC_TRY(build());
      ++stats.generated;
      if (cache.enabled())
        cache.store(out, entry);
    }
    archives.push_back(out);
    return Status::success();
  };
  for (const KernelSpec &k : kKernels) {
    if (!wanted.empty() &&
        std::find(wanted.begin(), wanted.end(), k.function) == wanted.end())
      continue;
    const bool viaIr =
        (k.dotProduct || k.nativeHalf) && !target.dotHalideTarget.empty();
    STC_TRY(make(k.function,
                 std::string(k.generator) + "|" + k.function + "|" + k.params +
                     (viaIr ? "|llvm-ir" : ""),
                 [&]() {
                   return viaIr ? buildThroughLlvmIr(target, kernelgen, k, dir)
                                : runGenerator(kernelgen, k, dir,
                                               "static_library",
                                               target.halideTarget);
                 }));
  }
  return make("stc_halide_runtime", "runtime", [&]() {
    return runProgram({kernelgen, "-r", "stc_halide_runtime", "-o", dir, "-e",
                       "static_library", "target=" + target.halideTarget},
                      "stc-kernelgen runtime");
  });
}

} // namespace stc
