#!/usr/bin/env python3
"""Constrained decoding on a random-weight model (only the automaton can make
its output valid): stc-run --json-schema on schemas with objects, arrays,
enums, numbers, strings with escapes, nested required fields and anyOf,
several seeds each, sampling at temperature 1. Every output that ends by
itself (before -n) must validate (python3-jsonschema); outputs cut by -n are
counted, not hidden.

  decode_check.py OUT_DIR WORK_DIR"""
import json
import os
import re
import subprocess
import sys

try:
    import jsonschema  # noqa: F401
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("decode_check: no jsonschema (install python3-jsonschema)")
import jsonschema

OUT, WORK = sys.argv[1:3]
LIMIT = 160
SCHEMAS = {
    "object": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 8},
        "age": {"type": "integer"},
        "ok": {"type": "boolean"}},
        "required": ["name", "age"], "additionalProperties": False},
    "array of enums": {"type": "array", "items": {"enum": ["red", "green", "blue", 7, None]},
                       "minItems": 1, "maxItems": 4},
    "numbers": {"type": "object", "properties": {
        "x": {"type": "number"}, "y": {"type": "number"}, "n": {"type": "integer"}},
        "required": ["x", "y", "n"], "additionalProperties": False},
    "strings": {"type": "object", "properties": {
        "text": {"type": "string", "minLength": 2, "maxLength": 6},
        "quote": {"const": "a \"quoted\" \\ line\n"}},
        "required": ["text", "quote"], "additionalProperties": False},
    "nested required": {"type": "object", "properties": {
        "user": {"type": "object", "properties": {
            "id": {"type": "integer"},
            "address": {"type": "object", "properties": {
                "city": {"type": "string", "maxLength": 5}, "zip": {"type": "string", "maxLength": 3}},
                "required": ["city"], "additionalProperties": False}},
            "required": ["id", "address"], "additionalProperties": False}},
        "required": ["user"], "additionalProperties": False},
    "anyOf": {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "boolean"},
                                              "maxItems": 3},
                        {"type": "object", "properties": {"k": {"enum": [1, 2]}},
                         "required": ["k"], "additionalProperties": False}]},
    "tuple": {"type": "array", "items": [{"type": "string", "maxLength": 3}, {"type": "null"}],
              "additionalItems": False, "minItems": 2},
}
SEEDS = range(1, 7)
failures = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)


ended = cut = 0
for name, schema in SCHEMAS.items():
    path = os.path.join(WORK, "schema.json")
    with open(path, "w") as f:
        json.dump(schema, f)
    good = bad = stopped_short = 0
    for seed in SEEDS:
        p = subprocess.run([os.path.join(OUT, "stc-run"), OUT, "--prompt", "JSON: ",
                            "--json-schema", path, "-n", str(LIMIT), "--seed", str(seed),
                            "--temp", "1", "--top-k", "0", "--top-p", "1"],
                           capture_output=True)
        m = re.search(rb"generated (\d+) tokens", p.stderr)
        if p.returncode != 0 or not m:
            check(False, "%s, seed %d: stc-run failed: %s" % (name, seed, p.stderr[-300:]))
            continue
        generated = int(m.group(1))
        text = p.stdout.decode("utf-8", "replace").rstrip("\n")
        if generated >= LIMIT:
            stopped_short += 1
            continue
        try:
            jsonschema.Draft7Validator(schema).validate(json.loads(text))
            good += 1
        except Exception as e:  # noqa: BLE001
            bad += 1
            print("  %s, seed %d: %r does not validate: %s" % (name, seed, text, e))
    ended += good + bad
    cut += stopped_short
    check(bad == 0, "%s: %d outputs ended by themselves and validate, %d cut at -n %d"
          % (name, good, stopped_short, LIMIT))
check(ended >= len(SCHEMAS) * len(SEEDS) // 2,
      "%d of %d outputs ended by themselves (%d cut by the limit)" %
      (ended, len(SCHEMAS) * len(SEEDS), cut))

# Refusals name the keyword.
path = os.path.join(WORK, "bad.json")
with open(path, "w") as f:
    json.dump({"type": "string", "pattern": "^a+$"}, f)
p = subprocess.run([os.path.join(OUT, "stc-run"), OUT, "--prompt", "x", "--json-schema", path],
                   capture_output=True)
check(p.returncode == 1 and b"the keyword 'pattern' is not supported" in p.stderr,
      "an unsupported keyword is refused naming it: %r" % p.stderr.strip())
if failures:
    sys.exit("%d failed" % len(failures))
print("all passed")
