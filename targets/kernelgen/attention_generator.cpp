// attention: causal GQA attention of T new queries (positions pos0 .. pos0+T-1)
// over the KV cache's first n_keys positions, with an optional sliding window
// (0 = global): key s is visible to query position p when s <= p and (window ==
// 0 or s > p - window).
#include "Halide.h"

using namespace Halide;

namespace {

class AttentionGenerator : public Generator<AttentionGenerator> {
public:
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
    RDom rd(0, q.dim(0).extent(), "rd");
    Func score("score");
    score(s, h, t) = select(visible, sum(q(rd, h, t) * k(rd, kvh, s)) * scale,
                            -std::numeric_limits<float>::infinity());
    RDom rs(0, k.dim(2).extent(), "rs");
    Func mx("mx"), e("e"), denom("denom"), acc("acc");
    mx(h, t) = maximum(score(rs, h, t));
    e(s, h, t) =
        select(score(s, h, t) == -std::numeric_limits<float>::infinity(), 0.0f,
               exp(score(s, h, t) - mx(h, t)));
    denom(h, t) = sum(e(rs, h, t));
    acc(d, h, t) = 0.0f;
    acc(d, h, t) += e(rs, h, t) * v(d, kvh, rs);
    out(d, h, t) = acc(d, h, t) / denom(h, t);

    Var ht("ht");
    out.fuse(h, t, ht).parallel(ht).vectorize(d, 16, TailStrategy::GuardWithIf);
    score.compute_at(out, ht);
    mx.compute_at(out, ht);
    e.compute_at(out, ht);
    denom.compute_at(out, ht);
    acc.compute_at(out, ht).vectorize(d, 16, TailStrategy::GuardWithIf);
    acc.update().vectorize(d, 16, TailStrategy::GuardWithIf);
    q.dim(0).set_min(0).set_stride(1);
    k.dim(0).set_min(0).set_stride(1);
    v.dim(0).set_min(0).set_stride(1);
    kpos.dim(0).set_min(0).set_stride(1);
    out.dim(0).set_min(0).set_stride(1);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(AttentionGenerator, attention)
