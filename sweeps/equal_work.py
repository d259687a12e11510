"""Training time compared at equal work: minutes projected to a trial's planned epochs.

ASHA stops weak trials after a few epochs, so their raw training minutes cover less work than
a trial that ran all its epochs: ranking by them would call a trial "fastest to train" because
it was stopped. Every comparison on training time (the CLI table, the analysis rankings,
plots and verdicts) uses ``projected_minutes`` instead, and labels the projected values with
``projection_note``. A trial's first epoch also carries its start-up (data loader workers,
cuDNN autotuning), so a projection from one epoch tends to overstate a trial's time rather than
flatter it.
"""

from __future__ import annotations

import pandas as pd

PROJECTED = "train_minutes_projected"  # the trials-table column beside the raw train_minutes


def projected_minutes(minutes: pd.Series, done: pd.Series, planned: pd.Series) -> pd.Series:
    """Minutes for the planned epochs: the raw minutes of a trial that trained them all,
    minutes per trained epoch x planned epochs for one that trained fewer, NaN where no epoch
    was trained or the planned epochs are unknown (equal work cannot be claimed)."""
    minutes, done, planned = (pd.to_numeric(s, errors="coerce").astype(float)
                              for s in (minutes, done, planned))
    short = is_projected(done, planned)
    projected = minutes.where(~short, minutes / done * planned)
    return projected.where((done > 0) & planned.notna())


def is_projected(done: pd.Series, planned: pd.Series) -> pd.Series:
    """Trials that trained some but not all of their planned epochs."""
    done, planned = (pd.to_numeric(s, errors="coerce").astype(float) for s in (done, planned))
    return (done > 0) & (done < planned)  # NaN compares False: unknown is not projected


def projection_note(done: float, planned: float) -> str:
    """``"projected from 1 of 3 epochs"`` for a trial short of its planned epochs, else ``""``."""
    if pd.isna(done) or pd.isna(planned) or not 0 < done < planned:
        return ""
    return f"projected from {int(done)} of {int(planned)} epochs"


def projected_trial_minutes(trials: pd.DataFrame) -> pd.Series:
    """``projected_minutes`` of each row of analysis's trials table."""
    return projected_minutes(trials["train_minutes"], trials["epochs_done"],
                             trials["epochs_planned"])
