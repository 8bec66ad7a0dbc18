#!/usr/bin/env python3
"""Compares two files of token ids, one line per text of a cases file; prints
each text that differs with both lines. A line "SKIP" in the expected file is
a text the oracle takes no such input for (counted, not compared).
  compare_ids.py CASES.json GOT EXPECTED [--expect-differ INDEX ...]
--expect-differ: those texts must give different ids (the HF and llama.cpp
semantics on text that is not NFC)."""
import json
import sys

args = sys.argv[1:]
differ = set()
if "--expect-differ" in args:
    k = args.index("--expect-differ")
    differ = {int(x) for x in args[k + 1:]}
    args = args[:k]
cases_path, got_path, want_path = args
cases = json.load(open(cases_path, encoding="utf-8"))
got = open(got_path).read().split("\n")[: len(cases)]
want = open(want_path).read().split("\n")[: len(cases)]
if len(got) != len(cases) or len(want) != len(cases):
    sys.exit("expected %d lines in each file, got %d and %d" % (len(cases), len(got), len(want)))
bad, skipped = 0, 0
for i, text in enumerate(cases):
    if want[i] == "SKIP":
        skipped += 1
        continue
    same = got[i] == want[i]
    if same == (i in differ):
        bad += 1
        print("case %d %r:\n  got      %s\n  expected %s%s" % (
            i, text, got[i], want[i], "  (should differ)" if i in differ else ""))
print("%d texts: %d agree as expected, %d not, %d skipped" % (
    len(cases), len(cases) - bad - skipped, bad, skipped))
sys.exit(1 if bad else 0)
