"""Costs measured once per architecture before training, kept for a resume, judged against
the budgets."""

from __future__ import annotations

import json

import pytest

from sweeps import costs, inference_pass
from sweeps.grids import load_grid
from sweeps.objectives import REJECTED
from sweeps.settings import SweepSettings
from sweeps.storage import COSTS_FILE, INFERENCE_FILE

FIXED = {"inference_width": 32, "inference_height": 24, "inference_repeats": 1}


@pytest.fixture
def timed(monkeypatch):
    """Every model timed, by its parameter count: the real timing pass, counted."""
    calls = []

    def fake_runs(model, device, **kwargs):
        calls.append(sum(p.numel() for p in model.parameters()))
        return [calls[-1] / 1e6]  # ms: one per million parameters

    monkeypatch.setattr(inference_pass, "time_inference_runs", fake_runs)
    return calls


def _settings(tmp_path, **kwargs) -> SweepSettings:
    return SweepSettings(storage=str(tmp_path), name="s", objectives=["miou", "cpu_ms"],
                         **kwargs)


def test_each_architecture_is_measured_once_and_a_resume_measures_nothing(tmp_path, timed):
    points = load_grid("homework").by_label()  # 6 points, 5 networks (UNet +-aug: one)
    settings = _settings(tmp_path, budgets={"cpu_ms": 15.0})
    found = costs.measure_costs(settings, points, FIXED, threads=1)
    assert len(timed) == 5 and len(set(timed)) == 5
    assert set(found) == set(points)
    assert found["unet/aug"] == found["unet/no-aug"]
    for figures in found.values():
        assert figures["cpu_ms"] == pytest.approx(figures["params"] / 1e6)
        assert figures["size_mb"] == pytest.approx(figures["params"] * 4 / 1e6)
        assert (figures[REJECTED] is not None) == (figures["cpu_ms"] > 15.0)
    assert costs.rejected(found) and len(costs.rejected(found)) < len(points)
    stored = json.loads((tmp_path / "s" / COSTS_FILE).read_text())
    assert stored == found
    # the after-sweep timing pass finds them and times nothing again
    quiet = json.loads((tmp_path / "s" / INFERENCE_FILE).read_text())
    assert not inference_pass.missing(points, quiet)

    again = costs.measure_costs(settings, points, FIXED, threads=1)  # as a --resume does
    assert len(timed) == 5 and again == found


def test_a_new_budget_is_judged_on_the_stored_figures(tmp_path, timed):
    points = load_grid("homework").by_label()
    costs.measure_costs(_settings(tmp_path), points, FIXED, threads=1)
    assert len(timed) == 5
    tight = costs.measure_costs(_settings(tmp_path, budgets={"size_mb": 40.0}), points, FIXED,
                                threads=1)
    assert len(timed) == 5  # nothing measured again
    assert set(costs.rejected(tight)) == {label for label, c in tight.items()
                                          if c["size_mb"] > 40.0}


def test_a_trial_reports_its_costs_under_the_objective_columns():
    row = costs.reported({"cpu_ms": 12.5, "size_mb": 3.0, "params": 750_000,
                          "gpu_ms": None, REJECTED: None})
    assert row == {"inference_ms_cpu": 12.5, "size_mb": 3.0, "params": 750_000}
    over = costs.reported({"cpu_ms": 40.0, REJECTED: "cpu_ms 40ms > budget 30ms"})
    assert over[REJECTED] == "cpu_ms 40ms > budget 30ms"


def test_only_the_costs_an_objective_or_budget_names_are_timed():
    assert costs.needed(["miou"], {}) == []
    assert costs.needed(["miou", "size_mb"], {"cpu_ms": 3}) == ["cpu_ms", "size_mb"]
