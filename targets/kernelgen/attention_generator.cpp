// attention: causal GQA attention of T new queries (positions pos0 .. pos0+T-1)
// over the KV cache's first n_keys positions, with an optional sliding window
// (0 = global): key s is visible to query position p when s <= p and (window ==
// 0 or s > p - window).
#include "Halide.h"

using namespace Halide;

namespace {

class AttentionGenerator : public Generator<AttentionGenerator> {
public:
  // 0: any head dimension (a multiple of 16). A fixed one (SmallThinker's 128)
  // lets a query's 16-lane partial sums and its head of accumulators live in
  // registers (with the size unknown they were stored and reloaded at every
  // key, most of the kernel's time at long contexts), and takes two query
  // heads of a KV group per task: the group must be even.
  GeneratorParam<int> head_dim{"head_dim", 0};

  Input<Buffer<float>> q{"q", 3};         // (d, head, t)
  Input<Buffer<float>> k{"k", 3};         // (d, kv_head, s)
  Input<Buffer<float>> v{"v", 3};         // (d, kv_head, s)
  Input<Buffer<int32_t>> kpos{"kpos", 1}; // (s)
  Input<int32_t> pos0{"pos0"};
  Input<int32_t> window{"window"};
  Input<float> scale{"scale"};
  Output<Buffer<float>> out{"out", 3}; // (d, head, t)

  void generate() {
    Var d("d"), h("h"), t("t"), s("s");
    Expr group = q.dim(1).extent() / k.dim(1).extent();
    Expr kvh = h / group;
    Expr p = pos0 + t;
    Expr kp = kpos(s);
    Expr visible = kp >= 0 && kp <= p && (window == 0 || kp > p - window);
    // q.k as 16 partial sums over d (a vector accumulated over the head in
    // steps of 16; the runtime requires head_dim % 16 == 0), then one
    // horizontal add: a scalar reduction over d was most of the kernel's time.
    const int fixed = head_dim;
    Expr hd = fixed > 0 ? Expr(fixed) : q.dim(0).extent();
    RDom ro(0, hd / 16, "ro");
    Var dl("dl");
    Expr dd = ro * 16 + dl;
    Func part("part");
    part(dl, s, h, t) = 0.0f;
    part(dl, s, h, t) += q(dd, h, t) * k(dd, kvh, s);
    RDom rl(0, 16, "rl");
    Func qk("qk");
    qk(s, h, t) = 0.0f;
    qk(s, h, t) += part(rl, s, h, t);
    const float ninf = -std::numeric_limits<float>::infinity();
    Func score("score");
    score(s, h, t) = select(visible, qk(s, h, t) * scale, ninf);
    RDom rs(0, k.dim(2).extent(), "rs");
    Func mx("mx"), e("e"), denom("denom"), acc("acc");
    mx(h, t) = maximum(score(rs, h, t));
    e(s, h, t) =
        select(score(s, h, t) == ninf, 0.0f, exp(score(s, h, t) - mx(h, t)));
    denom(h, t) = sum(e(rs, h, t));
    acc(d, h, t) = 0.0f;
    acc(d, h, t) += e(rs, h, t) * v(d, kvh, rs);
    out(d, h, t) = acc(d, h, t) / denom(h, t);

    Var dv("dv"), di("di");
    if (fixed == 0) {
      Var ht("ht");
      out.fuse(h, t, ht).parallel(ht).vectorize(d, 16,
                                                TailStrategy::GuardWithIf);
      score.compute_at(out, ht);
      qk.compute_at(score, s);
      mx.compute_at(out, ht);
      e.compute_at(out, ht).vectorize(s, 16, TailStrategy::GuardWithIf);
      denom.compute_at(out, ht);
      acc.compute_at(out, ht).vectorize(d, 16, TailStrategy::GuardWithIf);
      // Each key's value row once, whole (its d vectors innermost): with the
      // keys innermost every d vector re-read all value rows at a row stride.
      acc.update()
          .split(d, dv, di, 16, TailStrategy::GuardWithIf)
          .vectorize(di)
          .reorder(di, dv, rs);
    } else {
      // Two query heads of a KV group per task (the runtime picks this kernel
      // for an even group only): each key and value row is loaded once for
      // both, and both heads' accumulators stay in registers.
      Var ho("ho"), hi("hi"), hot("hot"), so("so"), sh("sh"), shi("shi");
      out.split(h, ho, hi, 2).fuse(ho, t, hot).parallel(hot).vectorize(d, 16);
      score.compute_at(out, hot)
          .split(h, sh, shi, 2)
          .reorder(shi, s, sh)
          .unroll(shi);
      qk.compute_at(score, shi);
      mx.compute_at(out, hot);
      e.compute_at(out, hot).vectorize(s, 16, TailStrategy::GuardWithIf);
      denom.compute_at(out, hot);
      Var ah("ah"), ahi("ahi");
      acc.compute_at(out, hot).vectorize(d, 16);
      acc.bound_storage(d, fixed).bound_storage(h, 2);
      acc.update()
          .split(d, dv, di, 16)
          .vectorize(di)
          .unroll(dv)
          .split(h, ah, ahi, 2)
          .unroll(ahi)
          .reorder(di, dv, ahi, rs, ah);
      for (auto *b : {&q, &k, &v})
        (*b).dim(0).set_bounds(0, fixed);
      out.dim(0).set_bounds(0, fixed);
    }
    qk.update().atomic().vectorize(rl);
    part.compute_at(qk, s).vectorize(dl);
    part.update().vectorize(dl);
    if (fixed > 0)
      part.update().unroll(ro);
    q.dim(0).set_min(0).set_stride(1);
    k.dim(0).set_min(0).set_stride(1);
    v.dim(0).set_min(0).set_stride(1);
    kpos.dim(0).set_min(0).set_stride(1);
    out.dim(0).set_min(0).set_stride(1);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(AttentionGenerator, attention)
