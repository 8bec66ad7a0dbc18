// stc-bench --profile: the time of each step, charged to its kind (and a
// decode MoE step's phases to theirs); one-token and multi-token evaluations
// apart.
#include "Runtime.h"

#include "RuntimeDetail.h"

namespace stc::rt {

namespace {

const char *opKind(const model::Step *s, const model::Tensor *w) {
  switch (s->op()) {
  case model::Op::Embed:
    return "embed";
  case model::Op::RmsNorm:
    return "rms_norm";
  case model::Op::Gemm:
    switch (w ? w->dtype() : model::DType::F32) {
    case model::DType::Q4_0:
      return "gemm q4_0";
    case model::DType::Q8_0:
      return "gemm q8_0";
    case model::DType::Q4_K:
      return "gemm q4_k";
    case model::DType::Q5_K:
      return "gemm q5_k";
    case model::DType::Q6_K:
      return "gemm q6_k";
    case model::DType::Q3_K:
      return "gemm q3_k";
    case model::DType::F16:
      return "gemm f16";
    default:
      return "gemm f32";
    }
  case model::Op::Route:
    return "route";
  case model::Op::Rope:
    return "rope";
  case model::Op::Attention:
    return "attention";
  case model::Op::Moe:
    return "moe (other)";
  case model::Op::Add:
    return "add";
  case model::Op::Dispatch:
    return "dispatch";
  }
  return "?";
}

} // namespace

void Runtime::charge(const char *kind, double start) {
  if (profiling_)
    (decodeStep_ ? profile_ : prefillProfile_)[kind] += seconds() - start;
}

void Runtime::chargePhase(const char *kind, double &since, const char *parent) {
  if (!profiling_ || !decodeStep_)
    return;
  double t = seconds();
  profile_[kind] += t - since;
  profile_[parent] -= t - since;
  since = t;
}

bool Runtime::step(const model::Step *s, int n, std::string &error) {
  if (!profiling_)
    return runStep(s, n, error);
  const double start = seconds();
  const uint64_t tasks = pool_->tasksOnWorkers();
  bool ok = runStep(s, n, error);
  const model::Tensor *w =
      s->weights() && s->weights()->size() > 0
          ? file_.model()->tensors()->Get(s->weights()->Get(0))
          : nullptr;
  charge(opKind(s, w), start);
  const char *kind = s->op() == model::Op::Moe ? "moe" : opKind(s, w);
  (decodeStep_ ? splitTasks_ : prefillSplitTasks_)[kind] +=
      pool_->tasksOnWorkers() - tasks;
  return ok;
}

} // namespace stc::rt
