"""analysis.pareto: the front equals a brute-force dominance filter (ties, NaN, every mode), the
hypervolume equals hand-computed areas and Optuna's own exact computation, and a stored search
sweep's front, hypervolume and rejected architectures are what its trials and costs.json say."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from search_helpers import FRONT, HYPERVOLUME, REASON, REJECTED_LABEL, write_search_sweep

from analysis.loading import load_experiment
from analysis.pareto import (
    feasible,
    front_lines,
    hypervolume,
    is_budgeted_search,
    non_dominated,
    reference_point,
    scaled_hypervolume,
    search_front,
)
from sweeps.objectives import OBJECTIVES
from sweeps.summary import REJECTED

NAMES = list(OBJECTIVES)


def _brute_force_front(frame: pd.DataFrame, objectives: list[str]) -> list[bool]:
    """Row by row: no NaN, and no other complete row at least as good on every objective (in
    its mode) and strictly better on one."""
    rows = [[frame[OBJECTIVES[n].column].iloc[i] for n in objectives] for i in range(len(frame))]
    modes = [OBJECTIVES[n].mode for n in objectives]

    def better(a, b, mode, strictly):
        if mode == "max":
            return a > b if strictly else a >= b
        return a < b if strictly else a <= b

    out = []
    for i, row in enumerate(rows):
        if any(math.isnan(v) for v in row):
            out.append(False)
            continue
        dominated = False
        for j, other in enumerate(rows):
            if j == i or any(math.isnan(v) for v in other):
                continue
            if all(better(o, r, m, False) for o, r, m in zip(other, row, modes)) and any(
                    better(o, r, m, True) for o, r, m in zip(other, row, modes)):
                dominated = True
                break
        out.append(not dominated)
    return out


def _random_frame(rng: np.random.Generator, n: int, objectives: list[str]) -> pd.DataFrame:
    """Values on a coarse grid (many ties and duplicate rows), about 10% NaN."""
    frame = pd.DataFrame({OBJECTIVES[name].column: rng.integers(0, 5, n).astype(float)
                          for name in objectives})
    frame = frame.mask(rng.random(frame.shape) < 0.1)
    frame.index = rng.permutation(np.arange(100, 100 + n))  # any index, kept
    return frame


@pytest.mark.parametrize("seed", range(40))
def test_the_front_equals_a_brute_force_dominance_filter(seed):
    rng = np.random.default_rng(seed)
    for _ in range(5):
        objectives = list(rng.choice(NAMES, size=rng.integers(1, 6), replace=False))
        frame = _random_frame(rng, int(rng.integers(0, 25)), objectives)
        mask = non_dominated(frame, objectives)
        assert list(mask.index) == list(frame.index)
        assert mask.tolist() == _brute_force_front(frame, objectives), (objectives, frame)


def test_equal_rows_both_stay_and_a_nan_row_is_never_on_the_front():
    frame = pd.DataFrame({"best_val_miou": [0.5, 0.5, 0.4, 0.9, np.nan],
                          "inference_ms_cpu": [10.0, 10.0, 5.0, np.nan, 1.0]})
    assert non_dominated(frame, ["miou", "cpu_ms"]).tolist() == [True, True, True, False, False]
    # the NaN rows dominate nothing either: without them, the same three
    assert non_dominated(frame.iloc[:3], ["miou", "cpu_ms"]).tolist() == [True, True, True]


def test_a_row_better_on_one_objective_and_equal_on_the_rest_dominates():
    frame = pd.DataFrame({"best_val_miou": [0.5, 0.6], "size_mb": [3.0, 3.0]})
    assert non_dominated(frame, ["miou", "size_mb"]).tolist() == [False, True]
    assert non_dominated(frame.iloc[:0], ["miou", "size_mb"]).tolist() == []


def test_feasible_keeps_figures_at_or_under_every_budget_and_no_missing_one():
    frame = pd.DataFrame({"inference_ms_cpu": [30.0, 30.1, np.nan, 5.0],
                          "size_mb": [1.0, 1.0, 1.0, 12.0]})
    assert feasible(frame, {}).tolist() == [True] * 4
    assert feasible(frame, {"cpu_ms": 30}).tolist() == [True, False, False, True]
    assert feasible(frame, {"cpu_ms": 30, "size_mb": 10}).tolist() == [True, False, False,
                                                                       False]


@pytest.mark.parametrize(("points", "reference", "volume"), [
    ([[1, 1]], [3, 3], 4.0),
    ([[1, 2], [2, 1]], [3, 3], 3.0),  # 2 + 2 - 1 overlap
    ([[1, 2], [2, 1], [2, 2]], [3, 3], 3.0),  # a dominated point adds nothing
    ([[1, 2], [1, 2]], [3, 3], 2.0),  # duplicates count once
    ([[0, 3], [3, 0]], [3, 3], 0.0),  # on the reference's boundary: no volume
    ([[1, 1], [4, 0], [np.nan, 0]], [3, 3], 4.0),  # beyond the reference, or NaN: nothing
    (np.empty((0, 2)), [1, 1], 0.0),
    ([[2.0], [1.0]], [3.0], 2.0),  # one objective: the best point's distance
])
def test_hypervolume_of_hand_computed_sets(points, reference, volume):
    assert hypervolume(np.array(points, dtype=float), np.array(reference, dtype=float)) == \
        pytest.approx(volume)


def test_the_staircase_set_by_hand():
    # (0, .5), (.25, .25), (.5, 0) in [0, 1]^2: 1 x .5 + .75 x .25 + .5 x .25
    points = np.array([[0.0, 0.5], [0.25, 0.25], [0.5, 0.0]])
    assert hypervolume(points, np.ones(2)) == pytest.approx(0.5 + 0.1875 + 0.125)


@pytest.mark.parametrize("dimensions", [2, 3, 4, 5])
def test_hypervolume_equals_optunas_exact_computation(dimensions):
    """Optuna's WFG (a private API: a test reference only) on random sets with ties."""
    from optuna._hypervolume import compute_hypervolume

    rng = np.random.default_rng(dimensions)
    for _ in range(30):
        n = int(rng.integers(1, 16 if dimensions < 5 else 10))
        points = rng.integers(0, 6, size=(n, dimensions)).astype(float) / 2
        reference = np.full(dimensions, 3.0)
        assert hypervolume(points, reference) == pytest.approx(
            compute_hypervolume(points, reference), rel=1e-12, abs=1e-12)
        continuous = rng.random((n, dimensions))
        assert hypervolume(continuous, np.ones(dimensions)) == pytest.approx(
            compute_hypervolume(continuous, np.ones(dimensions)), rel=1e-9)


def test_the_reference_point_is_mIoU_0_each_budget_else_the_worst_figure_by_1_1():
    frame = pd.DataFrame({"best_val_miou": [0.4, 0.5], "inference_ms_cpu": [10.0, 20.0],
                          "size_mb": [3.0, 8.0]})
    reference = reference_point(frame, ["miou", "cpu_ms", "size_mb"], {"cpu_ms": 25.0})
    assert reference == {"miou": (0.0, "none"), "cpu_ms": (25.0, "its budget"),
                         "size_mb": (pytest.approx(8.8), "1.1 x the worst trained")}
    # scaled: (1 - mIoU, cpu / 25, size / 8.8) against (1, 1, 1)
    scaled = np.array([[0.6, 10 / 25, 3 / 8.8], [0.5, 20 / 25, 8 / 8.8]])
    assert scaled_hypervolume(frame, ["miou", "cpu_ms", "size_mb"],
                              {"miou": 0.0, "cpu_ms": 25.0, "size_mb": 8.8}) == pytest.approx(
        hypervolume(scaled, np.ones(3)))


@pytest.fixture
def budgeted(tmp_path):
    return load_experiment(write_search_sweep(tmp_path / "search", study=False))


def test_a_budgeted_search_has_its_front_hypervolume_and_rejected_architectures(budgeted):
    result = search_front(budgeted)
    assert result.objectives == ["miou", "cpu_ms"] and result.budgets == {"cpu_ms": 30.0}
    assert result.front["trial_id"].tolist() == FRONT  # best mIoU first
    assert REJECTED not in set(result.trained["status"])
    assert result.hypervolume == pytest.approx(HYPERVOLUME)
    assert result.reference_text() == "mIoU 0.000; cpu_ms 30 ms (its budget)"
    [rejected] = result.rejected.to_dict("records")
    assert (rejected["label"], rejected["cpu_ms"], rejected["why"],
            rejected["proposals"]) == (REJECTED_LABEL, 45.0, REASON, 2)


def test_the_cli_front_is_one_line_per_front_trial_best_first(budgeted):
    assert front_lines(budgeted) == [
        "deeplab/resnet18/aspp/aug lr=0.001: mIoU 0.450, cpu_ms 28 ms",
        "unet/aug lr=0.003: mIoU 0.420, cpu_ms 20 ms",
        "deeplab/mobilenet_v3_small/aspp/aug lr=0.001: mIoU 0.300, cpu_ms 8 ms"]


def test_a_budget_alone_makes_the_front_the_best_trial_within_it(tmp_path):
    exp = load_experiment(write_search_sweep(tmp_path / "s", objectives=["miou"],
                                             budgets={"cpu_ms": 25.0}, study=False))
    result = search_front(exp)
    assert result.hypervolume is None and result.costs == ["cpu_ms"]
    assert front_lines(exp) == ["unet/aug lr=0.003: mIoU 0.420, cpu_ms 20 ms"]  # resnet18: 28


def test_sweeps_without_objectives_or_budgets_show_no_front(tmp_path):
    exp = load_experiment(write_search_sweep(tmp_path / "old", objectives=None, study=False))
    assert not is_budgeted_search(exp.meta) and front_lines(exp) == []
    single = {"settings": {"objectives": ["miou"], "budgets": {}}}
    assert not is_budgeted_search(single) and not is_budgeted_search({})


def test_without_costs_json_the_rejected_trials_give_their_own_figures(tmp_path):
    exp = load_experiment(write_search_sweep(tmp_path / "s", costs=False, study=False))
    [rejected] = search_front(exp).rejected.to_dict("records")
    assert (rejected["label"], rejected["cpu_ms"], rejected["size_mb"], rejected["why"],
            rejected["proposals"]) == (REJECTED_LABEL, 45.0, 80.0, REASON, 2)


def test_a_budgeted_search_with_no_trained_trial_has_no_front_and_no_hypervolume(tmp_path):
    exp = load_experiment(write_search_sweep(tmp_path / "s", trials=[], study=False))
    result = search_front(exp)
    assert result.front.empty and result.hypervolume is None and result.reference == {}
    assert front_lines(exp) == []
    assert result.rejected["label"].tolist() == [REJECTED_LABEL]  # costs.json says so
