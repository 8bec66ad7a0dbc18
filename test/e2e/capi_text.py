#!/usr/bin/env python3
"""Builds capi_text.c against a compiled out/ with the link line out/link.sh
uses for stc-run (the runtime archive, the kernels, the runtime again), and
runs it.  capi_text.py OUT"""
import os
import shlex
import subprocess
import sys

out = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
prog = os.path.join(out, "capi_text")
obj = prog + ".o"
subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-I", out, "-c",
                os.path.join(here, "capi_text.c"), "-o", obj], check=True)
line = next(l for l in open(os.path.join(out, "link.sh")) if "-o stc-run " in l)
words = shlex.split(line.replace("$CXX", "c++"))
at = words.index("-o")
words[at + 1:at + 3] = [prog, obj]  # our program instead of stc-run's main
subprocess.run(words, check=True, cwd=out)
sys.exit(subprocess.run([prog, os.path.join(out, "model.stcm")]).returncode)
