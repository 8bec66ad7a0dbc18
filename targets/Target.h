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
  // or with every layer sparse. That was before the k experts' down kernels
  // ran as one parallel loop (-27% sparse down time at 2 threads on Intel);
  // not re-measured on Zen 5. Assumed the same on arm64 (not measured).
  // `host` on an Intel CPU takes kIntelLiveRowCost instead.
  double liveRowCost = 3.0;
  // st-sparse-reglu's layout for the down of a float checkpoint the compile
  // quantizes (a quantized file's down keeps its own blocks): "transposed"
  // (blocks along the neurons, integer sums per block of 32: sparse_down) or
  // "neuron_rows" (PowerInfer's: blocks along the outputs, a row with its
  // scales in one read: down_rows). The faster of the two, measured: on the
  // 2-vCPU Xeon (AVX-512 VNNI) the 4B shape at the paper's sparsity from an f16
  // checkpoint quantized to q4_0, the same plan in each layout, decoded 0.90x
  // (2 threads, 5 interleaved pairs) and 0.91x (1 thread, 3 pairs), prefilled
  // 0.78x / 0.75x, with neuron_rows (down_rows: an f32 multiply-add per value,
  // where sparse_down sums 32 neurons' values in integers). Not measured on
  // Zen or arm64: the same default.
  std::string sparseDownLayout = "transposed";
};

// The live-row cost `host` resolves to on an Intel CPU. Measured on a 2-vCPU
// Xeon (AVX-512 VNNI, 2.0 GHz), the 4B q4_0 shape at the paper's sparsity
// (70% of decoded neurons dead), 2 threads, stc-bench --profile: the dense up
// and down took 9.76 ms per token, the sparse kernels 4.81 ms (5.32 with the
// live list and the activations' reordering) for 29.7% of the rows: 1.66x
// (1.84x) the time per byte. In round-robin runs (10 rounds at 2 threads, 5 at
// 1) every layer sparse decoded 1.24x / 1.23x faster than dense, layers 0-24
// (cost 2) 1.20x / 1.19x, layers 0-13 (cost 3) 1.12x / 1.13x: even the layers
// at 50-53% dead pay in decode here, and random weights' 50% everywhere
// decoded 1.16x / 1.15x faster sparse. Prefill pays for it: 0.80x / 0.92x of
// dense at the paper's profile, 0.64x / 0.74x at 50% (each token's live rows
// are read apart, where the dense gemm reuses each weight for all the tokens).
constexpr double kIntelLiveRowCost = 1.7;

const std::vector<TargetInfo> &allTargets();
// Resolves a name ("host" included: the best target for this CPU, with the
// live-row cost measured on its vendor's CPUs); the error lists the known
// targets.
Status resolveTarget(const std::string &name, TargetInfo &out);

} // namespace stc
