"""sweeps.equal_work and the CLI's ranking: training time is compared at equal work, so a trial
ASHA stopped after 1 of 3 epochs shows minutes per epoch x 3, labelled projected."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from ray.tune import Result

from sweeps.equal_work import PROJECTED, is_projected, projected_minutes, projection_note
from sweeps.summary import COLUMNS, print_summary, ranking_table

NAN = math.nan


def test_projection_scales_minutes_per_trained_epoch_to_the_planned_epochs():
    minutes = pd.Series([0.185, 0.45, 0.9, NAN, 0.3, 0.2])
    done = pd.Series([1, 3, 2, 0, 2, 2])
    planned = pd.Series([3, 3, 4, 3, NAN, 2])
    projected = projected_minutes(minutes, done, planned)
    assert projected[:3].tolist() == pytest.approx([0.555, 0.45, 1.8])  # all-epoch: unchanged
    assert projected[3:5].isna().all()  # no epoch yet; planned epochs unknown: no claim
    assert projected[5] == 0.2
    assert is_projected(done, planned).tolist() == [True, False, True, False, False, False]
    assert projection_note(1, 3) == "projected from 1 of 3 epochs"
    assert projection_note(3, 3) == projection_note(0, 3) == projection_note(1, NAN) == ""


def _result(point: str, miou: float, minutes: float, epochs: int, planned: int) -> Result:
    """A Tune Result of a trial that reported ``epochs`` rows, as in test_summary."""
    metrics = {"point": point, "epoch": epochs, "epochs_planned": planned, "best_epoch": epochs,
               "best_val_miou": miou, "train_minutes": minutes, "config": {"point": point}}
    rows = pd.DataFrame([{**metrics, "epoch": e} for e in range(1, epochs + 1)])
    return Result(metrics=metrics, checkpoint=None, error=None, path=f"/runs/x/{point}",
                  metrics_dataframe=rows)


def test_the_cli_ranking_shows_projected_minutes_beside_the_raw_ones():
    table = ranking_table([_result("full", 0.4, 0.45, 3, 3), _result("stopped", 0.3, 0.185, 1, 3)])
    header = COLUMNS[PROJECTED]
    assert "projected" in header and header in table.columns
    rows = table.set_index("model")
    assert rows.loc["stopped", ["epochs", "planned"]].tolist() == [1, 3]
    assert rows.loc["stopped", "train min"] == pytest.approx(0.185)  # what it trained
    assert rows.loc["stopped", header] == pytest.approx(0.555)  # at equal work: slower
    assert rows.loc["full", header] == rows.loc["full", "train min"] == pytest.approx(0.45)


def test_the_printed_ranking_says_which_trials_were_projected(capsys):
    val = SimpleNamespace(masks=[np.zeros((4, 4), dtype=np.int64)])
    prepared = SimpleNamespace(data=SimpleNamespace(val=val), cpu_inference=None,
                               settings=SimpleNamespace(experiment_path=lambda: "/runs/x"))
    print_summary([_result("full", 0.4, 0.45, 3, 3), _result("stopped", 0.3, 0.185, 1, 3)],
                  prepared)
    out = capsys.readouterr().out
    assert (f"{COLUMNS[PROJECTED]}: minutes per trained epoch x planned epochs, so trials "
            "compare at equal work (stopped trained fewer epochs than planned)") in out
