#!/usr/bin/env bash
# stc (a compiled out/) against llama.cpp's llama-bench on the same GGUF, in interleaved
# pairs (these machines are noisy: only same-run ratios count), at a context depth and
# with a KV cache type: stc-bench --depth D --kv-type T against llama-bench -d D -ctk T
# -ctv T, llama.cpp with flash attention off and on (the better of the two is the anchor;
# a q8_0 V cache needs it on, so q8_0 runs only with it on).
#   usage: tools/bench-vs-llama.sh OUT_DIR MODEL.gguf [THREADS=2] [PAIRS=3] [PROMPT=128]
#                                  [GEN=64] [DEPTH=0] [KV=f16]
#   env: LLAMA_BIN (folder with llama-bench; default what ../shared/anchors/get-llama-cpp.sh
#        builds), STC_BENCH_ARGS (more stc-bench flags)
# Prints one line per pair, then "median decode ratio R1 prefill ratio R2".
set -euo pipefail
OUT=$1; GGUF=$2; T=${3:-2}; N=${4:-3}; P=${5:-128}; G=${6:-64}; D=${7:-0}; KV=${8:-f16}
LB="${LLAMA_BIN:-$HOME/.cache/stc-anchors/llama.cpp/build/bin}/llama-bench"
[ -x "$OUT/stc-bench" ] || { echo "no $OUT/stc-bench" >&2; exit 2; }
[ -x "$LB" ] || { echo "no $LB (../shared/anchors/get-llama-cpp.sh builds it)" >&2; exit 2; }
FAS="off on"
[ "$KV" = q8_0 ] && FAS="on"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$N"); do
  run_stc() {
    "$OUT/stc-bench" "$OUT" --threads "$T" --prompt "$P" --gen "$G" --depth "$D" \
      --kv-type "$KV" ${STC_BENCH_ARGS:-} --json >"$tmp/s$i.json"
  }
  run_llama() {
    for fa in $FAS; do
      "$LB" -m "$GGUF" -p "$P" -n "$G" -d "$D" -t "$T" -r 1 -ctk "$KV" -ctv "$KV" -fa "$fa" \
        -o json >"$tmp/l$i-$fa.json" 2>/dev/null
    done
  }
  if [ $((i % 2)) = 1 ]; then run_stc; run_llama; else run_llama; run_stc; fi
done
python3 - "$tmp" "$N" "$T" "$D" "$KV" "$FAS" <<'PY'
import json, statistics, sys
d, n, t, depth, kv, fas = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6].split()
dr, pr = [], []
for i in range(1, n + 1):
    s = json.load(open(f"{d}/s{i}.json"))
    ld = lp = 0
    for fa in fas:
        rows = json.load(open(f"{d}/l{i}-{fa}.json"))
        ld = max(ld, [r["avg_ts"] for r in rows if r["n_gen"] > 0][0])
        lp = max(lp, [r["avg_ts"] for r in rows if r["n_prompt"] > 0][0])
    sd, sp = s["decode_tok_s"], s["prefill_tok_s"]
    dr.append(sd / ld); pr.append(sp / lp)
    print(f"pair {i} ({t} threads, depth {depth}, {kv} KV): stc decode {sd:.1f} prefill {sp:.1f} | "
          f"llama.cpp (best of -fa {'/'.join(fas)}) decode {ld:.1f} prefill {lp:.1f} | "
          f"ratio {sd/ld:.2f} / {sp/lp:.2f}")
print(f"median decode ratio {statistics.median(dr):.2f} prefill ratio {statistics.median(pr):.2f}")
PY
