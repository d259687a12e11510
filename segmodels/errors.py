"""The one base of segsweep's user-facing errors.

Every mistake a user can make (a broken dataset, a bad grid file, an impossible setting, an
unreadable checkpoint or experiment) raises a subclass of ``SegsweepError`` whose message says
what was wrong, where, and how to fix it. The CLI turns exactly these into one-line errors, so
a real bug (say a numpy ``ValueError``) keeps its traceback. The domain errors also subclass
``ValueError``, as they did before this base existed, so callers catching that still work.
"""

from __future__ import annotations


class SegsweepError(Exception):
    """A user mistake; the message names the file/key/value and the fix."""


class ConfigError(SegsweepError, ValueError):
    """A trial setting that cannot run (unknown key, wrong type, out of range)."""


class DatasetError(SegsweepError, ValueError):
    """A dataset problem a user must fix; the message names the file(s) and the fix."""
