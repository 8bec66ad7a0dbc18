#!/usr/bin/env python3
"""Writes the llama.cpp oracle fixtures: for each text of cases.json, the ids
that llama.cpp's own llama-tokenize gives with the synthetic tokenizers' GGUFs
(special parsing on, as its tools use for prompts). Run outside CI, where
llama.cpp is built (../shared/anchors/get-llama-cpp.sh), after a change to the
cases or to the synthetic tokenizer:

  STC=build/bin/stc LLAMA_BIN=$(../shared/anchors/get-llama-cpp.sh) \\
    python3 test/tokenizer/make_llama_fixtures.py

It writes test/tokenizer/llama-cpp-<preset>.txt, one line of ids per case
("SKIP" where llama-tokenize takes no such input: the empty text).
"""
import json
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
stc = os.environ.get("STC", "build/bin/stc")
llama = os.path.join(os.environ["LLAMA_BIN"], "llama-tokenize")
cases = json.load(open(os.path.join(here, "cases.json"), encoding="utf-8"))

for preset in ("tiny", "4b"):
    with tempfile.TemporaryDirectory() as tmp:
        gguf = os.path.join(tmp, preset + ".gguf")
        subprocess.run([stc, "synth", "--preset", preset, "--format", "gguf",
                        "--tokenizer-only", "-o", gguf], check=True)
        lines = []
        for text in cases:
            if text == "":  # llama-tokenize refuses an empty prompt
                lines.append("SKIP")
                continue
            out = subprocess.run([llama, "-m", gguf, "-p", text, "--ids",
                                  "--log-disable"], check=True,
                                 capture_output=True, text=True).stdout
            ids = json.loads(out.strip().splitlines()[-1])
            lines.append(",".join(str(i) for i in ids))
    path = os.path.join(here, "llama-cpp-%s.txt" % preset)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", path, file=sys.stderr)
