#!/usr/bin/env python3
"""Checks `stc ref --stats` output (stdin) against what `stc synth --activation-sparsity`
was asked for: every layer's dead share within --tolerance of its target (--fraction F
everywhere, or --paper: the per-layer rule of compiler/synth/ActivationSparsity.cpp,
restated here), and every layer's mean Jaccard overlap of two tokens' live sets at
most --max-jaccard. Prints the table it checked."""
import argparse
import re
import sys


def paper_target(layer, layers):
    x = layer / (layers - 1) if layers > 1 else 0.0
    if x <= 0.25:
        return 0.95
    if x <= 0.5:
        return 0.95 + (x - 0.25) / 0.25 * (0.6 - 0.95)
    return 0.6 + (x - 0.5) / 0.5 * (0.5 - 0.6)


def main():
    p = argparse.ArgumentParser()
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--fraction", type=float)
    g.add_argument("--paper", action="store_true")
    p.add_argument("--tolerance", type=float, default=0.05)
    p.add_argument("--max-jaccard", type=float, default=0.5)
    a = p.parse_args()
    rows = []
    for line in sys.stdin:
        m = re.match(r"sparsity: layer (\d+): ([0-9.]+)% dead .* Jaccard ([0-9.]+)", line)
        if m:
            rows.append((int(m.group(1)), float(m.group(2)) / 100, float(m.group(3))))
    if not rows:
        sys.exit("no 'sparsity: layer' lines on stdin")
    bad = 0
    for layer, dead, jaccard in rows:
        target = paper_target(layer, len(rows)) if a.paper else a.fraction
        ok = abs(dead - target) <= a.tolerance and jaccard <= a.max_jaccard
        bad += not ok
        print(f"layer {layer}: dead {dead:.3f} target {target:.3f} jaccard {jaccard:.3f}"
              f"{'' if ok else '  <-- out of bounds'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
