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
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
