"""Schedulers and searchers by name, and the Tune parameter space of a grid.

Ray's OptunaSearch refuses ``tune.grid_search`` values, so the grid enters the search space as
one categorical axis ``point`` (the grid point's label). Every point is seeded as a
``points_to_evaluate`` entry with the sweep's default lr and crop size, so the grid comparison is
always trained; Optuna's extra samples then propose point, lr and crop size together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

METRIC, MODE = "val_miou", "max"
DEFAULT_LR_RANGE = (1e-4, 1e-2)
DEFAULT_CROP_CHOICES = (128, 192, 256, 320)


def _asha(epochs: int, grace_period: int | None, reduction_factor: float) -> TrialScheduler:
    return ASHAScheduler(
        time_attr="epoch",
        max_t=epochs,
        grace_period=grace_period or max(1, epochs // 4),
        reduction_factor=reduction_factor,
    )


def _fifo(epochs: int, grace_period: int | None, reduction_factor: float) -> TrialScheduler:
    return FIFOScheduler()


SCHEDULERS: dict[str, Callable[[int, int | None, float], TrialScheduler]] = {
    "asha": _asha,
    "fifo": _fifo,
}
SEARCHES = ("grid", "optuna")


def make_scheduler(
    name: str, epochs: int, grace_period: int | None = None, reduction_factor: float = 3
) -> TrialScheduler:
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose from {', '.join(SCHEDULERS)}")
    return SCHEDULERS[name](epochs, grace_period, reduction_factor)


def grid_space(labels: list[str]) -> dict[str, Any]:
    """Plain grid search: every point once."""
    return {"point": tune.grid_search(labels)}


def optuna_space(
    labels: list[str], crop_choices: list[int], lr_range: tuple[float, float] = DEFAULT_LR_RANGE
) -> dict[str, Any]:
    return {
        "point": tune.choice(labels),
        "lr": tune.loguniform(*lr_range),
        "crop_size": tune.choice(crop_choices),
    }


SEARCHED_KEYS = ("lr", "crop_size")  # what Optuna proposes; a grid point may not fix them


def optuna_searcher(labels: list[str], default_lr: float, default_crop: int, seed: int = 0):
    """TPE seeded with every grid point at the sweep's defaults."""
    from optuna.samplers import TPESampler
    from ray.tune.search.optuna import OptunaSearch

    seeds = [{"point": label, "lr": default_lr, "crop_size": default_crop} for label in labels]
    return OptunaSearch(
        points_to_evaluate=seeds, sampler=TPESampler(seed=seed), metric=METRIC, mode=MODE
    )


def crop_choices(default_crop: int, smallest_side: int) -> list[int]:
    """Crop sizes Optuna may propose: the defaults that fit the smallest image, plus the
    sweep's own crop size."""
    choices = {c for c in DEFAULT_CROP_CHOICES if c <= smallest_side} | {default_crop}
    return sorted(choices)
