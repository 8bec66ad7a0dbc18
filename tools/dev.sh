#!/usr/bin/env bash
# The project's two entry points (see README):
#   tools/dev.sh demo   install deps, build, and run the main job on the tiny model
#   tools/dev.sh test   install deps, build, and run every test (what .ci/run calls)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${STC_BUILD_DIR:-$ROOT/build}"
SAN_BUILD="${STC_SAN_BUILD_DIR:-$ROOT/build-asan}"
JOBS="${STC_JOBS:-2}"

setup() {
  bash "$ROOT/tools/setup/install-deps.sh"
}

build() {
  if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DMLIR_DIR=/usr/lib/llvm-19/lib/cmake/mlir >/dev/null
  fi
  ninja -C "$BUILD" -j"$JOBS"
}

# Everything (compiler, runtime, the stc-run that stc compile links) under ASan + UBSan;
# the unit and end-to-end tests then run on the small models.
build_sanitized() {
  if [ ! -f "$SAN_BUILD/build.ninja" ]; then
    cmake -S "$ROOT" -B "$SAN_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DMLIR_DIR=/usr/lib/llvm-19/lib/cmake/mlir \
      -DSTC_SANITIZE=address,undefined >/dev/null
  fi
  ninja -C "$SAN_BUILD" -j"$JOBS"
}

demo() {
  local work="$BUILD/demo"
  local stc="$BUILD/bin/stc"
  mkdir -p "$work"
  echo "== synthesize the tiny model (GGUF, q4_0, seed 1)"
  "$stc" synth --preset tiny --format gguf --dtype q4_0 --seed 1 -o "$work/tiny.gguf"
  echo "== import it into the st dialect and summarize: $work/tiny.mlir"
  "$stc" import "$work/tiny.gguf" -o "$work/tiny.mlir"
  "$BUILD/bin/stc-opt" --st-print-summary "$work/tiny.mlir" -o /dev/null
  echo "== compile it for this CPU: $work/out"
  "$stc" compile "$work/tiny.gguf" --target host --quant q4_0 -o "$work/out"
  local prompt="The compiler reads a checkpoint, and"
  echo "== the prompt's tokens (the tokenizer travels in the model file)"
  "$stc" tokenize "$work/out" --text "$prompt" --pieces
  echo "== generate 24 tokens of text after it (greedy; random weights make random text)"
  "$work/out/stc-run" "$work/out" --prompt "$prompt" -n 24 --temp 0
  echo "== the reference's greedy choice for the same prompt (ids, then text)"
  local ids gen
  ids=$("$stc" tokenize "$work/out" --text "$prompt" --quiet)
  gen=$("$stc" ref "$work/tiny.gguf" --tokens "$ids" --q8-activations --generate 4 | sed 's/generated: //')
  echo "$gen"
  "$stc" detokenize "$work/out" --ids "$gen"; echo
}

# Every C++ file must be clang-format clean (LLVM style, .clang-format).
check_format() {
  echo "== clang-format check"
  (cd "$ROOT" && git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run --Werror)
}

run_tests() {
  echo "== tests (ctest: unit tests and lit)"
  (cd "$BUILD" && ctest --output-on-failure -j"$JOBS")
  echo "== the same tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  # allow_user_poisoning=0: LLVM's allocators poison memory from inline header code
  # that the uninstrumented MLIR libraries then touch (a known false positive).
  (cd "$SAN_BUILD" && ASAN_OPTIONS=detect_leaks=1:allow_user_poisoning=0 \
    UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$JOBS")
}

case "${1:-}" in
  demo) setup; build; demo ;;
  test) setup; check_format; build; build_sanitized; run_tests ;;
  build) setup; build ;;
  *) echo "usage: tools/dev.sh demo|test|build" >&2; exit 2 ;;
esac
