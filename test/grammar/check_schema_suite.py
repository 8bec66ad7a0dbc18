#!/usr/bin/env python3
"""The JSON-Schema-Test-Suite (Debian's json-schema-test-suite, draft 7)
through stc's decoding grammars (stc json-schema): every schema of the suite
either compiles or is refused naming a keyword; for those that compile, each
"valid" instance is accepted by the token automaton and each "invalid" one
rejected. An instance is written as the grammar writes JSON: compact, each
object's properties in its schema's order (declared ones first), found with
jsonschema where a schema branches (anyOf), integer-valued floats as integers
where the schema wants integers. Prints the count of schemas in the
supported subset (the issue's N) and the refusals by keyword.

  check_schema_suite.py STC MODEL_DIR WORK_DIR [MIN_SUPPORTED]"""
import collections
import glob
import json
import os
import re
import subprocess
import sys

try:
    import jsonschema  # noqa: F401
except ImportError:  # Debian's python3-jsonschema is for Debian's python3
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("check_schema_suite: no jsonschema (install python3-jsonschema)")
import jsonschema

STC, MODEL, WORK = sys.argv[1:4]
MIN_SUPPORTED = int(sys.argv[4]) if len(sys.argv) > 4 else 1
SUITE = "/usr/share/json-schema-test-suite/tests/draft7"


def resolve(schema, root):
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        if not ref.startswith("#"):
            return schema
        node = root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node.get(part, {})
        schema, seen = node, seen + 1
    return schema


def valid(instance, schema, root):
    try:
        jsonschema.Draft7Validator(dict(schema, definitions=root.get("definitions", {}))
                                   if isinstance(schema, dict) else schema).validate(instance)
        return True
    except Exception:  # noqa: BLE001
        return False


def canonical(instance, schema, root):
    """The instance with every object's keys in the order the grammar writes
    them for `schema`."""
    schema = resolve(schema, root)
    if not isinstance(schema, dict):
        return instance
    # const and enum: written as the schema gives the value.
    for value in ([schema["const"]] if "const" in schema else []) + schema.get("enum", []):
        if value == instance and type(value) is type(instance):
            return value
    for key in ("anyOf", "allOf"):
        if key in schema:
            for branch in schema[key]:
                if valid(instance, resolve(branch, root), root):
                    return canonical(instance, branch, root)
            return canonical(instance, schema[key][0], root)
    # An integer-valued float where only integers are allowed: written as an
    # integer (the grammar writes integers without a fraction).
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types or []
    if (isinstance(instance, float) and instance.is_integer() and "integer" in types
            and "number" not in types):
        return int(instance)
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        order = list(props) + [r for r in schema.get("required", []) if r not in props]
        out = collections.OrderedDict()
        for k in order:
            if k in instance:
                out[k] = canonical(instance[k], props.get(k, True), root)
        extra = schema.get("additionalProperties", True)
        for k, v in instance.items():
            if k not in out:
                out[k] = canonical(v, extra, root)
        return out
    if isinstance(instance, list):
        items = schema.get("items", True)
        if isinstance(items, list):
            extra = schema.get("additionalItems", True)
            return [canonical(v, items[i] if i < len(items) else extra, root)
                    for i, v in enumerate(instance)]
        return [canonical(v, items, root) for v in instance]
    return instance


def main():
    cases, meta = [], []
    for path in sorted(glob.glob(os.path.join(SUITE, "*.json"))):
        for group in json.load(open(path)):
            schema = group["schema"]
            texts = [json.dumps(canonical(t["data"], schema, schema),
                                separators=(",", ":"), ensure_ascii=False)
                     for t in group["tests"]]
            cases.append({"schema": schema, "texts": texts})
            meta.append((os.path.basename(path), group["description"],
                         [t["valid"] for t in group["tests"]],
                         [t["description"] for t in group["tests"]], texts))
    cases_path = os.path.join(WORK, "suite.json")
    with open(cases_path, "w") as f:
        json.dump(cases, f)
    p = subprocess.run([STC, "json-schema", MODEL, "--cases", cases_path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("stc json-schema failed: " + p.stderr)
    results = [json.loads(line) for line in p.stdout.splitlines()]
    supported = instances = wrong = 0
    refused = collections.Counter()
    ms = []
    for (name, desc, want, tdesc, texts), r in zip(meta, results):
        if "error" in r:
            m = re.search(r"the keyword '([^']+)'", r["error"])
            refused[m.group(1) if m else r["error"].split("': ", 1)[-1]] += 1
            continue
        supported += 1
        ms.append(r["ms"])
        for w, got, d, t in zip(want, r["accepted"], tdesc, texts):
            instances += 1
            if w != got:
                wrong += 1
                print("  %s / %s / %s: expected %s, the automaton %s %s" %
                      (name, desc, d, "valid" if w else "invalid",
                       "accepted" if got else "rejected", t))
    print("%d of %d schemas of draft 7 in the supported subset; %d instances, %d "
          "decided wrongly; compile %.2f ms median, %.2f ms at most" %
          (supported, len(results), instances, wrong,
           sorted(ms)[len(ms) // 2] if ms else 0, max(ms) if ms else 0))
    print("refused, by keyword: " + ", ".join("%s %d" % kv for kv in refused.most_common()))
    ok = wrong == 0 and supported >= MIN_SUPPORTED
    print("all passed" if ok else "FAILED")
    sys.exit(0 if ok else 1)


main()
