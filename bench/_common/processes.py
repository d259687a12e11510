"""The processes a sweep starts: CPU time, memory, sampling; running another benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .paths import ROOT, clean_env
from .table import Row


def _psutil():
    import importlib

    import ray  # noqa: F401  - ray ships psutil in ray/thirdparty_files and puts it on the path

    return importlib.import_module("psutil")


def descendants(pid: int | None = None) -> list[Any]:
    psutil = _psutil()
    try:
        return psutil.Process(pid or os.getpid()).children(recursive=True)
    except psutil.Error:
        return []


def is_trial_process(proc) -> bool:
    """Ray Tune's trial actors are titled ``ray::ImplicitFunc...`` (function trainables)."""
    try:
        return "ImplicitFunc" in " ".join(proc.cmdline())
    except Exception:  # noqa: BLE001 - the process may be gone
        return False


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process and its live children (DataLoader workers)."""
    psutil = _psutil()
    try:
        proc = psutil.Process(pid or os.getpid())
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return float("nan")
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def smaps_rollup(pid: int) -> dict[str, int]:
    """/proc/PID/smaps_rollup in bytes: Rss, Pss, Anonymous (private heap), Pss_Shmem, ..."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return out
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            out[key.strip()] = int(parts[0]) * 1024
    return out


class Sampler(threading.Thread):
    """Calls ``probe()`` every ``interval`` seconds in the background; keeps (time, result)."""

    def __init__(self, probe: Callable[[], Any], interval: float = 0.5):
        super().__init__(daemon=True)
        self.probe, self.interval = probe, interval
        self.samples: list[tuple[float, Any]] = []
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append((time.time(), self.probe()))
            except Exception as exc:  # noqa: BLE001 - reported by stop()
                self.error = exc
                return
            self._halt.wait(self.interval)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt.set()
        self.join()
        if self.error is not None:
            raise RuntimeError(f"sampler failed: {self.error!r}") from self.error


def run_script(name: str, flags: list[str], log: Path | None = None,
               timeout: float = 3600) -> tuple[int, list[Row], float]:
    """Run ``bench/NAME.py FLAGS --json ...`` in a subprocess; (exit code, rows, seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py"), *flags,
                               "--json", str(out)], cwd=ROOT, env=clean_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)
        seconds = time.perf_counter() - start
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(proc.stdout)
        rows = [Row(**r) for r in json.loads(out.read_text())] if out.exists() else []
        return proc.returncode, rows, seconds
