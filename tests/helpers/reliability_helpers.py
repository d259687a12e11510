"""Helpers for tests/e2e/test_reliability.py: run ``tune_app.py`` as a user does, each run in its
own process session and Ray temp dir, read what it stored, and account for every process it
started (so that a test can kill exactly those, and check that none is left behind).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ray  # noqa: F401 - puts Ray's vendored psutil on sys.path
import yaml

# isort: split
import psutil

ROOT = Path(__file__).resolve().parents[2]
# Tiny trials: UNet with 4..16 channels on 64 px crops, inference timed on a 96x128 frame.
TINY_FIXED = {
    "model_kwargs": {"min_channels": 4, "max_channels": 16},
    "crops_per_image": 8,  # 16 batches of 4 per epoch: epochs last about a second or two
    "inference_height": 96,
    "inference_width": 128,
    "log_images": 1,
}
# --no-dashboard: a few CPU-seconds less per sweep; the tests of the dashboard drop it
FLAGS = ["--crop-size", "64", "--batch-size", "4", "--inference-repeats", "1", "--no-report",
         "--scheduler", "fifo", "--no-dashboard"]
WITH_DASHBOARD = [flag for flag in FLAGS if flag != "--no-dashboard"]
DASHBOARD_LINE = re.compile(r"Ray dashboard: http://([0-9.]+):(\d+)")


def write_grid(folder: Path, name: str, axes: dict[str, list], **fixed: Any) -> str:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"axes": axes, "fixed": {**TINY_FIXED, **fixed}}))
    return str(path)


# --- what a sweep stored -------------------------------------------------------------------

def _rows(result: Path) -> list[dict[str, Any]]:
    """Complete JSON lines of a result.json (the last one may still be being written)."""
    rows = []
    text = result.read_text(errors="replace") if result.is_file() else ""
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def trial_dirs(exp: Path) -> dict[str, Path]:
    """point label -> trial folder."""
    out = {}
    if not exp.is_dir():
        return out
    for folder in sorted(exp.iterdir()):
        try:
            out[json.loads((folder / "params.json").read_text())["point"]] = folder
        except (OSError, ValueError, KeyError):
            continue
    return out


def results(exp: Path) -> dict[str, list[dict[str, Any]]]:
    """point label -> the rows of its result.json, in file order."""
    return {label: _rows(folder / "result.json") for label, folder in trial_dirs(exp).items()}


def epochs(rows: list[dict[str, Any]]) -> list[int]:
    return [int(r["epoch"]) for r in rows]


def assert_every_epoch_once_but_a_retried_one(rows: list[dict[str, Any]],
                                               planned: int) -> None:
    """Epochs 1..``planned`` in order, each stored once, except the one epoch a retry or a
    resume may train again (Tune's at-least-once epoch, below): stored twice, the second time
    in the first row of the new run (``iterations_since_restore`` 1)."""
    e = epochs(rows)
    assert sorted(set(e)) == list(range(1, planned + 1)), e
    for i in range(1, len(rows)):
        if e[i] != e[i - 1] + 1:
            assert e[i] == e[i - 1] and rows[i]["iterations_since_restore"] == 1, e


def assert_retried_from_a_checkpoint(rows: list[dict[str, Any]], restart: int,
                                     planned: int) -> None:
    """The rows of a trial whose worker was lost after it stored >= 2 epochs: epochs 1..m, then
    a retry (``rows[restart]`` on) that starts from a checkpoint, not from scratch, and trains
    on to ``planned``. Tune writes an epoch's result before it fetches that epoch's checkpoint
    (``TuneController._process_trial_result``, then a separate ``save`` task), so a worker lost
    in between is retried from the epoch before and trains that epoch twice: the retry starts
    at epoch m or m + 1 (at least once; ``analysis`` keeps the retry's row). Epoch 2's result
    comes after epoch 1's save was fetched (Tune continues a saving trial only after the save),
    so with m >= 2 the retry never starts from scratch."""
    before, after = epochs(rows[:restart]), epochs(rows[restart:])
    m = len(before)
    assert m >= 2 and before == list(range(1, m + 1)), epochs(rows)
    assert rows[restart]["iterations_since_restore"] == 1, rows[restart]
    assert after and after[0] in (m, m + 1) and after == list(range(after[0], planned + 1)), (
        epochs(rows))


def ray_state(exp: Path) -> dict[str, dict[str, Any]]:
    """point label -> {status, num_failures, trial_id} from Ray's newest experiment state."""
    # The newest session's file, as Ray picks it: names embed the session's start time. (Not by
    # modification time: Ray's final sync of a resumed sweep rewrites both, in any order.)
    states = sorted(p.name for p in exp.glob("experiment_state-*.json"))
    if not states:
        return {}
    try:
        data = json.loads((exp / states[-1]).read_text())
    except (OSError, ValueError):
        return {}  # being rewritten
    out = {}
    for entry in data.get("trial_data", []):
        trial, runtime = json.loads(entry[0]), json.loads(entry[1])
        out[trial["config"]["point"]] = {"status": trial["status"],
                                         "num_failures": runtime.get("num_failures", 0),
                                         "trial_id": trial["trial_id"]}
    return out


def latest_checkpoint_in_state(exp: Path, label: str) -> str:
    """The folder name of the latest checkpoint Ray's newest saved state holds for a trial."""
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    state = sorted(exp.glob("experiment_state-*.json"))[-1]
    for trial_json, metadata_json in json.loads(state.read_text())["trial_data"]:
        if json.loads(trial_json)["config"]["point"] == label:
            manager = _TrainingRunMetadata.from_json_state(metadata_json).checkpoint_manager
            return Path(manager.latest_checkpoint_result.checkpoint.path).name
    raise KeyError(label)


# --- one run of tune_app.py ----------------------------------------------------------------

def descendants(pid: int) -> dict[int, tuple[float, str]]:
    """pid -> (create time, name) of every process below ``pid``."""
    out = {}
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return out
    for proc in children:
        try:
            out[proc.pid] = (proc.create_time(), process_name(proc))
        except psutil.Error:
            continue
    return out


def process_name(proc: psutil.Process) -> str:
    """Ray's title (``ray::DashboardAgent``, ``ray::ImplicitFunc.train``) or the program."""
    cmdline = proc.cmdline()
    if cmdline and cmdline[0].startswith("ray::"):
        return cmdline[0].strip()
    if cmdline and "python" in Path(cmdline[0]).name and len(cmdline) > 1:
        script = next((Path(a).name for a in cmdline[1:] if a.endswith(".py")), None)
        return f"python {script}" if script else proc.name()
    return proc.name()


def still_alive(processes: dict[int, tuple[float, str]]) -> list[tuple[int, str]]:
    return sorted((pid, name) for pid, (created, name) in processes.items()
                  if _alive(pid, created))


def _alive(pid: int, created: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Sweep:
    """``tune_app.py ARGS`` in its own session (process group) and Ray temp dir, output in
    ``log``. ``track()`` records every process below the driver (Ray's GCS, raylet, agents,
    trial workers), so a test can tell which of them outlive a fault and kill only those."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None):
        # Short: Ray's socket paths live below it and must stay under 108 characters.
        self.temp_dir = tempfile.mkdtemp(prefix="segrel-", dir="/tmp")
        self.log = log
        self._log_file = open(log, "w")
        full_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
                    "RAY_TMPDIR": self.temp_dir, **(env or {})}
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tune_app.py"), *args],
                                     cwd=ROOT, env=full_env, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.processes: dict[int, tuple[float, str]] = {}  # pid -> (create time, name)
        self.track()

    def __enter__(self) -> Sweep:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def tail(self, n: int = 4000) -> str:
        return f"--- {self.log.name} (last {n} chars)\n" + self.output()[-n:]

    def track(self) -> None:
        """Record the driver's process tree and anything else living in this run's temp dir."""
        try:
            root = psutil.Process(self.proc.pid)
            self.processes.setdefault(root.pid, (root.create_time(), process_name(root)))
        except psutil.Error:
            pass
        self.processes.update(descendants(self.proc.pid))  # names change: Ray retitles them

    def alive(self) -> list[tuple[int, str]]:
        """(pid, name) of this run's processes still alive, including ones it never saw as
        children but whose command line names its temp dir."""
        out = {pid: name for pid, (created, name) in self.processes.items()
               if _alive(pid, created)}
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if self.temp_dir in " ".join(proc.info["cmdline"] or ()) and \
                        proc.status() != psutil.STATUS_ZOMBIE:
                    out.setdefault(proc.pid, process_name(proc))
            except psutil.Error:
                continue
        return sorted(out.items())

    def owns(self, pid: int) -> bool:
        return pid in self.processes and _alive(pid, self.processes[pid][0])

    def poll(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """Wait until ``condition()`` is truthy; fail (with the log) if the driver exits first
        or the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            self.track()
            value = condition()
            if value:
                return value
            if self.proc.poll() is not None:
                pytest.fail(f"tune_app.py exited ({self.proc.returncode}) before: {what}\n"
                            + self.tail())
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for: {what}\n"
                            + self.tail())
            time.sleep(0.25)

    def wait(self, timeout: float) -> int:
        """The driver's exit code; fails (with the log) if it runs longer than ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            self.track()
            if time.monotonic() > deadline:
                pytest.fail(f"tune_app.py still running after {timeout:.0f} s\n" + self.tail())
            time.sleep(0.25)
        return self.proc.returncode

    def wait_gone(self, timeout: float = 30) -> list[tuple[int, str]]:
        """Wait until no process of this run is alive; returns the ones still alive then."""
        deadline = time.monotonic() + timeout
        while (left := self.alive()) and time.monotonic() < deadline:
            time.sleep(0.25)
        return left

    def kill_all(self) -> None:
        """SIGKILL the driver's process group and every process of this run still alive."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # own session: pgid == pid
            self.proc.wait(timeout=30)
        for pid, _ in self.alive():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        self.kill_all()
        self.wait_gone(10)
        self._log_file.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def run_app(args: list[str], log: Path, timeout: float = 420,
            env: dict[str, str] | None = None) -> tuple[int, str, list[tuple[int, str]]]:
    """Run to the end: (exit code, output, processes of the run alive 30 s after it exited)."""
    with Sweep(args, log, env) as sweep:
        code = sweep.wait(timeout)
        left = sweep.wait_gone(30)
        return code, sweep.output(), left


def listening_sockets() -> list[tuple[int | None, str, int]]:
    """(pid, ip, port) of every listening TCP socket on the machine."""
    return sorted(((c.pid, c.laddr.ip, c.laddr.port) for c in psutil.net_connections("tcp")
                   if c.status == psutil.CONN_LISTEN), key=lambda s: (s[2], s[1], s[0] or 0))


def copy_experiment(exp: Path, storage: Path) -> Path:
    storage.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(exp, storage / exp.name))
