#!/usr/bin/env python3
"""Compares two raw float32 logits dumps (positions x vocab, row-major), as written by
`stc ref --dump-logits` and `stc-run --logits`. Fails when the largest absolute
difference exceeds --max-abs, the mean one --mean-abs, or, with --top1, when any
position's argmax differs (with --top1-share S, when fewer than that share of the
positions agree)."""
import argparse
import array
import sys


def load(path):
    data = array.array("f")
    with open(path, "rb") as f:
        data.frombytes(f.read())
    return data


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--max-abs", type=float, required=True)
    p.add_argument("--vocab", type=int, default=0)
    p.add_argument("--top1", action="store_true")
    p.add_argument("--top1-share", type=float, default=None)
    p.add_argument("--mean-abs", type=float, default=None)
    args = p.parse_args()
    a, b = load(args.a), load(args.b)
    if len(a) != len(b) or not a:
        print(f"size mismatch: {args.a} has {len(a)} floats, {args.b} has {len(b)}")
        return 1
    worst = max(abs(x - y) for x, y in zip(a, b))
    print(f"max abs diff {worst:.3g} over {len(a)} logits (limit {args.max_abs:g})")
    if not worst <= args.max_abs:
        return 1
    if args.mean_abs is not None:
        mean = sum(abs(x - y) for x, y in zip(a, b)) / len(a)
        print(f"mean abs diff {mean:.3g} (limit {args.mean_abs:g})")
        if not mean <= args.mean_abs:
            return 1
    if args.top1_share is not None:
        v = args.vocab
        rows = len(a) // v
        same = 0
        for t in range(rows):
            ra, rb = a[t * v:(t + 1) * v], b[t * v:(t + 1) * v]
            same += ra.index(max(ra)) == rb.index(max(rb))
        print(f"same argmax at {same} of {rows} positions (limit {args.top1_share:g})")
        if same < args.top1_share * rows:
            return 1
    if args.top1:
        v = args.vocab
        for t in range(len(a) // v):
            ra, rb = a[t * v:(t + 1) * v], b[t * v:(t + 1) * v]
            if ra.index(max(ra)) != rb.index(max(rb)):
                print(f"position {t}: argmax {ra.index(max(ra))} vs {rb.index(max(rb))}")
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
