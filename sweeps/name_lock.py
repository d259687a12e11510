"""One sweep per name at a time: a sweep claims its name when its checks begin.

The "already exists" check and the sweep's record are seconds apart, so two terminals, a
restarted job or a job array (the default name is the grid's) could both pass the check and
train into one folder. The claim is a file beside the sweep's folder,
``STORAGE/.NAME.segsweep-lock``, created atomically (``O_CREAT | O_EXCL``) and holding the
claiming process's host, pid and start time. A second sweep of the name is refused with one
line naming the first; a claim whose process has died (same host, pid gone) is taken over,
with a note. The claim is released when the process exits. Object storage has no atomic
create, so sweeps stored there are not locked (docs/reliability.md says so).
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import time
from pathlib import Path

from sweeps.settings import SweepError, SweepSettings

SUFFIX = ".segsweep-lock"
_held: dict[Path, float] = {}  # lock files this process holds -> when claimed
_made: dict[Path, list[Path]] = {}  # lock file -> the folders claiming it created


def lock_path(settings: SweepSettings) -> Path:
    return Path(settings.storage_path()) / f".{settings.name}{SUFFIX}"


def holds(settings: SweepSettings) -> bool:
    """This process holds the claim of ``settings.name`` already."""
    return not settings.remote_storage and lock_path(settings) in _held


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _create(path: Path) -> bool:
    """Create the claim atomically; False when it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"host": socket.gethostname(), "pid": os.getpid(),
                   "started": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
    return True


def claim(settings: SweepSettings) -> str | None:
    """Claim ``settings.name`` in its storage for this process, or raise SweepError naming the
    process that holds it. Returns a note when a dead process's claim was taken over. A
    process may claim a name it already holds (a test's second ``prepare``)."""
    if settings.remote_storage:
        return None
    path = lock_path(settings)
    if path in _held:
        return None
    missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    _made[path] = missing  # given back with the claim when still empty: a refusal writes nothing
    note = None
    for _ in range(3):  # a racing claimant may remove or create it between our steps
        if _create(path):
            _held[path] = time.time()
            atexit.register(release, path)
            return note
        owner = _read(path)
        pid, host = owner.get("pid"), owner.get("host")
        if pid == os.getpid() and host == socket.gethostname():
            _held[path] = time.time()
            return note
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            note = (f"the sweep named {settings.name!r} was claimed by process {pid}, which "
                    f"has ended (started {owner.get('started', '?')}); taken over")
            path.unlink(missing_ok=True)
            continue
        if not owner and time.time() - _mtime(path) > 60:  # a claim never written (crash)
            path.unlink(missing_ok=True)
            continue
        where = f"process {pid} on {host}" if pid else "another process"
        raise SweepError(f"a sweep named {settings.name!r} is running in {settings.storage} "
                         f"({where}, started {owner.get('started', '?')}); wait for it, or "
                         f"choose another --name (its claim: {path})")
    raise SweepError(f"{path}: could not claim the sweep's name; retry")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def release(path: Path) -> None:
    """Give a claim back (at exit): only one this process holds, and only if still ours."""
    if _held.pop(path, None) is None:
        return
    if _read(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)
    for folder in _made.pop(path, []):  # deepest first; a folder the sweep filled stays
        try:
            folder.rmdir()
        except OSError:
            break
