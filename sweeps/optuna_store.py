"""The Optuna study of a ``--search optuna`` sweep, kept in SQLite through Ray's ``OptunaSearch``
``storage``: ``optuna-dashboard`` shows it live, ``optuna.load_study`` reads it afterwards, and
``--resume`` continues the same study.

The file is ``STUDY_FILE`` in ``SweepSettings.local_store_path()`` (the experiment folder, or the
user's cache when ``--storage`` is object storage); the study is named after the sweep.

Two things Ray's searcher alone gets wrong with a persistent study, handled here:
- Seeds: Ray enqueues ``points_to_evaluate`` each time it sets the searcher up, and a resumed
  sweep sets it up again before restoring it, which would queue every grid point a second time.
  The seeds are enqueued once, when the study is created (``start_study``).
- A kill leaves the trials Optuna had handed out RUNNING. Ray tells the ones it resumes when they
  end; those its saved state never knew stay RUNNING forever. Once Tune has ended every trial,
  ``fail_abandoned_trials`` marks the rest FAIL.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from sweeps.settings import SweepSettings
from sweeps.storage import STUDY_FILE


def study_url(settings: SweepSettings) -> str:
    """The study's SQLAlchemy URL (absolute path: ``sqlite:////abs/optuna.db``)."""
    return f"sqlite:///{settings.local_store_path() / STUDY_FILE}"


def start_study(url: str, name: str, seeds: list[dict[str, Any]], directions: list[str],
                metric_names: list[str]):
    """A new study ``name`` at ``url`` holding ``seeds`` as its first trials, its objectives
    named (optuna-dashboard shows the names); a study of that name left by a sweep this one
    replaces is deleted first. Returns the storage, for ``OptunaSearch(storage=...)``."""
    import optuna

    if url.startswith("sqlite:///"):  # the cache folder of a remote sweep may not exist yet
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(url)
    if name in optuna.study.get_all_study_names(storage):
        optuna.delete_study(study_name=name, storage=storage)
    study = optuna.create_study(storage=storage, study_name=name, directions=directions)
    with warnings.catch_warnings():  # "experimental" since Optuna 3.2, still in 5.1
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(metric_names)
    for seed in seeds:
        study.enqueue_trial(seed)
    return storage


def fail_abandoned_trials(settings: SweepSettings) -> list[str]:
    """After Tune ended every trial: the study's trials still RUNNING were handed out by a run
    that was killed before Ray saved them, so nothing will ever finish them; mark them FAIL.
    Returns a note per trial marked."""
    import optuna
    from optuna.trial import TrialState

    url = study_url(settings)
    study = optuna.load_study(study_name=settings.name, storage=url)
    abandoned = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in abandoned:
        study.tell(trial.number, state=TrialState.FAIL)
    return [f"Optuna trial {t.number} ({t.params}) was left RUNNING by an interrupted run and "
            f"never resumed: marked FAIL in {url}" for t in abandoned]
