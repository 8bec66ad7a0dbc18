#!/usr/bin/env python3
"""The weight bytes one decoded token reads from a SmallThinker GGUF as stored: every
tensor once, but one row of a token embedding that is not also the head, and top_k
experts' worth of each stacked expert tensor (PowerInfer's lm_head_profiler, which stc
ignores, not at all). Prints the count (for stc-bench --json's
weight_bytes_per_token)."""
import os
import sys

# The shared reader is imported from the source tree: no bytecode cache there.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from gguf_header import read_gguf  # noqa: E402

# ggml type id -> (elements per block, bytes per block)
SIZES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 8: (32, 34), 30: (1, 2)}


def read(path):
    """The metadata, and each tensor's ne and stored bytes."""
    _, meta, infos = read_gguf(path)
    tensors = {}
    for name, (t, ne, _) in infos.items():
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
