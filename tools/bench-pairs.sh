#!/usr/bin/env bash
# Same-run A/B benchmark of two compiled out/ folders (two builds of one model, say
# --sparse-reglu=off against auto, or a Q4_0 file against a Q3_K_M one): stc-bench on each in
# interleaved pairs, the order alternating from pair to pair, since these machines are too
# noisy for anything but ratios taken in one run. The stc-only twin of
# ../shared/anchors/bench-vs-llama.sh.
#   usage: tools/bench-pairs.sh OUT_A OUT_B [THREADS=2] [PAIRS=5] [PROMPT=128] [GEN=64]
#   env: STC_BENCH_ARGS (extra stc-bench flags for both, e.g. "--memory-budget 1GiB"),
#        STC_BENCH_ARGS_B (extra flags for B only)
# Prints one line per pair (decode and prefill tok/s, stc-bench's probe GB/s and roofline
# share of each), then "median B/A decode ratio R1 prefill ratio R2" last.
set -euo pipefail
A=$1; B=$2; T=${3:-2}; N=${4:-5}; P=${5:-128}; G=${6:-64}
for d in "$A" "$B"; do
  [ -x "$d/stc-bench" ] || { echo "bench-pairs: no $d/stc-bench" >&2; exit 2; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$N"); do
  run_a() { "$A/stc-bench" "$A" --threads "$T" --prompt "$P" --gen "$G" ${STC_BENCH_ARGS:-} --json >"$tmp/a$i.json"; }
  run_b() { "$B/stc-bench" "$B" --threads "$T" --prompt "$P" --gen "$G" ${STC_BENCH_ARGS:-} ${STC_BENCH_ARGS_B:-} --json >"$tmp/b$i.json"; }
  if [ $((i % 2)) = 1 ]; then run_a; run_b; else run_b; run_a; fi
done
python3 - "$tmp" "$N" "$T" <<'PY'
import json, statistics, sys
d, n, t = sys.argv[1], int(sys.argv[2]), sys.argv[3]
dr, pr = [], []
def show(j):
    return (f"decode {j['decode_tok_s']:.1f} prefill {j['prefill_tok_s']:.1f} "
            f"probe {j['bandwidth_bytes_s'] / 1e9:.1f} GB/s share {j['roofline_share']:.3f}")
for i in range(1, n + 1):
    a = json.load(open(f"{d}/a{i}.json")); b = json.load(open(f"{d}/b{i}.json"))
    r, q = b["decode_tok_s"] / a["decode_tok_s"], b["prefill_tok_s"] / a["prefill_tok_s"]
    dr.append(r); pr.append(q)
    print(f"pair {i} ({t} threads): A {show(a)} | B {show(b)} | B/A {r:.2f} / {q:.2f}")
print(f"weight MiB/token: A {a['weight_bytes_per_token'] / 2**20:.1f} B {b['weight_bytes_per_token'] / 2**20:.1f}")
print(f"median B/A decode ratio {statistics.median(dr):.2f} prefill ratio {statistics.median(pr):.2f}")
PY
