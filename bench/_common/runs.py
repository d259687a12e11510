"""Sweeps run as a user runs them: through the CLI, or tune_app.py's code path in this
process; their stored trials read back."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import ROOT, clean_env
from .processes import descendants, is_trial_process


@dataclass
class CliRun:
    returncode: int
    start: float  # time.time() just before the process was started
    seconds: float
    lines: list[tuple[float, str]]  # (time.time() when read, line) of stdout+stderr

    def first_line_time(self, text: str) -> float | None:
        return next((t for t, line in self.lines if text in line), None)

    def output(self) -> str:
        return "".join(line for _, line in self.lines)


def run_cli(argv: list[str], log: Path | None = None, timeout: float = 3600) -> CliRun:
    """``python tune_app.py ARGV`` as a user runs it; every output line is time-stamped."""
    start = time.time()
    proc = subprocess.Popen([sys.executable, str(ROOT / "tune_app.py"), *argv], cwd=ROOT,
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    lines: list[tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.time(), line))
        if time.time() - start > timeout:
            proc.kill()
            break
    proc.wait()
    run = CliRun(proc.returncode, start, time.time() - start, lines)
    if log is not None:
        log.write_text(run.output())
    if proc.returncode != 0:
        raise RuntimeError(f"tune_app.py {' '.join(argv)} failed ({proc.returncode}):\n"
                           + run.output()[-4000:])
    return run


@dataclass
class SweepRun:
    prepared: Any  # sweeps.prepare.PreparedSweep
    results: Any  # Tune's ResultGrid
    fit_seconds: float  # wall time of Tuner.fit(): the sweep's makespan
    exp: Path
    fit_start: float = float("nan")  # time.time() when Tuner.fit() was called
    fit_end: float = float("nan")

    def trials(self) -> dict[str, list[dict[str, Any]]]:
        return read_trials(self.exp)


@contextlib.contextmanager
def _timed_fit(out: dict[str, float]) -> Iterator[None]:
    """Measure ``Tuner.fit`` (driver side only; nothing in the trials changes)."""
    from ray import tune

    original = tune.Tuner.fit

    def fit(self, *a, **kw):
        start, out["fit_start"] = time.perf_counter(), time.time()
        try:
            return original(self, *a, **kw)
        finally:
            out["fit_seconds"] = time.perf_counter() - start
            out["fit_end"] = time.time()

    tune.Tuner.fit = fit
    try:
        yield
    finally:
        tune.Tuner.fit = original


# While one_ray_session() is open: the local Ray its first sweep started, and that sweep's
# --num-cpus (a sweep that asks for another count gets a Ray of its own).
_session: dict[str, Any] | None = None


@contextlib.contextmanager
def one_ray_session() -> Iterator[None]:
    """Sweeps that ``run_sweep`` runs inside share one local Ray: the first starts it (as
    ``runner.run`` does), the others join it, and it is shut down at the end. Ray's start and
    shutdown are then paid once; the benchmarks use it at smoke size only, where the figures
    mean nothing (a full run keeps one fresh Ray per sweep, as a user's sweeps have)."""
    global _session
    import ray

    from sweeps import runner

    start_ray = runner.start_ray

    def shared_start(settings):
        assert _session is not None
        if ray.is_initialized() and _session.get("num_cpus") == settings.num_cpus:
            return _session["context"]
        ray.shutdown()
        _session.update(context=start_ray(settings), num_cpus=settings.num_cpus)
        return _session["context"]

    _session, runner.start_ray = {}, shared_start
    try:
        yield
    finally:
        runner.start_ray, _session = start_ray, None
        ray.shutdown()


def _wait_for_trial_processes_to_exit(timeout: float = 60.0) -> None:
    """Tune ends a sweep's trial actors on its way out of ``fit``; their processes exit a moment
    later. A shared Ray keeps running, so wait for them: a probe of the next sweep would count
    them as its own trials."""

    deadline = time.monotonic() + timeout
    while any(is_trial_process(p) for p in descendants()) and time.monotonic() < deadline:
        time.sleep(0.1)


def run_sweep(argv: list[str], between: Callable[[Any], Any] | None = None) -> SweepRun:
    """tune_app.py's code path in this process: ``prepare`` then ``runner.run``.

    ``argv`` are tune_app.py flags. ``between(prepared)`` may return a context manager that
    is entered around ``runner.run`` (e.g. a sampler). Ray is shut down afterwards, unless
    the sweep runs inside ``one_ray_session()``.
    """
    os.environ.pop("RAY_ADDRESS", None)  # one local node, never a cluster someone else started
    import ray

    import tune_app
    from sweeps import runner
    from sweeps.prepare import prepare

    settings = tune_app.settings_from_args(tune_app.build_parser().parse_args(argv))
    prepared = prepare(settings)
    timing: dict[str, float] = {}
    try:
        with _timed_fit(timing), (between(prepared) if between else contextlib.nullcontext()):
            results = runner.run(prepared)
    finally:
        if _session is None:
            ray.shutdown()
        else:  # as after a shutdown, the next sweep starts with none of these trials' processes
            _wait_for_trial_processes_to_exit()
    errors = [str(r.error)[:500] for r in results if r.error]
    if errors:
        raise RuntimeError(f"{len(errors)} trial(s) failed: {errors[0]}")
    return SweepRun(prepared, results, timing["fit_seconds"],
                    Path(prepared.settings.experiment_path()), timing["fit_start"],
                    timing["fit_end"])


def read_trials(exp: Path) -> dict[str, list[dict[str, Any]]]:
    """Trial folder name -> the rows Tune stored in its result.json."""
    out = {}
    for trial_dir in sorted(p for p in Path(exp).iterdir() if (p / "params.json").is_file()):
        text = (trial_dir / "result.json").read_text() if (trial_dir / "result.json").exists() \
            else ""
        out[trial_dir.name] = [json.loads(line) for line in text.splitlines() if line]
    return out


def tensorboard_epoch_times(trial_dir: Path) -> dict[int, float]:
    """Epoch -> wall time (time.time()) of the first validation picture the trial logged for
    it: taken right after ``epoch_seconds`` is measured, so the epoch started at
    ``wall - epoch_seconds``."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    times: dict[int, float] = {}
    for path in sorted((trial_dir / "tensorboard").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            if any(v.tag.startswith("val/") for v in event.summary.value):
                times.setdefault(int(event.step), float(event.wall_time))
    return times
