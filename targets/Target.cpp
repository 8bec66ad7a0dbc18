#include "Target.h"

#include "CpuFeatures.h"

namespace stc {

const std::vector<TargetInfo> &allTargets() {
  static const std::vector<TargetInfo> targets = {
      {"x86-64-avx2",
       "x86-64-linux-avx2-fma-f16c-sse41",
       256,
       {"sse41", "avx", "avx2", "fma", "f16c"},
       false,
       "x86-64 with AVX2, FMA and F16C (Haswell and later, Zen)"},
      {"x86-64-avx512",
       "x86-64-linux-avx512_skylake-avx2-fma-f16c-sse41",
       512,
       {"sse41", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
        "avx512dq", "avx512vl"},
       false,
       "x86-64 with AVX-512 F/BW/DQ/VL (Skylake-X and later)"},
      {"x86-64-avx512vnni",
       "x86-64-linux-avx512_skylake-avx2-fma-f16c-sse41",
       512,
       {"sse41", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
        "avx512dq", "avx512vl", "avx512vnni"},
       false,
       "x86-64 with AVX-512 and AVX512-VNNI (Ice Lake server and later, Zen4): "
       "int8 dot products with vpdpbusd",
       "x86-64-linux-avx512_sapphirerapids-avx512_cannonlake-avx512_skylake-"
       "avx2-"
       "fma-f16c-sse41",
       "icelake-server"},
      {"arm64",
       "arm-64-linux-arm_dot_prod",
       128,
       {},
       true,
       "AArch64 Linux with NEON and the dot-product extension (cross only)"},
  };
  return targets;
}

Status resolveTarget(const std::string &name, TargetInfo &out) {
  if (name == "host") {
#if defined(__x86_64__)
    std::string pick;
    for (const char *candidate :
         {"x86-64-avx512vnni", "x86-64-avx512", "x86-64-avx2"}) {
      for (const TargetInfo &t : allTargets()) {
        if (t.name != candidate)
          continue;
        bool ok = true;
        for (const std::string &f : t.features)
          ok = ok && rt::hostHas(f);
        if (ok) {
          out = t;
          if (rt::hostCpuVendor() == "GenuineIntel")
            out.liveRowCost = kIntelLiveRowCost;
          return Status::success();
        }
      }
    }
    return Status::error("--target host: this CPU lacks AVX2/FMA/F16C, which "
                         "every stc x86-64 target needs");
#else
    return Status::error("--target host is only implemented on x86-64");
#endif
  }
  std::string known;
  for (const TargetInfo &t : allTargets()) {
    if (t.name == name) {
      out = t;
      return Status::success();
    }
    known += (known.empty() ? "" : ", ") + t.name;
  }
  return Status::error("unknown target '" + name + "' (known: host, " + known +
                       ")");
}

} // namespace stc
