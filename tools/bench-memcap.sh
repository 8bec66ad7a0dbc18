#!/usr/bin/env bash
# Runs a command (stc-bench, stc-run, ...) inside a memory cgroup with a hard limit, as a
# phone, a board or a container with that much memory enforces it: the limit counts the
# process's anonymous memory and the page cache it faults in. The cgroup is a child of
# this shell's own memory cgroup (cgroup v1's memory controller or cgroup v2), made
# here and removed at the end; the model file's pages are dropped from the page cache
# first (posix_fadvise, this file only), so its reads are charged as a cold start's.
# Prints the command's output, then one line: the peak charge, the limit and the limit
# hits (v1 failcnt, v2 memory.events max).
#   usage: tools/bench-memcap.sh SIZE MODEL_FILE CMD [ARGS...]
#   e.g.:  tools/bench-memcap.sh 1GiB out/model.stcm out/stc-bench out --memory-budget 1GiB
# SIZE takes the suffixes KiB, MiB, GiB (or a byte count). Needs root (cgroup files).
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
size=$1; model=$2; shift 2
bytes=$(python3 - "$size" <<'PY'
import re, sys
m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB|K|M|G)?", sys.argv[1])
if not m:
    sys.exit(f"bench-memcap: '{sys.argv[1]}' is not a size (e.g. 1GiB)")
unit = {None: 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20,
        "G": 1 << 30, "GiB": 1 << 30}[m.group(2)]
print(int(float(m.group(1)) * unit))
PY
)
# This process's memory cgroup: v1 lists "N:memory:/path", v2 "0::/path".
v1=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
if [ -n "$v1" ] && [ -d /sys/fs/cgroup/memory ]; then
  cg="/sys/fs/cgroup/memory${v1%/}/stc-memcap-$$"
  mkdir "$cg"
  echo "$bytes" >"$cg/memory.limit_in_bytes"
  echo 0 >"$cg/memory.swappiness" 2>/dev/null || true
  peak() { cat "$cg/memory.max_usage_in_bytes"; }
  hits() { cat "$cg/memory.failcnt"; }
else
  v2=$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)
  root=/sys/fs/cgroup
  grep -qw memory "$root${v2%/}/cgroup.controllers" 2>/dev/null ||
    { echo "bench-memcap: no memory cgroup controller here (v1 or v2)" >&2; exit 3; }
  cg="$root${v2%/}/stc-memcap-$$"
  mkdir "$cg"
  echo "$bytes" >"$cg/memory.max"
  echo 0 >"$cg/memory.swap.max" 2>/dev/null || true
  peak() { cat "$cg/memory.peak" 2>/dev/null || echo 0; }
  hits() { awk '$1 == "max" {print $2}' "$cg/memory.events"; }
fi
trap 'rmdir "$cg" 2>/dev/null || true' EXIT
python3 -c "import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$model"
set +e
bash -c 'echo $$ > "$1/cgroup.procs" 2>/dev/null || echo $$ > "$1/tasks"; shift; exec "$@"' _ "$cg" "$@"
rc=$?
set -e
echo "bench-memcap: peak $(( $(peak) >> 20 )) MiB of a $(( bytes >> 20 )) MiB limit, $(hits) limit hits, exit $rc"
exit $rc
