"""What ``--search optuna`` may propose: the model itself, from the grid's axes, as conditional
choices (Optuna's define-by-run style), plus lr, crop size and any numeric ranges a grid file
names under ``search:``.

The model axes are asked in the order a network is named: ``model`` first, then only the axes
that model has (``segmodels.models.NAMED_BY``: a backbone and ASPP for DeepLab, an architecture
and encoder for smp, nothing for UNet), then the axes every model has (augmentation, loss,
pretrained). Each axis offers the values the grid's points use, so the space spans the grid's
axes, not only its listed points: the homework grid's DeepLab-VGG11 without ASPP can be
proposed. An axis with one value is not asked (it is fixed, and Optuna's importance would be
noise). A proposal is returned to Tune as ``point`` (the grid label of that combination), so
the trainable, the trackers and the analysis resolve it as they resolve a grid point; the axis
values Optuna drew stay beside it in Tune's config for optuna-dashboard.

Pure Python: the property test draws thousands of proposals without Ray.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from segmodels.errors import ConfigError
from segmodels.models import NAMED_BY
from segmodels.training import TrialConfig, config
from sweeps.grids import Grid, expand, point_label
from sweeps.search import DEFAULT_LR_RANGE, LABELLED_AXES, POINT_KEY

MODEL_AXIS = "model"
SHARED_AXES = ("augment", "loss", "pretrained")  # axes every model has
SETTING_AXES = ("loss", "pretrained")  # shared axes a point may leave to the sweep's setting
SPACE_AXES = LABELLED_AXES  # model, each model's naming axes, then the shared ones
LOG = "log"  # a grid file's ``search: {key: [low, high, log]}``


@dataclass(frozen=True)
class NumericRange:
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def suggest(self, trial, name: str) -> float | int:
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass
class SearchSpace:
    """Callable as Ray's ``OptunaSearch(space=...)``: ``space(trial)`` asks its parameters and
    returns ``{"point": label}``. Pickles (Tune keeps it in the searcher's saved state)."""

    axes: dict[str, list[Any]]  # axis -> values offered (only axes with two or more)
    fixed_axes: dict[str, Any]  # axis -> its one value (not asked)
    points: dict[str, dict[str, Any]]  # label -> point: every combination the space proposes
    crop_choices: list[int]
    lr_range: tuple[float, float] = DEFAULT_LR_RANGE
    ranges: dict[str, NumericRange] = field(default_factory=dict)  # a grid file's search:
    shared: dict[str, Any] = field(default_factory=dict)  # shared axis -> the sweep's value
    _by_axes: dict[tuple, str] = field(default_factory=dict, repr=False)
    _axes_of_label: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def axes_of(self, model: str) -> list[str]:
        """The axes asked for ``model``, in the order they are asked."""
        own = [a for a in NAMED_BY[model] if a in self.axes]
        return own + [a for a in SHARED_AXES if a in self.axes]

    def __call__(self, trial) -> dict[str, str]:
        drawn = dict(self.fixed_axes)
        if MODEL_AXIS in self.axes:
            drawn[MODEL_AXIS] = trial.suggest_categorical(MODEL_AXIS, self.axes[MODEL_AXIS])
        for axis in self.axes_of(drawn[MODEL_AXIS]):
            drawn[axis] = trial.suggest_categorical(axis, self.axes[axis])
        trial.suggest_float("lr", *self.lr_range, log=True)
        trial.suggest_categorical("crop_size", self.crop_choices)
        for name, numeric in self.ranges.items():
            numeric.suggest(trial, name)
        return {POINT_KEY: self.label_of(drawn)}

    def label_of(self, drawn: Mapping[str, Any]) -> str:
        """The label of the point these axis values make (the grid's own point where the grid
        lists it, with any settings the grid gave that point)."""
        return self._by_axes[_axes_key(_own_axes(drawn, self.shared))]

    def seed(self, label: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters that make Optuna propose the grid point ``label`` with the values
        it trains with (``settings``: its resolved trial settings; a searched range's value is
        kept within the range): what a grid point is enqueued as, so every grid point is
        trained once at the sweep's own settings."""
        own = self._axes_of_label[label]
        asked = {MODEL_AXIS: own[MODEL_AXIS]} if MODEL_AXIS in self.axes else {}
        asked |= {a: own[a] for a in self.axes_of(own[MODEL_AXIS])}
        asked |= {"lr": settings["lr"], "crop_size": settings["crop_size"]}
        for name, numeric in self.ranges.items():
            value = min(max(settings[name], numeric.low), numeric.high)
            asked[name] = int(value) if numeric.integer else float(value)
        return asked

    def longest_epochs(self, epochs: int) -> int:
        """The most epochs a trial can train: ``epochs``, or a searched range's top."""
        top = self.ranges.get("epochs")
        return max(epochs, int(top.high)) if top else epochs


def _own_axes(point: Mapping[str, Any], shared: Mapping[str, Any]) -> dict[str, Any]:
    """The space's axes of a point: its model's own (defaults filled in, ``expand``
    normalises) and the shared ones (the sweep's value where the point sets none)."""
    normalised = expand({k: [v] for k, v in point.items() if k in SPACE_AXES})[0]
    own = {k: v for k, v in normalised.items() if k in SPACE_AXES}
    return {**{a: v for a, v in shared.items() if a not in own}, **own}


def _axes_key(axes: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in axes.items()))


def _axis_values(own_axes: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Each axis -> the values these points use, in first-seen order."""
    values: dict[str, list[Any]] = {}
    for axes in own_axes:
        for axis, value in axes.items():
            if value not in values.setdefault(axis, []):
                values[axis].append(value)
    return values


Adjust = Callable[[dict[str, Any]], dict[str, Any]]


def build_space(grid: Grid, crop_choices: list[int],
                ranges: Mapping[str, NumericRange] | None = None,
                fixed: Mapping[str, Any] | None = None, adjust: Adjust | None = None
                ) -> SearchSpace:
    """The conditional space of a grid: each axis offers the values the grid's points use
    (``fixed``: the sweep's fixed settings, whose loss and pretrained a point without its own
    has). ``adjust`` turns a point into the one that trains (``--pretrained``: scratch for
    models without weights). Two grid points the space cannot tell apart (they differ only in
    settings it does not search) are refused: only one of them could ever be proposed."""
    defaults = {**TrialConfig().to_dict(), **(fixed or {})}
    shared = {a: defaults[a] for a in SETTING_AXES}
    listed: dict[tuple, dict[str, Any]] = {}
    for point in grid.points:
        key = _axes_key(_own_axes(point, shared))
        if key in listed:
            raise ConfigError(
                f"grid points {point_label(listed[key])} and {point_label(point)} differ only "
                "in settings --search optuna does not propose, so it could propose only one of "
                "them: give the setting a range under search: in the grid file, make it a "
                "model axis, or compare them with --search grid")
        listed[key] = point
    own = [_own_axes(p, shared) for p in grid.points]
    return _space(_axis_values(own), listed, crop_choices, ranges, shared, adjust or dict)


def within_budget(space: SearchSpace, rejected: set[str]) -> SearchSpace:
    """The space without the axis values that only rejected (over-budget) models use: a
    model, backbone or encoder none of whose combinations fits is never asked for. A
    combination that is still over (ResNet18 fits without ASPP but not with it) stays: its
    trial reports the figures, never trains, and the constrained sampler learns from it."""
    feasible = [space._axes_of_label[label] for label in space.points if label not in rejected]
    if not feasible:
        raise ConfigError("every model the search could propose is over the budget")
    narrowed = dataclasses.replace(space, axes={}, fixed_axes={}, points={}, _by_axes={},
                                   _axes_of_label={})
    values = _axis_values(feasible)
    narrowed.axes = {a: v for a, v in values.items() if len(v) > 1}
    narrowed.fixed_axes = {a: v[0] for a, v in values.items() if len(v) == 1}
    for axes in _combinations(values, space.shared):
        label = space._by_axes[_axes_key(axes)]
        narrowed._by_axes[_axes_key(axes)] = label
        narrowed._axes_of_label[label] = axes
        narrowed.points[label] = space.points[label]
    return narrowed


def _combinations(values: dict[str, list[Any]], shared: Mapping[str, Any]
                  ) -> list[dict[str, Any]]:
    """Every model with every combination of its own and the shared axes' values."""
    found = []
    for model in values[MODEL_AXIS]:
        names = [a for a in (*NAMED_BY[model], *SHARED_AXES) if a in values]
        for combo in itertools.product(*(values[a] for a in names)):
            found.append(_own_axes({MODEL_AXIS: model, **dict(zip(names, combo))}, shared))
    return found


def _space(values: dict[str, list[Any]], listed: dict[tuple, dict[str, Any]],
           crop_choices: list[int], ranges: Mapping[str, NumericRange] | None,
           shared: dict[str, Any], adjust: Adjust) -> SearchSpace:
    space = SearchSpace({a: v for a, v in values.items() if len(v) > 1},
                        {a: v[0] for a, v in values.items() if len(v) == 1}, {},
                        sorted(crop_choices), ranges=dict(ranges or {}), shared=dict(shared))
    for axes in _combinations(values, shared):
        key = _axes_key(axes)
        # a combination the grid does not list: its axes, shared ones only where they differ
        # from the sweep's value (labels as short as the grid's)
        point = listed.get(key) or {a: v for a, v in axes.items()
                                    if a not in shared or v != shared[a]}
        point = adjust(dict(point))
        label = point_label(point)
        space.points.setdefault(label, point)
        space._by_axes[key] = label
        space._axes_of_label[label] = axes
    return space


def parse_ranges(raw: Mapping[str, Any], source: str) -> dict[str, NumericRange]:
    """A grid file's ``search: {weight_decay: [1e-6, 1e-2, log], epochs: [5, 20]}``: numeric
    TrialConfig settings Optuna proposes, between low and high (``log`` for a log scale)."""
    ranges = {}
    for key, spec in raw.items():
        where = f"{source}: search.{key}"
        if key not in config.FIELDS or key in ("lr", "crop_size", "seed"):
            raise ConfigError(f"{where}: not a numeric setting Optuna may search here (lr and "
                              "crop size are searched already; seeds are --seeds)")
        default = getattr(config.TrialConfig(), key)
        if isinstance(default, bool) or not isinstance(default, int | float):
            raise ConfigError(f"{where}: {key} is not a number; put choices in axes instead")
        integer = isinstance(default, int)
        if not isinstance(spec, list) or len(spec) not in (2, 3) or (
                len(spec) == 3 and spec[2] != LOG):
            raise ConfigError(f"{where}: expected [low, high] or [low, high, log], got {spec!r}")
        low, high = spec[0], spec[1]
        if any(isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x)
               for x in (low, high)) or not low < high:
            raise ConfigError(f"{where}: expected numbers low < high, got {spec[:2]!r}")
        log = len(spec) == 3
        if log and low <= 0:
            raise ConfigError(f"{where}: a log range needs low > 0, got {low!r}")
        for value in (low, high):
            config.check_value(key, int(value) if integer else float(value), where)
        ranges[key] = NumericRange(float(low), float(high), log, integer)
    return ranges


__all__ = ["SPACE_AXES", "NumericRange", "SearchSpace", "build_space", "parse_ranges",
           "within_budget"]
