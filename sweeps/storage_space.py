"""A sweep's disk: what its checkpoints will take (checked before Ray starts) and, when the
storage fills up or turns read-only mid-sweep anyway, which error it was, in one line.

Every trial keeps up to two checkpoints (its best and its latest, ``sweeps.runner``) and writes
a third before Tune deletes the one it replaces; a checkpoint is the network's weights plus the
optimizer's state (``segmodels.training.checkpoint_bytes``, exact to 0.1% on the homework
models). The estimate is a floor: logs, TensorBoard images and Ray's own files come on top.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sweeps.settings import SweepError, SweepSettings
from sweeps.storage import ERROR_FILE

# What a full, over-quota or read-only storage raises; other errors are the trial's own.
STORAGE_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None),
                                             errno.EROFS) if code is not None)
CHECKPOINTS_KEPT = 2  # best + latest, per trial
# Held in the sweep's folder while it runs and let go when the storage fills up: room to put
# Tune's whole state back (a full disk cuts its copy short) and to write the report.
RESERVE_FILE = ".segsweep-reserve"
RESERVE_BYTES = 32 * 1024 * 1024


def human_bytes(n: float) -> str:
    """1.2 GB, 350 MB, 12 kB: decimal units, as df -H and file managers show them."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def sweep_bytes(checkpoints: list[int]) -> int:
    """The least a sweep keeps on disk: two checkpoints per trial (best and latest) and one
    more being written. ``checkpoints``: one trial checkpoint's bytes, per trial."""
    if not checkpoints:
        return 0
    return CHECKPOINTS_KEPT * sum(checkpoints) + max(checkpoints)


def folder_bytes(folder: str | Path) -> int:
    """Bytes of the files under ``folder`` (0 when it does not exist)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # removed while walking
                pass
    return total


def check_space(settings: SweepSettings, checkpoints: list[int]) -> None:
    """Refuse, before Ray starts, a sweep whose checkpoints cannot fit in its storage's free
    space. What the sweep's folder already holds counts as available when the sweep will reuse
    (``--resume``) or delete (``--overwrite``) it. Object storage: not checked (no free space
    to read)."""
    if settings.remote_storage:
        return
    folder = Path(settings.experiment_path())
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = sweep_bytes(checkpoints) + RESERVE_BYTES
    if settings.resume or settings.overwrite:
        need -= folder_bytes(folder)
    if need > free:
        low, high = human_bytes(min(checkpoints)), human_bytes(max(checkpoints))
        each = low if low == high else f"{low} to {high}"
        raise SweepError(
            f"--storage {settings.storage}: {human_bytes(free)} free, but this sweep's "
            f"checkpoints need at least {human_bytes(need)} ({len(checkpoints):,} trial(s), "
            f"each keeping its best and latest checkpoint of {each}: weights + optimizer "
            "state, for resume); free space, or choose a --storage on a larger disk")


class StorageFull(SweepError):
    """Trials or Tune stopped on a storage error; what finished is stored, and ``--resume``
    continues once the storage has room (``results``: Tune's ResultGrid when it could still
    build one)."""

    def __init__(self, settings: SweepSettings, problem: StorageProblem, results=None,
                 notes: list[str] | None = None):
        super().__init__(problem.line())
        self.settings, self.problem, self.results = settings, problem, results
        self.notes = notes or []  # what could not be put back (put_back_staged_state)


def hold_reserve(settings: SweepSettings) -> None:
    """Claim RESERVE_BYTES in the sweep's folder (allocated, not sparse); a storage without
    room for it is left as it is (the check before Ray said whether the sweep fits)."""
    if settings.remote_storage:
        return
    path = Path(settings.experiment_path()) / RESERVE_FILE
    try:
        with open(path, "wb") as f:
            try:
                os.posix_fallocate(f.fileno(), 0, RESERVE_BYTES)
            except (AttributeError, OSError):  # not Linux, or a filesystem without fallocate
                f.write(b"\0" * RESERVE_BYTES)
    except OSError:
        path.unlink(missing_ok=True)


def release_reserve(settings: SweepSettings) -> None:
    if not settings.remote_storage:
        (Path(settings.experiment_path()) / RESERVE_FILE).unlink(missing_ok=True)


def _copy_atomically(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".segsweep-tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def put_back_staged_state(settings: SweepSettings, staging: Path | None) -> list[str]:
    """After the storage filled up: let go of the reserve, then copy what Tune's driver staged
    (``staging``: its state, each trial's results and error files) over the copies a full disk
    cut short, smallest files first, so ``--resume`` restores every trial as it stopped.
    Returns notes of what could not be put back."""
    release_reserve(settings)
    if settings.remote_storage or staging is None or not staging.is_dir():
        return []
    experiment = Path(settings.experiment_path())
    files = sorted((p for p in staging.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    for source in files:
        target = experiment / source.relative_to(staging)
        try:
            if target.is_file() and target.stat().st_size == source.stat().st_size:
                continue
            _copy_atomically(source, target)
        except OSError as exc:
            return [f"{target}: not put back from Ray's staged copy {source} "
                    f"({exc.strerror or exc})"]
    return []


@dataclass(frozen=True)
class StorageProblem:
    """A storage error that stopped trials or Tune: where, and which errno."""

    storage: str
    errno: int

    def line(self) -> str:
        name = errno.errorcode.get(self.errno, str(self.errno))
        return f"storage {self.storage}: [Errno {self.errno}] {os.strerror(self.errno)} ({name})"


def _errno_in(exc: BaseException | None) -> int | None:
    """A storage errno raised anywhere in ``exc``'s chain."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return exc.errno
        exc = exc.__cause__ or exc.__context__
    return None


def _errno_in_trial_errors(folder: Path, since: float) -> int | None:
    """A storage errno named in a trial's error.txt written at ``since`` or later
    (``[Errno 28]``, as Python prints it; pyarrow writes ``[errno 28]``)."""
    for error_file in folder.glob(f"*/{ERROR_FILE}"):
        try:
            if error_file.stat().st_mtime < since:
                continue  # an earlier run's failure
            text = error_file.read_text(errors="replace")
        except OSError:
            continue
        for code in STORAGE_ERRNOS:
            if f"[Errno {code}]" in text or f"[errno {code}]" in text:
                return code
    return None


def _errno_writing(folder: Path, nbytes: int) -> int | None:
    """Write and delete ``nbytes`` in ``folder``: the errno if the storage refuses them now."""
    probe = folder / ".segsweep-space-probe"
    try:
        with open(probe, "wb") as f:
            chunk = b"\0" * (1 << 20)
            left = nbytes
            while left > 0:
                f.write(chunk[:left])
                left -= len(chunk)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        return exc.errno if exc.errno in STORAGE_ERRNOS else None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
    return None


def storage_problem(settings: SweepSettings, exc: BaseException | None = None,
                    checkpoint: int = 1 << 20, since: float = 0.0) -> StorageProblem | None:
    """Whether trials or Tune stopped because the storage is full, over quota or read-only:
    from the exception Tune raised, a write of one checkpoint's bytes (``checkpoint``) now, or
    the error files trials wrote since ``since`` (a time.time()). None: something else."""
    if settings.remote_storage:
        code = _errno_in(exc)
        return StorageProblem(settings.storage, code) if code else None
    folder = Path(settings.experiment_path())
    code = (_errno_in(exc) or (_errno_writing(folder, checkpoint) if folder.is_dir() else None)
            or _errno_in_trial_errors(folder, since))
    return StorageProblem(settings.storage, code) if code else None


__all__ = ["RESERVE_FILE", "STORAGE_ERRNOS", "StorageFull", "StorageProblem", "check_space",
           "folder_bytes", "hold_reserve", "human_bytes", "put_back_staged_state",
           "release_reserve", "storage_problem", "sweep_bytes"]
