"""How a segsweep program (the CLI, the report, the export) ends."""

from __future__ import annotations

import gc
import sys
from typing import NoReturn


def exit_program(code: int) -> NoReturn:
    """Exit with ``code`` without the interpreter's final garbage collections.

    A sweep's process holds millions of objects (torch, Ray, Lightning, pandas); collecting
    them one last time at exit kept the prompt waiting ~2 s after the last line. Freezing them
    skips only that last collection: atexit handlers (Ray's shutdown, the trackers, the name
    lock) still run and the standard streams are still flushed.
    """
    gc.freeze()
    sys.exit(code)
