#!/usr/bin/env python3
"""Runs a command with stderr (and stdout) on a pseudo-terminal and prints what
it wrote there, each carriage-return redraw on a line of its own.
  pty_run.py COMMAND ARGS..."""
import os
import pty
import sys

pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:  # EIO: the child closed the terminal
        break
    if not data:
        break
    out += data
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n<redraw>"))
sys.exit(os.waitstatus_to_exitcode(status))
