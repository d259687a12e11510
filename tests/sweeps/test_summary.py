"""The CLI's ranking: a trial's status must match what storage holds, not what Tune remembers."""

import math

import pandas as pd
from ray.tune import Result

from sweeps.summary import failed_points, ranking_table


def _result(point: str, miou: float | None, *, stored: bool = True, error: Exception | None = None,
            **extra) -> Result:
    """A Tune Result as ResultGrid builds it: ``metrics`` is Tune's remembered last result (kept
    in its experiment state), ``metrics_dataframe`` the rows read back from result.json."""
    metrics = {"point": point, "epoch": 3, "best_epoch": 2, "config": {"point": point}, **extra}
    if miou is not None:
        metrics["best_val_miou"] = miou
    rows = pd.DataFrame([{**metrics, "epoch": e} for e in (1, 2, 3)]) if stored else pd.DataFrame()
    return Result(metrics=metrics, checkpoint=None, error=error, path=f"/runs/x/{point}",
                  metrics_dataframe=rows)


def _status(table: pd.DataFrame) -> dict[str, str]:
    return dict(zip(table["model"], table["status"]))


def test_finished_and_diverged_trials_keep_their_status():
    table = ranking_table([_result("a", 0.3), _result("b", None, diverged=True)])
    assert _status(table) == {"a": "done", "b": "DIVERGED"}
    assert list(table["model"]) == ["a", "b"]


def test_trial_whose_stored_results_are_gone_is_missing_not_done():
    # --resume after its folder was deleted: Tune still remembers its last metrics.
    table = ranking_table([_result("kept", 0.2), _result("deleted", 0.9, stored=False)])
    assert _status(table) == {"kept": "done", "deleted": "MISSING"}
    assert list(table["model"]) == ["kept", "deleted"]  # not ranked above a finished trial
    row = table.set_index("model").loc["deleted"]
    assert math.isnan(row["best mIoU"]) and pd.isna(row["epochs"])  # nothing stored backs them


def test_trial_that_never_wrote_results_is_missing():
    never = Result(metrics={"config": {"point": "never"}}, checkpoint=None, error=None,
                   path="/runs/x/never", metrics_dataframe=None)
    table = ranking_table([_result("a", 0.1), never])
    assert _status(table) == {"a": "done", "never": "MISSING"}


def test_errored_trial_is_shown_as_error_and_ranked_below_finished_ones():
    table = ranking_table([_result("ok", 0.2), _result("crashed", 0.5, error=RuntimeError("x"))])
    assert _status(table) == {"ok": "done", "crashed": "ERROR"}
    assert list(table["model"]) == ["ok", "crashed"]


def test_cpu_time_is_the_sweeps_quiet_timing_where_it_has_one():
    results = [_result("a", 0.3, inference_ms_cpu=float("nan")), _result("b", 0.2,
                                                                          inference_ms_cpu=50.0)]
    table = ranking_table(results, {"a": {"ms": 12.5}}).set_index("model")
    assert table.loc["a", "CPU ms/frame"] == 12.5  # the trial left CPU timing to the sweep
    assert table.loc["b", "CPU ms/frame"] == 50.0  # no quiet figure: the trial's own


def test_failed_points_are_the_errored_trials_only():
    results = [_result("ok", 0.2), _result("crashed", 0.5, error=RuntimeError("x")),
               _result("deleted", 0.9, stored=False), _result("nan", None, diverged=True)]
    assert failed_points(results) == ["crashed"]


def test_search_trials_are_named_by_their_searched_values_and_timed_by_their_grid_point():
    # Optuna samples one grid point several times: without lr and crop the rows look alike.
    point = "deeplab/mobilenet_v3_small/no-aspp/aug"
    results = [_result(point, 0.3, config={"point": point, "lr": 0.0031, "crop_size": 32}),
               _result(point, 0.2, config={"point": point, "lr": 0.001, "crop_size": 64}),
               _result(point, 0.1, config={"point": point, "lr": 0.0002, "crop_size": 32},
                       error=RuntimeError("x"))]
    table = ranking_table(results, {point: {"ms": 12.5}})
    assert list(table["model"]) == [f"{point} lr=0.0031 crop=32", f"{point} lr=0.001 crop=64",
                                    f"{point} lr=0.0002 crop=32"]
    assert list(table["CPU ms/frame"]) == [12.5] * 3  # the architecture's quiet timing
    assert failed_points(results) == [f"{point} lr=0.0002 crop=32"]
