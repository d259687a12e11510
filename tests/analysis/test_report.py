"""analysis.report and ``python -m analysis``: the files of a report, one self-contained page,
and one clear error line for a folder that is not an experiment."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "analysis", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_report_writes_every_file_and_one_self_contained_page(report_html, experiment):
    out = report_html.parent
    for name in ("trials.csv", "history.csv", "rankings.md", "rankings.csv"):
        assert (out / name).is_file(), name
    assert len(pd.read_csv(out / "trials.csv")) == len(experiment.trials)
    assert len(pd.read_csv(out / "history.csv")) == len(experiment.history)
    page = report_html.read_text()
    pngs = sorted(out.glob("*.png"))
    assert len(re.findall(r"<img ", page)) == page.count('src="data:image/png;base64,') \
        == len(pngs) > 10
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", page)  # nothing fetched
    assert not re.search(r"https?://|<script|<link|@import|url\(", page)
    for question in ("1. Augmentation", "2. ASPP", "3. UNet vs DeepLab", "4. The best model"):
        assert question in page
    assert "SYNTHETIC DATA" in page and "Constant-predictor baseline" in page
    assert "Hardware:" in page and "Rankings" in page
    assert re.search(r"with ASPP: best val mIoU \d\.\d{3} vs \d\.\d{3} without ASPP "
                     r"\([+-]\d\.\d{3}\)", page)


@pytest.mark.slow
def test_the_report_of_a_damaged_sweep_names_what_it_skipped(sweep_copy, tmp_path):
    from analysis.report import build_report

    victim = sorted(p for p in sweep_copy.iterdir() if p.is_dir())[0]
    (victim / "params.json").unlink()
    page = build_report(sweep_copy, tmp_path, examples=False).read_text()
    assert f"skipped {victim.name}: params.json missing" in page
    assert "per-class examples not made (--no-examples)" in page


@pytest.mark.slow
def test_a_sweep_that_has_only_just_started_gets_a_report_saying_so(sweep_copy, tmp_path):
    from analysis.report import build_report

    state_file = next(sweep_copy.glob("experiment_state-*.json"))
    state = json.loads(state_file.read_text())
    for entry in state["trial_data"]:
        entry[0] = json.dumps({**json.loads(entry[0]), "status": "PENDING"})
    state_file.write_text(json.dumps(state))
    for folder in (p for p in sweep_copy.iterdir() if p.is_dir()):
        shutil.rmtree(folder)
        folder.mkdir()  # Ray makes the trial folders before the trials start

    page = build_report(sweep_copy, tmp_path).read_text()

    assert "4 PENDING" in page and "results below are provisional" in page
    assert "no examples: no trial has kept a checkpoint yet" in page
    assert "<img " not in page and "No model has results yet." in page


def test_cli_refuses_a_folder_that_is_not_an_experiment_in_one_line(tmp_path):
    done = run_cli(str(tmp_path / "missing"))
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {tmp_path / 'missing'}: no such folder; pass an "
                                   "experiment folder STORAGE/NAME (the one holding "
                                   "segsweep.json)")
    done = run_cli(str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {tmp_path} is not a segsweep experiment")


@pytest.mark.slow
def test_cli_writes_the_report_where_asked(sweep_dir, tmp_path):
    done = run_cli(str(sweep_dir), "--out", str(tmp_path / "r"), "--tolerance", "0.1",
                   "--no-examples")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"report: {tmp_path / 'r' / 'report.html'}"
    rankings = (tmp_path / "r" / "rankings.md").read_text()
    assert rankings.startswith("# Rankings") and "within 10% of each other" in rankings


@pytest.mark.slow
def test_a_report_given_the_sweeps_validation_split_decodes_no_file(decodes, sweep_copy, tmp_path):
    from analysis.dataset import load_validation
    from analysis.loading import load_experiment
    from analysis.report import build_report

    val, _ = load_validation(load_experiment(sweep_copy).meta)
    before = decodes.count
    page = build_report(sweep_copy, tmp_path, val=val).read_text()
    assert decodes.count == before
    assert "Constant-predictor baseline" in page
