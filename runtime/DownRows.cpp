// PowerInfer's expert down layout (neuron_rows: each neuron's row of D outputs
// in ggml's q4_0 / q8_0 blocks along D, as its converter's --transpose-down
// writes it): the down_rows kernel over some rows (the live neurons) or all of
// them (a dense layer, prefill).
#include "Runtime.h"

#include "Kernels.h"
#include "RuntimeDetail.h"

#include <vector>

namespace stc::rt {

bool Runtime::downProject(const Weight &down, const float *act, int m, float *y,
                          std::string &error) {
  if (down.t->layout() != model::Layout::NeuronRows)
    return gemm(act, m, down, y, error);
  return downRows(down, nullptr, static_cast<int>(down.cols), act,
                  static_cast<int>(down.cols), m, y, error);
}

bool Runtime::downRows(const Weight &down, const int32_t *rows, int count,
                       const float *act, int actStride, int tokens, float *y,
                       std::string &error) {
  // Logical [D, F]; stored [F][D] in ggml blocks along D.
  const int32_t D = static_cast<int32_t>(down.rows),
                F = static_cast<int32_t>(down.cols);
  const bool q4 = down.t->dtype() == model::DType::Q4_0;
  const int32_t blockBytes = q4 ? 18 : 34, B = D / 32;
  if (!rows) { // every row, in stored order
    thread_local std::vector<int32_t> all;
    if (static_cast<int32_t>(all.size()) < F)
      for (int32_t f = static_cast<int32_t>(all.size()); f < F; ++f)
        all.push_back(f);
    rows = all.data();
  }
  HBuf hw(down.data, halide_type_uint, 8,
          {{blockBytes, 1}, {B, blockBytes}, {F, B * blockBytes}});
  HBuf hrows(rows, halide_type_int, 32, {{count, 1}});
  HBuf hact(act, halide_type_float, 32, {{count, 1}, {tokens, actStride}});
  HBuf hy(y, halide_type_float, 32, {{D, 1}, {tokens, D}});
  const uint64_t w = address(down.data);
  const int rc =
      q4 ? stc_down_rows_q4_0(hw.get(), hrows.get(), hact.get(), w, hy.get())
         : stc_down_rows_q8_0(hw.get(), hrows.get(), hact.get(), w, hy.get());
  if (rc != 0) {
    error = kernelError("down_rows kernel failed on tensor '" +
                        down.t->name()->str() + "'");
    return false;
  }
  return true;
}

} // namespace stc::rt
