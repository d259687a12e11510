"""analysis.rankings: order, ties within a tolerance, Pareto sets (hand-made tables), and the
rankings of the tiny sweep agree with its trials table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis.rankings import (
    pareto_front,
    rank_groups,
    ranking_lines,
    rankings_markdown,
    rankings_table,
)
from sweeps.equal_work import PROJECTED

NAN = math.nan


def models(**columns) -> pd.DataFrame:
    """A trials-like table: name + the given columns, in the order a, b, c, ..."""
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"name": list("abcdefgh"[:n]), **columns})


def test_higher_is_better_order_with_ties_anchored_at_the_best_member():
    values = pd.Series({"a": 0.30, "b": 0.50, "c": 0.49, "d": 0.10, "e": 0.31})
    assert rank_groups(values, higher_is_better=True, tolerance=0.05) == [
        ["b", "c"], ["e", "a"], ["d"]]
    # 1.00, 1.04, 1.08: each step is within 5% of the previous, but 1.08 is not within 5% of
    # 1.00, so ties do not chain
    chain = pd.Series({"x": 1.00, "y": 1.04, "z": 1.08})
    assert rank_groups(chain, higher_is_better=False, tolerance=0.05) == [["x", "y"], ["z"]]


def test_lower_is_better_and_missing_values_are_left_out():
    values = pd.Series({"a": 30.0, "b": NAN, "c": 10.0, "d": 20.0})
    assert rank_groups(values, higher_is_better=False, tolerance=0.0) == [["c"], ["d"], ["a"]]
    assert rank_groups(pd.Series({"a": 1.0, "b": 1.0}), True, 0.0) == [["a", "b"]]  # equal


def test_ranking_lines_call_out_ties():
    table = models(best_val_miou=[0.40, 0.39, 0.30])
    assert ranking_lines(table, "best_val_miou", 0.05) == [
        "1. a (0.400) = b (0.390) (tie within 5%)", "2. c (0.300)"]
    assert ranking_lines(table, "best_val_miou", 0.01)[0] == "1. a (0.400)"


def test_pareto_front_keeps_only_models_nothing_beats_on_both_axes():
    # a: cheap and bad; b: dominated by c (costlier and worse); c: middle; d: best and dearest;
    # e: same as c (not strictly beaten, stays); f: no cost measured (left out)
    table = models(size_mb=[1.0, 5.0, 3.0, 9.0, 3.0, NAN],
                   best_val_miou=[0.10, 0.20, 0.30, 0.50, 0.30, 0.90])
    assert pareto_front(table, "size_mb") == ["a", "c", "e", "d"]  # by cost, cheapest first
    # equal cost, better mIoU dominates; equal mIoU, lower cost dominates
    assert pareto_front(models(size_mb=[2.0, 2.0], best_val_miou=[0.3, 0.4]), "size_mb") == ["b"]
    assert pareto_front(models(size_mb=[1.0, 2.0], best_val_miou=[0.4, 0.4]), "size_mb") == ["a"]


def test_rankings_table_and_markdown():
    table = models(best_val_miou=[0.40, 0.39, 0.30], size_mb=[10.0, 2.0, 1.0],
                   inference_ms_cpu=[5.0, 50.0, 500.0], inference_ms_gpu=[NAN, NAN, NAN],
                   **{PROJECTED: [3.0, 2.0, 1.0]})
    ranks = rankings_table(table, tolerance=0.05)
    miou = ranks[ranks["axis"] == "best_val_miou"].set_index("name")
    assert list(miou["rank"]) == [1, 1, 2] and miou.loc["a", "tied_with"] == "b"
    size = ranks[ranks["axis"] == "size_mb"].set_index("name")
    assert list(size.index) == ["c", "b", "a"]
    assert size["pareto_optimal"].to_dict() == {"c": True, "b": True, "a": True}
    assert not (ranks["axis"] == "inference_ms_gpu").any()
    text = rankings_markdown(table, 0.05)
    assert "1. a (0.400) = b (0.390) (tie within 5%)" in text
    assert "## GPU inference time (lower is better)\n\nnot measured" in text
    assert "- best val mIoU vs CPU inference time: a" in text
    assert "## training time for the planned epochs (lower is better)\n\n1. c (1 min)" in text


@pytest.mark.slow
def test_rankings_of_the_tiny_sweep_follow_its_trials_table(experiment):
    ranks = rankings_table(experiment.finished, tolerance=0.0)
    miou = ranks[ranks["axis"] == "best_val_miou"]
    expected = experiment.finished.sort_values("best_val_miou", ascending=False,
                                               kind="stable")["name"]  # ties: table order
    assert list(miou["name"]) == list(expected)
    assert miou["value"].tolist() == sorted(experiment.finished["best_val_miou"], reverse=True)
    assert set(ranks["axis"]) == {"best_val_miou", "size_mb", "inference_ms_cpu",
                                  PROJECTED}  # no GPU on the test machine
