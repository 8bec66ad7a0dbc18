#include "CpuFeatures.h"

#include <algorithm>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace stc::rt {

std::vector<std::string> hostCpuFeatures() {
  std::vector<std::string> f;
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d))
    return f;
  bool osxsave = c & (1u << 27);
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  bool ymm = (xcr0 & 0x6) == 0x6;   // the OS saves SSE and AVX state
  bool zmm = (xcr0 & 0xE6) == 0xE6; // ... and the AVX-512 state
  if (c & (1u << 19))
    f.push_back("sse41");
  if (ymm && (c & (1u << 28)))
    f.push_back("avx");
  if (ymm && (c & (1u << 12)))
    f.push_back("fma");
  if (c & (1u << 29))
    f.push_back("f16c");
  unsigned a7, b7, c7, d7;
  if (__get_cpuid_count(7, 0, &a7, &b7, &c7, &d7)) {
    if (ymm && (b7 & (1u << 5)))
      f.push_back("avx2");
    if (zmm && (b7 & (1u << 16)))
      f.push_back("avx512f");
    if (zmm && (b7 & (1u << 17)))
      f.push_back("avx512dq");
    if (zmm && (b7 & (1u << 30)))
      f.push_back("avx512bw");
    if (zmm && (b7 & (1u << 31)))
      f.push_back("avx512vl");
    if (zmm && (c7 & (1u << 11)))
      f.push_back("avx512vnni");
    if (zmm && (d7 & (1u << 23)))
      f.push_back("avx512fp16");
    unsigned a71, b71, c71, d71;
    if (__get_cpuid_count(7, 1, &a71, &b71, &c71, &d71)) {
      if (ymm && (a71 & (1u << 4)))
        f.push_back("avxvnni");
      if (zmm && (a71 & (1u << 5)))
        f.push_back("avx512bf16");
    }
  }
#endif
  return f;
}

std::string hostCpuVendor() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d))
    return "";
  const unsigned regs[3] = {b, d, c};
  std::string v(12, '\0');
  for (int i = 0; i < 12; ++i)
    v[i] = static_cast<char>((regs[i / 4] >> (8 * (i % 4))) & 0xff);
  return v;
#else
  return "";
#endif
}

bool hostHas(const std::string &feature) {
  static const std::vector<std::string> features = hostCpuFeatures();
  return std::find(features.begin(), features.end(), feature) != features.end();
}

} // namespace stc::rt
