"""The benchmarks in bench/ run at their smallest sizes (--smoke), so they cannot rot.

Only that they run and print their table rows is checked here: smoke sizes are far too small
for the figures to mean anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

EXPECTED = {
    "trial_overhead": [
        "overhead: (b)/(a) images/s, train_trial vs bare loop",
        "overhead: (c)/(a) images/s, Tune trial vs bare loop",
        "overhead: (b)/(a) images/s incl. per-epoch reporting",
        "overhead: (c)/(a) images/s incl. per-epoch checkpoint+report",
        "overhead: (b)/(a) images per CPU-second incl. per-epoch reporting",
        "overhead: (c)/(a) images per CPU-second incl. checkpoint+report",
        "overhead: (c) start-up, CLI start to first training step [s]",
    ],
    "makespan": [
        "makespan: 2 trials on 2 slots, makespan/ideal",
        "makespan: compute threads per 1-CPU trial (max)",
        "makespan: compute threads per 2-CPU trial (min)",
        "makespan: images/s of 2 1-CPU trials / one 2-CPU trial",
    ],
    "asha": [
        "asha: epochs trained, ASHA / FIFO",
        "asha: best val mIoU, FIFO minus ASHA",
    ],
    "data": [
        "data: loader/model crops/s, unet/no-aug",
        "data: loader/model crops/s, unet/aug",
        "data: decodes per file, sweep up to the report",
        "data: decodes per file, sweep incl. its report",
    ],
    "memory": [
        "memory: extra memory of a 2nd trial / decoded dataset",
        "memory: data-attributable extra of a 2nd trial / decoded dataset",
    ],
    "inference": [
        "inference: time_inference / bare loop, unet",
        "inference: speed-up all cores vs the trial's threads (offered), unet",
        "inference: speed-up channels_last (not offered), unet",
    ],
}
FAST = {"inference"}  # a few seconds; the others start Ray or train several trials


def table_rows(stdout: str) -> dict[str, list[str]]:
    """what -> [value, target, pass/fail] of every printed table row."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and cells[0] != "what":
            rows[cells[0]] = cells[1:]
    return rows


def run_bench(name: str, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py"), *flags],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in EXPECTED],
)
def test_benchmark_runs_at_smoke_size_and_prints_its_rows(name):
    proc = run_bench(name, "--smoke")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = table_rows(proc.stdout)
    missing = [what for what in EXPECTED[name] if what not in rows]
    assert not missing, f"missing rows {missing}; table: {list(rows)}"
    for what, (_, target, status) in rows.items():
        assert status in ("PASS", "FAIL", "info"), (what, status)
        assert (status == "info") == (target == "-"), (what, target, status)


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
