"""The benchmarks in bench/ run at their smallest sizes (--smoke), so they cannot rot.

Smoke sizes are far too small for a figure to say anything about speed or memory, so no target
is checked here; but every figure must be a number in a sane range, so a benchmark that stops
measuring (NaN), counts wrongly (a negative or zero size) or slips a unit (ms for s, bytes for MB)
fails here and not in the next full run.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

RATIO = (0.02, 50.0)  # one speed over a like one: smoke timings on a busy machine swing 10x
SECONDS = (0.0, 900.0)  # within the subprocess timeout below
TRIAL_MB = (10.0, 100_000.0)  # one trial process (torch, Ray) is tens of MB at least
# Per benchmark: the rows it must print, each with the range [low, high] of its figures (every
# number in the value cell). Every other row's numbers must be finite.
FIGURES: dict[str, dict[str, tuple[float, float]]] = {
    "trial_overhead": {
        "overhead: (b)/(a) images/s, train_trial vs bare loop": RATIO,
        "overhead: (c)/(a) images/s, Tune trial vs bare loop": RATIO,
        "overhead: (b)/(a) images/s incl. per-epoch reporting": RATIO,
        "overhead: (c)/(a) images/s incl. per-epoch checkpoint+report": RATIO,
        "overhead: (b)/(a) images per CPU-second incl. per-epoch reporting": RATIO,
        "overhead: (c)/(a) images per CPU-second incl. checkpoint+report": RATIO,
        "overhead: (c) CPU share of threads other than the training thread": (0.0, 1.0),
        "overhead: (a) validation share of the bare epoch": (0.0, 1.0),
        "overhead: (a) drift, slowest/fastest of the 3 bare runs": (1.0, 50.0),
        "overhead: (c) start-up, CLI start to first training step [s]": SECONDS,
    },
    "makespan": {
        "makespan: 2 trials on 2 slots, makespan/ideal": (0.9, 1000.0),  # Ray start-up dominates
        "makespan: compute threads per 1-CPU trial (max)": (1.0, 64.0),
        "makespan: compute threads per 2-CPU trial (min)": (1.0, 64.0),
        "makespan: images/s of 2 1-CPU trials / one 2-CPU trial": RATIO,
    },
    "asha": {
        "asha: epochs trained, ASHA / FIFO": (0.05, 1.0),  # ASHA only ever stops trials early
        "asha: best val mIoU, FIFO minus ASHA": (-1.0, 1.0),
        "asha: best val mIoU ASHA / FIFO": (0.0, 1.0),
    },
    "data": {
        "data: loader/model crops/s, unet/no-aug": (0.1, 100_000.0),
        "data: loader/model crops/s, unet/aug": (0.1, 100_000.0),
        "data: decodes per file, sweep up to the report": (1.0, 4.0),  # every file at least once
        "data: decodes per file, sweep incl. its report": (1.0, 4.0),
        "data: report build time [s]": SECONDS,
        "data: CPU trial crops/s, after / before the device data path": RATIO,
        "data: CPU trial crops/s, before / after": (0.01, 100_000.0),
        "data: CPU trial crops per CPU-second, after / before": RATIO,
    },
    "data_load": {
        "data_load: decode wall time, 1 process(es) [s]": SECONDS,
        "data_load: decode wall time, 2 process(es) [s]": SECONDS,
        "data_load: speed-up, 2 processes / 1": RATIO,
        "data_load: CPU seconds per image (decode, check, shrink), 1 process": SECONDS,
        # at smoke size one full image is small against the processes' own churn
        "data_load: peak memory / (arrays + 1 full image per process), 1 process(es)": (0.1, 100.0),
        "data_load: peak memory / (arrays + 1 full image per process), 2 process(es)": (0.1, 100.0),
        "data_load: files decoded by the second load (cache)": (0.0, 0.0),  # a hit, at any size
        "data_load: files decoded by the first load (cache filled)": (1.0, 1000.0),
        "data_load: load wall time, first / second (cache) [s]": SECONDS,
    },
    "memory": {
        "memory: extra memory of a 2nd trial / decoded dataset": (1e-6, 1e6),  # a tiny dataset
        "memory: data-attributable extra of a 2nd trial / decoded dataset": (-1e6, 1e6),
        "memory: extra of a 2nd trial, big / tiny dataset [MB]": TRIAL_MB,
        "memory: private memory of the trials, 1 / 2 trials [MB]": TRIAL_MB,
        "memory: shared memory (object store) 1 / 2 trials [MB]": (0.0, 100_000.0),
    },
    "gpu": {  # without CUDA: smoke sizes on CPU tensors, no targets
        "gpu: (b)/(a) training crops/s, unet": RATIO,
        "gpu: (b)/(a) training crops/s, deeplab/resnet18/no-aspp": RATIO,
        "gpu: (a) bare training crops/s / (v) bare validation frames/s, unet": (0.01, 1e6),
        "gpu: (b) epoch / its limit (crops/(a) + frames/(v)), unet": RATIO,
        "gpu: (b) seconds per epoch, training / validation / other, unet": SECONDS,
        "gpu: (b) first epoch incl. start-up [s], unet": SECONDS,
    },
    "gpu --course-scale": {  # the homework grid trial after trial (smoke: the points of the
        "gpu: course scale, wall / limit [s], unet/aug": SECONDS,  # 2 architectures measured)
        "gpu: course-scale homework grid, wall / GPU limit": RATIO,
    },
    "gpu --packing": {  # 1, 2, 4 processes of the bare loop at once, on CPU tensors here
        "packing: summed crops/s, 1 / 2 / 4 trials per GPU, unet": (0.01, 1e6),
        "packing: GPU share, rule / best measured, unet": (0.25, 1.0),
        "packing: rule's summed crops/s / best measured, unet": (0.0, 1.0),
        "packing: share the rule gives this run's figures, unet": (0.25, 1.0),
        "packing: rule's summed crops/s / best measured, deeplab/resnet18/no-aspp": (0.0, 1.0),
    },
    "export": {  # one small UNet, exported and timed on a 64x48 frame
        "export: classes agree with PyTorch, unet": (0.999, 1.0),
        "export: onnxruntime ms per frame (median, range), unet, 64x48, 1 thread(s)":
            (0.0, 10_000.0),
        "export: PyTorch ms per frame (median, range), unet, 64x48, 1 thread(s)":
            (0.0, 10_000.0),
        "export: speed-up onnxruntime over PyTorch, unet": RATIO,
    },
    "inference": {
        "inference: time_inference / bare loop, unet": (0.1, 10.0),
        "inference: bare ms per 64x64 frame, 1 thread(s), unet": (0.0, 10_000.0),
        # a 64x64 frame on cores other jobs hold: threads can cost 100x (printed as 0.00)
        "inference: speed-up all cores vs the trial's threads (offered), unet": (0.0, 50.0),
        "inference: speed-up channels_last (not offered), unet": RATIO,
    },
}
FAST = {"inference", "export"}  # a few seconds; the others start Ray or train several trials
# Run where Python has no Ray (the lent GPU machines): `import ray` fails in these runs.
WITHOUT_RAY = {"gpu", "gpu --course-scale", "gpu --packing"}
NO_RAY = ROOT / "tests" / "no_ray"
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|\bnan\b|\binf\b", re.I)


def table_rows(stdout: str) -> dict[str, list[str]]:
    """what -> [value, target, pass/fail] of every printed table row."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and cells[0] != "what":
            rows[cells[0]] = cells[1:]
    return rows


def figures(value: str) -> list[float]:
    """Every number in a value cell: "0.934", "515 / 517", "nan / nan", "128x96 / 32 / 2"."""
    return [float(n) for n in _NUMBER.findall(value)]


def insane_figures(rows: dict[str, list[str]], ranges: dict[str, tuple[float, float]]) -> list[str]:
    """Rows whose figures are missing, not finite, or outside their range."""
    bad = []
    for what, (value, _, _) in rows.items():
        low, high = ranges.get(what, (-math.inf, math.inf))
        numbers = figures(value)
        if what in ranges and not numbers:
            bad.append(f"{what}: {value!r} holds no number")
        elif not all(math.isfinite(x) and low <= x <= high for x in numbers):
            bad.append(f"{what}: {value} not finite or outside [{low:g}, {high:g}]")
    return bad


def run_bench(name: str, *flags: str) -> subprocess.CompletedProcess:
    """``name``: a benchmark, or a benchmark and its flags ("gpu --packing")."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    if name in WITHOUT_RAY:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NO_RAY), env.get("PYTHONPATH")]))
    name, *own = name.split()
    flags = (*own, *flags)
    return subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py"), *flags],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in FIGURES],
)
def test_benchmark_prints_sane_figures_at_smoke_size(name):
    proc = run_bench(name, "--smoke")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = table_rows(proc.stdout)
    missing = [what for what in FIGURES[name] if what not in rows]
    assert not missing, f"missing rows {missing}; table: {list(rows)}"
    for what, (_, target, status) in rows.items():
        assert status in ("PASS", "FAIL", "info"), (what, status)
        assert (status == "info") == (target == "-"), (what, target, status)
    bad = insane_figures(rows, FIGURES[name])
    assert not bad, "\n".join(bad)


# bench/seeds.py on a stored sweep: the shared homework --seeds 3 sweep (tests/conftest.py).
SEED_FIGURES = {
    "seeds: largest range of one point over seeds (max - min)": (0.0, 1.0),
    "seeds: 95% interval width of a point's mean at 1 seed(s), median / max over points":
        (0.0, 1.0),
    "seeds: 95% interval width of a point's mean at 3 seed(s), median / max over points":
        (0.0, 1.0),
    "seeds: distinct single-seed rankings / seeds": (1.0, 3.0),
    "seeds: single seeds whose best point is not the mean's best": (0.0, 3.0),
}


@pytest.mark.slow
def test_seeds_benchmark_reads_a_sweep_trained_with_seeds(homework_seeds):
    proc = run_bench("seeds", "--from", str(homework_seeds.exp))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = table_rows(proc.stdout)
    assert not [what for what in SEED_FIGURES if what not in rows], list(rows)
    assert not insane_figures(rows, SEED_FIGURES)
    assert rows["seeds: points x seeds behind these rows"][0] == "6 x 3"
    ranks = [r for r in rows if r.startswith("seeds: rank at each seed")]
    assert len(ranks) == 6 and all(len(rows[r][0].split()) == 3 for r in ranks)
    for task in ("Task 1 augmentation (unet)", "Task 2 ASPP (deeplab/resnet18)"):
        words = rows[f"seeds: {task}, better at each single seed"][0].split(", ")
        assert len(words) == 3 and set(words) <= {"with", "without", "cannot tell"}
        assert rows[f"seeds: {task}, better over 3 seeds"][0] in {"with", "without",
                                                                   "cannot tell"}


def test_insane_figures_are_named():
    ranges = {"x: ratio": (0.0, 2.0), "x: MB": (10.0, 100.0)}
    rows = {"x: ratio": ["1.5", "-", "info"], "x: MB": ["515 / 5", "-", "info"],
            "x: other": ["nan / 3", "-", "info"], "x: text": ["128x96 / no error", "-", "info"]}
    bad = insane_figures(rows, ranges)
    assert len(bad) == 2, bad
    assert bad[0].startswith("x: MB: 515 / 5 ") and bad[1].startswith("x: other: nan / 3 ")
    assert insane_figures({"x: ratio": ["-", "-", "info"]}, ranges) == [
        "x: ratio: '-' holds no number"]


def test_table_format_and_checks():
    import _common as C

    rows = [C.check("x: ratio", 0.5, ">=", 0.95), C.check("x: n", 1, "==", 1, "{:.0f}"),
            C.check("x: nan", float("nan"), "<=", 1.0), C.info("x: note", "text")]
    assert [r.status for r in rows] == ["FAIL", "PASS", "FAIL", "info"]
    parsed = table_rows(C.format_table(rows, "t"))
    assert parsed["x: ratio"] == ["0.500", ">= 0.950", "FAIL"]
    assert parsed["x: note"] == ["text", "-", "info"]


def test_smoke_flag_only_replaces_sizes_not_given():
    import _common as C

    p = C.parser(None)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--crop-size", type=int, default=128)
    p.add_argument("--trials", type=int, default=4)
    args = C.parse(p, {"epochs": 1, "crop_size": 32, "trials": 2},
                   ["--smoke", "--epochs", "3", "--trials=4"])
    assert (args.epochs, args.crop_size, args.trials) == (3, 32, 4)
    assert C.parse(p, {"epochs": 1}, ["--epochs", "3"]).epochs == 3  # no --smoke


def test_run_all_rejects_an_unknown_benchmark():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--only", "nope"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown benchmark" in proc.stderr


def test_the_gpu_benchmarks_run_where_import_ray_fails():
    # The guard itself: were tests/no_ray shadowed (another sitecustomize first on the path),
    # the GPU benchmarks' smoke runs above would pass with Ray importable.
    env = {**os.environ, "PYTHONPATH": str(NO_RAY)}
    proc = subprocess.run([sys.executable, "-c", "import ray"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "no Ray on the GPU machine" in proc.stderr, proc.stderr
