"""Searches and schedulers by name (the one list of each), and the Tune parameter space.

A grid search is Tune's ``grid_search`` over the points' labels (``point``). An Optuna search
asks its own define-by-run space (sweeps/search_space.py: the model from the grid's axes, lr,
crop size, a grid file's ranges) and returns the proposed model's label as ``point``; every
grid point is first enqueued at the sweep's own settings, so the grid comparison is always
trained. With several objectives (sweeps/objectives.py) the scheduler is FIFO.

Ray is imported inside the functions: the CLI reads these registries for its choices before
anything starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from segmodels.errors import ConfigError
from sweeps import optuna_store

METRIC, MODE = "val_miou", "max"
POINT_KEY = "point"  # Tune's config key holding the grid point's label
DEFAULT_LR_RANGE = (1e-4, 1e-2)
DEFAULT_CROP_CHOICES = (128, 192, 256, 320)
SEARCHED_KEYS = ("lr", "crop_size")  # what Optuna proposes; a grid point may not fix them
# The model axes Optuna may propose (sweeps/search_space.py): a trial's label already says them.
LABELLED_AXES = ("model", "arch", "aspp", "backbone", "encoder", "augment", "loss", "pretrained")


def _asha(epochs: int, grace_period: int | None, reduction_factor: float):
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="epoch",
        max_t=epochs,
        grace_period=grace_period or max(1, epochs // 4),
        reduction_factor=reduction_factor,
    )


def _fifo(epochs: int, grace_period: int | None, reduction_factor: float):
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


# name -> (max epochs, grace period, reduction factor) -> Tune scheduler
SCHEDULERS: dict[str, Callable[[int, int | None, float], Any]] = {
    "asha": _asha,
    "fifo": _fifo,
}


@dataclass(frozen=True)
class Search:
    description: str
    default_scheduler: str  # a SCHEDULERS key
    why: str  # why that default, for the CLI's start line and the report


SEARCHES: dict[str, Search] = {
    "grid": Search("every grid point once", "fifo",
                   "the default for a comparison: every point trains its full epochs, so "
                   "curves and training times compare"),
    "optuna": Search("Optuna TPE over the grid's model axes, lr and crop size beyond the grid "
                     "points, for one objective or several within budgets (--objective, "
                     "--max-*)", "asha",
                     "the default for --search optuna: ASHA stops unpromising samples early"),
}


MULTI_OBJECTIVE_SCHEDULER = "fifo"
ASHA_RANKS_ONE = ("ASHA ranks trials by one metric: with several objectives it would stop a "
                  "fast or small model for being less accurate at a rung")


def resolve_scheduler(search: str, flag: str | None, grid_scheduler: str | None,
                      grid_source: str = "the grid file",
                      multi_objective: bool = False) -> tuple[str, str]:
    """(scheduler, why) for a new sweep: ``--scheduler`` wins, then the grid file's
    ``scheduler``, then the search's default (FIFO with several objectives)."""
    if flag is not None:
        return flag, f"--scheduler {flag} given"
    if grid_scheduler is not None:
        return grid_scheduler, f"set by {grid_source}"
    if multi_objective:
        return MULTI_OBJECTIVE_SCHEDULER, (f"the default with several objectives: "
                                           f"{ASHA_RANKS_ONE}")
    spec = SEARCHES[search]
    return spec.default_scheduler, spec.why


def make_scheduler(name: str, epochs: int, grace_period: int | None = None,
                   reduction_factor: float = 3):
    if name not in SCHEDULERS:
        raise ConfigError(f"unknown scheduler {name!r}; choose from {', '.join(SCHEDULERS)}")
    return SCHEDULERS[name](epochs, grace_period, reduction_factor)


def split_tune_config(config: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Tune's config of a trial (``params.json``) -> (grid point label, None if it names
    none; the values a searcher proposed beyond the model its label names)."""
    return config.get(POINT_KEY), {k: v for k, v in config.items()
                                   if k != POINT_KEY and k not in LABELLED_AXES}


_SHORT_NAMES = {"crop_size": "crop"}


def trial_label(config: dict[str, Any]) -> str:
    """A trial's name from Tune's config: the grid point's label plus the values a searcher
    proposed, so that Optuna's trials of one point tell apart (``unet/aug lr=0.0031 crop=64``);
    a grid search's trial is named by its point alone."""
    label, searched = split_tune_config(config)
    order = {key: i for i, key in enumerate(SEARCHED_KEYS)}  # one order, whatever the dict's
    keys = sorted(searched, key=lambda k: (order.get(k, len(order)), k))
    values = [f"{_SHORT_NAMES.get(k, k)}={searched[k]:.2g}" if isinstance(searched[k], float)
              else f"{_SHORT_NAMES.get(k, k)}={searched[k]}" for k in keys]
    return " ".join([str(label), *values])


def grid_space(labels: list[str]) -> dict[str, Any]:
    """Plain grid search: every point once."""
    from ray import tune

    return {POINT_KEY: tune.grid_search(labels)}


def optuna_searcher(space, seeds: list[dict[str, Any]], *, objectives: list[str],
                    budgets: dict[str, float], costs: dict[str, dict[str, Any]], seed: int = 0,
                    storage: str | None = None, study_name: str = "optuna"):
    """TPE over the conditional space (sweeps/search_space.py), seeded with ``seeds`` (every
    grid point at the sweep's defaults), optimising ``objectives`` within ``budgets``
    (constrained TPE: a trial over a budget ranks below every one within). ``storage``: an
    Optuna database URL where a new study ``study_name`` holds the seeds
    (sweeps/optuna_store.py); None keeps the study in the driver's memory."""
    import warnings

    import optuna
    from optuna.samplers import TPESampler

    from sweeps.objectives import OBJECTIVES
    from sweeps.optuna_searcher import SweepOptunaSearch

    with warnings.catch_warnings():  # multivariate/group TPE: "experimental" since Optuna 2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # group: one model per set of parameters asked together, as a conditional space needs;
        # constraints: the searcher sets each trial's budget excess (Trial.set_constraint)
        sampler = TPESampler(seed=seed, multivariate=True, group=True)
    searcher = dict(space=space, sampler=sampler, objectives=objectives, budgets=budgets,
                    costs=costs)
    if storage is None:
        return SweepOptunaSearch(points_to_evaluate=seeds, **searcher)
    directions = ["maximize" if OBJECTIVES[n].mode == "max" else "minimize" for n in objectives]
    study = optuna_store.start_study(storage, study_name, seeds, directions, list(objectives))
    return SweepOptunaSearch(storage=study, study_name=study_name, **searcher)


def crop_choices(default_crop: int, smallest_side: int) -> list[int]:
    """Crop sizes Optuna may propose: the defaults that fit the smallest image, plus the
    sweep's own crop size."""
    choices = {c for c in DEFAULT_CROP_CHOICES if c <= smallest_side} | {default_crop}
    return sorted(choices)
