"""Shared pieces of the benchmarks: the result table, timers, synthetic data, sweeps, sampling.

Every benchmark prints one table row per figure::

    | what | value | target | pass/fail |

``pass/fail`` is PASS or FAIL for a figure with a target and ``info`` for context figures. A
benchmark exits 0 whether its targets pass or fail (the table says which); it exits non-zero
only when it crashes. ``--json PATH`` also writes the rows for ``bench/run_all.py``.

The machine may be shared, so absolute times are noisy: every benchmark measures the things it
compares side by side in one run and reports ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"  # git-ignored: cached datasets, logs, sweeps kept with --keep
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("PYTHONUNBUFFERED", "1")


# ---------------------------------------------------------------------------------- the table
@dataclass
class Row:
    what: str
    value: str
    target: str
    status: str  # PASS | FAIL | info


def check(what: str, value: float, op: str, target: float, fmt: str = "{:.3f}") -> Row:
    """A figure with a target: ``op`` is one of >=, <=, ==."""
    ok = {">=": value >= target, "<=": value <= target, "==": value == target}[op]
    ok = ok and value == value  # NaN never passes
    return Row(what, fmt.format(value), f"{op} {fmt.format(target)}", "PASS" if ok else "FAIL")


def info(what: str, value: Any, fmt: str = "{:.3f}") -> Row:
    text = fmt.format(value) if isinstance(value, (int, float)) else str(value)
    return Row(what, text, "-", "info")


def format_table(rows: list[Row], title: str | None = None) -> str:
    head = Row("what", "value", "target", "pass/fail")
    width = [max(len(getattr(r, f)) for r in [head, *rows]) for f in ("what", "value", "target")]
    lines = [f"\n## {title}"] if title else []
    for i, r in enumerate([head, *rows]):
        lines.append(f"| {r.what:<{width[0]}} | {r.value:>{width[1]}} | {r.target:<{width[2]}} "
                     f"| {r.status:<9} |")
        if i == 0:
            lines.append(f"|{'-' * (width[0] + 2)}|{'-' * (width[1] + 2)}|"
                         f"{'-' * (width[2] + 2)}|-----------|")
    return "\n".join(lines)


def emit(rows: list[Row], args: argparse.Namespace, title: str) -> None:
    """Print the table (after any sweep logs) and write ``--json`` if asked."""
    print(format_table(rows, title), flush=True)
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))


def parser(description: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="smallest sizes (seconds): tests use it")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the sweeps' folders in bench/out")
    return p


def parse(p: argparse.ArgumentParser, smoke: dict[str, Any],
          argv: list[str] | None = None) -> argparse.Namespace:
    """Parse; with --smoke every size in ``smoke`` that was not given takes its smoke value."""
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    if args.smoke:
        for key, value in smoke.items():
            flag = "--" + key.replace("_", "-")
            if not any(a == flag or a.startswith(flag + "=") for a in argv):
                setattr(args, key, value)
    return args


# ------------------------------------------------------------------------------------ timing
class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


# ------------------------------------------------------------------------------------- data
def homework_cpus_per_trial() -> int:
    """CPUs per trial the product gives the homework grid on this machine (its even share)."""
    from sweeps.grids import load_grid
    from sweeps.resources import resources_per_trial
    from sweeps.settings import SweepSettings

    n = len(load_grid("homework").points)
    return int(resources_per_trial(SweepSettings(), n, {"CPU": os.cpu_count() or 1})["cpu"])


@contextlib.contextmanager
def counting_decodes() -> Iterator[list[int]]:
    """``[n]``: the files this process's dataset loads decode while inside (their decoding
    workers included), read through the loader's one call that decodes."""
    from segmodels.data import dataset

    seen, decode_pairs = [0], dataset.decode_pairs

    def counted(*args, **kwargs):
        results = decode_pairs(*args, **kwargs)
        seen[0] += sum(r.files_decoded for r in results)
        return results

    dataset.decode_pairs = counted
    try:
        yield seen
    finally:
        dataset.decode_pairs = decode_pairs


def synthetic_data(n_train: int, n_test: int, height: int = 240, width: int = 320,
                   distinct: int | None = None, seed: int = 0) -> Path:
    """A synthetic dataset (``segmodels.data.synthetic.generate``) cached in ``bench/out/data``.

    ``distinct`` < n: only that many scenes per split are rendered and the others are copies
    of them under new names (rendering 1000x750 scenes is slow); every file is still decoded
    into its own array, so the decoded dataset has its full size.
    """
    from segmodels.data import SYNTHETIC_MARKER, synthetic

    distinct = min(distinct or max(n_train, n_test), max(n_train, n_test))
    name = f"syn_{n_train}_{n_test}_{height}x{width}_s{seed}_d{distinct}"
    root = OUT / "data" / name
    if synthetic.is_synthetic(root):
        return root
    tmp = OUT / "data" / f".{name}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    synthetic.generate(tmp, n_train=min(n_train, distinct), n_test=min(n_test, distinct),
                       seed=seed, height=height, width=width)
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(distinct, n):
            for kind, ext in (("image", "jpg"), ("mask", "png")):
                src = tmp / split / kind / f"{i % distinct:06d}.{ext}"
                shutil.copyfile(src, tmp / split / kind / f"{i:06d}.{ext}")
    marker = tmp / SYNTHETIC_MARKER
    record = json.loads(marker.read_text())
    record.update(n_train=n_train, n_test=n_test, distinct=distinct)
    marker.write_text(json.dumps(record, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def write_grid(folder: Path, name: str, axes: dict[str, list], fixed: dict[str, Any]) -> str:
    """A YAML grid file for ``tune_app.py --grid`` (the sweep is named after ``name``)."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"axes": axes, "fixed": fixed}, sort_keys=False))
    return str(path)


@contextlib.contextmanager
def workdir(args: argparse.Namespace, name: str) -> Iterator[Path]:
    """A scratch folder for sweeps: temporary, or ``bench/out/NAME`` with --keep."""
    if args.keep:
        path = OUT / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"segsweep-bench-{name}-") as tmp:
        yield Path(tmp)


# ----------------------------------------------------------------------------------- sweeps
def _clean_env() -> dict[str, str]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)  # one local node, never a cluster someone else started
    return env


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
                            env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
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


def run_sweep(argv: list[str], between: Callable[[Any], Any] | None = None) -> SweepRun:
    """tune_app.py's code path in this process: ``prepare`` then ``runner.run``.

    ``argv`` are tune_app.py flags. ``between(prepared)`` may return a context manager that
    is entered around ``runner.run`` (e.g. a sampler). Ray is shut down afterwards.
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
        ray.shutdown()
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


# -------------------------------------------------------------------------------- processes
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
                               "--json", str(out)], cwd=ROOT, env=_clean_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)
        seconds = time.perf_counter() - start
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(proc.stdout)
        rows = [Row(**r) for r in json.loads(out.read_text())] if out.exists() else []
        return proc.returncode, rows, seconds
