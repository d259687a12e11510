"""A segsweep program's exit: quick, and still everything an exit promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import atexit, gc
from segmodels.program import exit_program

class Node:
    def __init__(self):
        self.me = self  # a cycle: only the garbage collector frees it

nodes = [Node() for _ in range(1000)]
atexit.register(lambda: print(f"atexit ran, gc frozen: {gc.get_freeze_count() > 0}"))
print("last line", end="")  # unflushed: the exit must flush it
exit_program(3)
"""


def test_exit_program_keeps_the_code_runs_atexit_and_flushes_output():
    proc = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "last lineatexit ran, gc frozen: True\n"
    assert proc.stderr == ""
