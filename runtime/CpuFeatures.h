// CpuFeatures: what the running x86-64 CPU supports (cpuid + xgetbv), so a
// model compiled for a target refuses to run on a CPU that lacks its
// instructions instead of SIGILL.
#pragma once

#include <string>
#include <vector>

namespace stc::rt {

// Feature names as stc's targets use them: sse41, avx, avx2, fma, f16c,
// avx512f, avx512bw, avx512dq, avx512vl, avx512vnni, avx512bf16, avxvnni,
// avx512fp16.
std::vector<std::string> hostCpuFeatures();
bool hostHas(const std::string &feature);
// cpuid's vendor string ("GenuineIntel", "AuthenticAMD", ...), empty off x86.
std::string hostCpuVendor();

} // namespace stc::rt
