"""analysis --time-inference: CPU timings for a sweep stopped before its own timing pass."""

from __future__ import annotations

import json

import pytest

from analysis.__main__ import main
from analysis.loading import load_experiment
from analysis.timing import missing_timing_note, time_sweep_architectures

slow = pytest.mark.slow


def test_no_note_when_the_sweep_timed_its_architectures(tmp_path):
    (tmp_path / "inference_cpu.json").write_text("{}")
    assert missing_timing_note(tmp_path) is None
    note = missing_timing_note(tmp_path / "stopped")
    assert "no quiet CPU inference times: inference_cpu.json is missing" in note
    assert f"python -m analysis {tmp_path / 'stopped'} --time-inference" in note


def test_timing_writes_one_figure_per_grid_point_with_the_trials_threads(tmp_path):
    small = {"model": "unet", "model_kwargs": {"min_channels": 4, "max_channels": 16}}
    meta = {"points": {"a": small, "b": {**small, "augment": False}},
            "fixed": {"inference_height": 40, "inference_width": 56, "inference_repeats": 1},
            "resources_per_trial": {"cpu": 1, "gpu": 0}}
    path = time_sweep_architectures(tmp_path, meta)
    timings = json.loads(path.read_text())
    assert set(timings) == {"a", "b"}
    assert timings["a"] == timings["b"]  # one architecture, timed once
    assert timings["a"]["ms"] > 0 and timings["a"]["threads"] == 1
    assert (timings["a"]["height"], timings["a"]["width"]) == (40, 56)
    assert [p.name for p in tmp_path.iterdir()] == ["inference_cpu.json"]  # no partial file


@slow
def test_a_stopped_sweep_gets_its_timings_from_the_report_command(sweep_copy, capsys):
    (sweep_copy / "inference_cpu.json").unlink()  # as if stopped before the timing pass
    before = load_experiment(sweep_copy)
    assert any("--time-inference" in n for n in before.notes), before.notes
    assert before.trials["inference_ms_cpu"].isna().all()  # trials leave CPU timing to it

    assert main([str(sweep_copy), "--time-inference", "--no-examples",
                 "--out", str(sweep_copy / "report")]) == 0
    after = load_experiment(sweep_copy)
    assert not any("--time-inference" in n for n in after.notes)
    assert (after.trials["inference_ms_cpu"] > 0).all()
    assert "report.html" in capsys.readouterr().out


def test_timing_a_folder_that_is_no_sweep_is_refused_naming_it(tmp_path, capsys):
    assert main([str(tmp_path), "--time-inference"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "not a segsweep experiment" in err
