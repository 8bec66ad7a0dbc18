#!/usr/bin/env python3
"""Builds a C program against a compiled out/ as its README.md says an app
does: the C compiler of out/'s target, `-I OUT`, `OUT/libstc_model.a`,
`-lstdc++`, and the system libraries out/link.sh links stc-run with (which
include the sanitizer flags of a sanitized stc build).
  build_app.py OUT SOURCE.c EXECUTABLE"""
import os
import re
import shlex
import subprocess
import sys

out, source, exe = sys.argv[1:4]
script = open(os.path.join(out, "link.sh")).read()
cxx = re.search(r"CXX=\$\{CXX:-([^}]+)\}", script).group(1)
cc = "aarch64-linux-gnu-gcc" if cxx.startswith("aarch64") else "cc"
line = next(l for l in script.splitlines() if "-o stc-run " in l)
words = shlex.split(line)
libs = [w for w in words[words.index("libstc_model.a") + 1:] if w != "-s"]
subprocess.run([cc, "-std=c11", "-Wall", "-Werror", "-I", out, source,
                os.path.join(out, "libstc_model.a"), "-lstdc++"] + libs +
               ["-o", exe], check=True)
