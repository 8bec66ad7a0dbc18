#!/usr/bin/env python3
"""The weight bytes one decoded token reads from a SmallThinker GGUF as stored: every
tensor once, but one row of a token embedding that is not also the head, and top_k
experts' worth of each stacked expert tensor (PowerInfer's lm_head_profiler, which stc
ignores, not at all). Prints the count (for stc-bench --json's
weight_bytes_per_token)."""
import struct
import sys

# ggml type id -> (elements per block, bytes per block)
SIZES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 8: (32, 34), 30: (1, 2)}


def read(path):
    data = open(path, "rb").read()
    pos = 4

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        pos += n
        return data[pos - n:pos].decode("utf-8", "replace")

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "B",
              10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    assert data[:4] == b"GGUF"
    take("I")
    n_tensors, n_kv = take("Q"), take("Q")
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("I"))
    tensors = {}
    for _ in range(n_tensors):
        name = string()
        ne = [take("Q") for _ in range(take("I"))]
        t = take("I")
        take("Q")
        count = 1
        for n in ne:
            count *= n
        per, size = SIZES[t]
        tensors[name] = (ne, count // per * size)
    return meta, tensors


def main():
    meta, tensors = read(sys.argv[1])
    top_k = meta["smallthinker.expert_used_count"]
    total = 0
    for name, (ne, nbytes) in tensors.items():
        if name == "lm_head_profiler.weight":
            continue
        if name.endswith("_exps.weight"):
            total += nbytes // ne[-1] * top_k
        elif name == "token_embd.weight":
            total += nbytes // ne[-1]  # one row per token
            if "output.weight" not in tensors:
                total += nbytes  # tied: it is the head too
        else:
            total += nbytes
    print(total)


if __name__ == "__main__":
    main()
