#!/usr/bin/env bash
# Fuzzes every file reader stc exposes to strangers' files: builds the libFuzzer targets
# with clang-19 under ASan + UBSan, seeds each corpus from synthetic checkpoints, and
# runs each target for SECONDS (default 120; STC_FUZZ_JOBS at a time, default 2). A crash leaves its input in
# build-fuzz/crashes/<target>/: fix it, then copy the input into
# test/fuzz/regressions/<target>/, where every build runs it as a test.
#   tools/fuzz.sh [SECONDS]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FB="${STC_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
SECS="${1:-120}"

bash "$ROOT/tools/setup/install-deps.sh"
bash "$ROOT/tools/dev.sh" build >/dev/null # stc itself writes the seeds
STC="$ROOT/build/bin/stc"

if [ ! -f "$FB/build.ninja" ]; then
  cmake -S "$ROOT" -B "$FB" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
    -DSTC_READERS_ONLY=ON -DSTC_FUZZ=ON -DSTC_SANITIZE=address,undefined \
    -DSTC_WERROR=OFF >/dev/null
fi
ninja -C "$FB" -j2 >/dev/null

# Seeds: real files of every kind, small enough to mutate quickly.
S="$FB/seeds"
rm -rf "$S" && mkdir -p "$S"/{fuzz_safetensors,fuzz_safetensors_index,fuzz_config,fuzz_gguf,fuzz_model_file,fuzz_tokenizer,fuzz_chat_template,fuzz_json_schema}
W="$FB/seed-work" && rm -rf "$W" && mkdir -p "$W"
"$STC" synth --preset tiny --format hf --dtype bf16 --seed 1 --shards 3 -o "$W/hf" 
"$STC" synth --preset tiny-swa --format hf --dtype f16 --seed 2 -o "$W/hf-swa"
for f in "$W"/hf/*.safetensors "$W"/hf-swa/model.safetensors; do
  head -c 65536 "$f" > "$S/fuzz_safetensors/$(basename "$(dirname "$f")")-$(basename "$f")"
done
cp "$W/hf/model.safetensors.index.json" "$S/fuzz_safetensors_index/"
cp "$W/hf/config.json" "$S/fuzz_config/tiny.json"
cp "$W/hf-swa/config.json" "$S/fuzz_config/tiny-swa.json"
cp "$W/hf/tokenizer.json" "$S/fuzz_tokenizer/tiny.json"
for q in f32 q8_0 q4_0; do
  "$STC" synth --preset tiny --format gguf --dtype $q --seed 3 -o "$W/tiny-$q.gguf"
  cp "$W/tiny-$q.gguf" "$S/fuzz_gguf/"
done
"$STC" synth --preset tiny-swa --format gguf --dtype q4_0 --seed 4 --omit-layout-keys -o "$S/fuzz_gguf/swa-nolayout.gguf"
cp "$ROOT"/test/fixtures/ggml/tiny-k-*.gguf "$S/fuzz_gguf/" # llama-quantize's K mixes
"$STC" compile "$W/tiny-q4_0.gguf" --target x86-64-avx2 --quant q4_0 -o "$W/out" 2>/dev/null
cp "$W/out/model.stcm" "$S/fuzz_model_file/tiny-q4_0.stcm"
cp "$ROOT"/test/chat/*.jinja "$S/fuzz_chat_template/"        # the tests' templates
cp "$ROOT"/test/fuzz/regressions/fuzz_json_schema/* "$S/fuzz_json_schema/"
cp "$ROOT"/tools/bench-serve-schema.json "$S/fuzz_json_schema/"

mkdir -p "$FB/logs"
run_one() {
  local t="$1"
  mkdir -p "$FB/corpus/$t" "$FB/crashes/$t"
  "$FB/bin/$t" "$FB/corpus/$t" "$S/$t" -max_total_time="$SECS" -max_len=1048576 \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$FB/crashes/$t/" > "$FB/logs/$t.log" 2>&1
  local rc=$?
  local execs cov corp
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$FB/logs/$t.log" | awk '{print $2}')
  cov=$(grep -o 'cov: [0-9]*' "$FB/logs/$t.log" | tail -1 | awk '{print $2}')
  corp=$(ls "$FB/corpus/$t" | wc -l)
  echo "$t: exit $rc, ${execs:-?} executions, coverage ${cov:-?} edges, corpus $corp files, crashes $(ls "$FB/crashes/$t" | wc -l)"
}
targets=(fuzz_safetensors fuzz_safetensors_index fuzz_config fuzz_gguf fuzz_model_file
  fuzz_tokenizer fuzz_chat_template fuzz_json_schema)
JOBS="${STC_FUZZ_JOBS:-2}" # fuzzers at once
for ((i = 0; i < ${#targets[@]}; i += JOBS)); do
  for ((j = i; j < i + JOBS && j < ${#targets[@]}; ++j)); do
    run_one "${targets[$j]}" &
  done
  wait
done
