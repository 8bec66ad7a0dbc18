#!/usr/bin/env bash
# Installs the Debian 12 packages stc needs to build and test. Idempotent: when every
# package is already present it returns in well under a second without touching apt.
set -euo pipefail

PKGS=(
  libmlir-19-dev mlir-19-tools llvm-19-dev llvm-19-tools
  libhalide14-0-dev llvm-14 binutils
  flatbuffers-compiler libflatbuffers-dev
  libgtest-dev googletest
  cmake ninja-build g++ python3 ccache clang-format file
  g++-aarch64-linux-gnu qemu-user
  clang-19 libclang-rt-19-dev
  libicu-dev
  libcpp-httplib-dev nlohmann-json3-dev pkgconf
  prometheus  # promtool: the serve test checks /metrics with it
  python3-jinja2 python3-jsonschema json-schema-test-suite  # the chat template and grammar tests
)
# node and npm by command: some machines have them from another package than Debian's,
# which Debian's npm would conflict with.
command -v npm >/dev/null || PKGS+=(nodejs npm)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -ne 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The tokenizer tests' outside oracle: Hugging Face's `tokenizers` (its Rust library,
# from the npm registry), in a folder of its own (test/lit.cfg.py finds it there).
HOME_DIR="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
NPM_DIR="${STC_NPM_DIR:-${XDG_CACHE_HOME:-$HOME_DIR/.cache}/stc/npm}"
TOKENIZERS_VERSION=0.23.2
if ! grep -qs "\"version\": \"$TOKENIZERS_VERSION\"" "$NPM_DIR/node_modules/tokenizers/package.json"; then
  echo "install-deps: npm install tokenizers@$TOKENIZERS_VERSION into $NPM_DIR" >&2
  mkdir -p "$NPM_DIR"
  npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" "tokenizers@$TOKENIZERS_VERSION" >/dev/null
fi
# stc-serve's client test: the official OpenAI client for Node (v4 runs on Node 18+).
OPENAI_VERSION=4.95.0
if ! grep -qs "\"version\": \"$OPENAI_VERSION\"" "$NPM_DIR/node_modules/openai/package.json"; then
  echo "install-deps: npm install openai@$OPENAI_VERSION into $NPM_DIR" >&2
  mkdir -p "$NPM_DIR"
  npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" "openai@$OPENAI_VERSION" >/dev/null
fi
