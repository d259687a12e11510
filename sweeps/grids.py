"""Sweep grids: named grids and user YAML grids, expanded into labelled grid points.

A grid point fixes the model axes (``model``; ``backbone`` and ``aspp`` for DeepLab, ``arch`` and
``encoder`` for smp; ``augment``; or any other ``TrialConfig`` key); everything else comes from
the sweep's fixed settings. A fixed model axis (e.g. ``augment: false``) is put into every point,
so that it wins over the point's defaults and shows in its label. Each model keeps only the axes
that name its network (``registry.NAMED_BY``; UNet has none), filled with its own defaults where
unset, and duplicates are removed.

User YAML grid::

    axes:                 # the product of these lists
      model: [unet, deeplab, smp]
      backbone: [resnet18, mobilenet_v3_small]    # deeplab's
      aspp: [true]
      arch: [unet, deeplabv3plus]                  # smp's (smp's own names)
      encoder: [resnet34, tu-convnext_atto]        # smp's, or timm's as tu-NAME
      augment: [false, true]
      loss: [ce, weighted_ce]                      # segmodels/training/losses.py
    fixed:                # optional: settings shared by every point (CLI flags override)
      epochs: 20
    scheduler: asha       # optional: asha or fifo (default fifo: every point trains its
                          # full epochs; --scheduler overrides)
    objectives: [miou, cpu_ms]   # optional: what a search optimises (--objective overrides)
    budget: {cpu_ms: 30}         # optional: never train an architecture over it (--max-*)
    search:                      # optional, --search optuna: numeric settings to search too
      weight_decay: [1.0e-6, 1.0e-2, log]
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from segmodels.errors import ConfigError, SegsweepError
from segmodels.models import (
    COURSE_MODELS,
    NAMED_BY,
    list_backbones,
    model_label,
    naming_defaults,
    weights_of,
)
from segmodels.training import config, list_losses
from sweeps.objectives import check_budgets, check_objectives
from sweeps.search import SCHEDULERS

MODEL_AXES = ("model", "backbone", "aspp", "arch", "encoder", "augment")
TOP_LEVEL_KEYS = ("axes", "fixed", "scheduler", "seeds", "objectives", "budget", "search")
_NAMING_KEYS = {key for keys in NAMED_BY.values() for key in keys}


class GridError(SegsweepError, ValueError):
    """A grid that cannot run; the message names the file and key and lists valid values."""


def point_label(point: dict[str, Any]) -> str:
    """Unique, readable name of a grid point, e.g. ``deeplab/resnet18/aspp/aug``."""
    label = model_label(point["model"], point.get("backbone"), point.get("aspp"),
                        point.get("arch"), point.get("encoder"))
    label += "/aug" if point.get("augment", True) else "/no-aug"
    flat = {
        **{k: v for k, v in point.items() if k != "model_kwargs"},
        **point.get("model_kwargs", {}),
    }
    extra = [f"{k}={v}" for k, v in sorted(flat.items()) if k not in MODEL_AXES]
    return "/".join([label, *extra])


def _normalize(point: dict[str, Any]) -> dict[str, Any]:
    """The model's own naming axes only (its defaults where unset), augmentation on by default."""
    own = NAMED_BY[point["model"]]
    point = {k: v for k, v in point.items() if k not in _NAMING_KEYS or k in own}
    return {"augment": True, **naming_defaults(point["model"]), **point}


def expand(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Product of the axes as normalized, de-duplicated points, in a stable order."""
    keys = list(axes)
    points: dict[str, dict[str, Any]] = {}
    for values in itertools.product(*(axes[k] for k in keys)):
        point = _normalize(dict(zip(keys, values)))
        points.setdefault(point_label(point), point)
    return list(points.values())


def _homework() -> list[dict[str, Any]]:
    return [
        {"model": "unet", "augment": False},
        {"model": "unet", "augment": True},
        {"model": "deeplab", "backbone": "resnet18", "aspp": False, "augment": True},
        {"model": "deeplab", "backbone": "resnet18", "aspp": True, "augment": True},
        {"model": "deeplab", "backbone": "vgg11_bn", "aspp": True, "augment": True},
        {"model": "deeplab", "backbone": "mobilenet_v3_small", "aspp": True, "augment": True},
    ]


def _full() -> list[dict[str, Any]]:
    return expand(
        {
            "model": list(COURSE_MODELS),
            "backbone": list_backbones(),
            "aspp": [False, True],
            "augment": [False, True],
        }
    )


def _smoke() -> list[dict[str, Any]]:
    return [
        {
            "model": "unet",
            "augment": False,
            "model_kwargs": {"min_channels": 8, "max_channels": 32},
        },
        {"model": "deeplab", "backbone": "mobilenet_v3_small", "aspp": False, "augment": True},
    ]


def _zoo() -> list[dict[str, Any]]:
    smp = [("unet", "resnet34"), ("deeplabv3plus", "resnet34"), ("fpn", "resnet34"),
           ("segformer", "mit_b0")]
    course = [p for p in _homework() if p["augment"] and p.get("aspp", True)]
    return course + [{"model": "smp", "arch": arch, "encoder": encoder, "augment": True}
                     for arch, encoder in smp]


def _losses() -> list[dict[str, Any]]:
    return [{"model": "smp", "arch": "unet", "encoder": "resnet34", "augment": True,
             "loss": loss} for loss in list_losses()]


# Comparisons of models or losses: every point trains its full epochs unless --scheduler says.
_FULL_EPOCHS = {"zoo", "losses"}

NAMED_GRIDS: dict[str, tuple[Callable[[], list[dict[str, Any]]], str]] = {
    "homework": (
        _homework,
        "the course's six experiments (UNet +-aug; DeepLab-ResNet18 +-ASPP; "
        "DeepLab-VGG11_bn and -MobileNetV3-small with ASPP)",
    ),
    "full": (_full, "model x backbone x ASPP x augmentation (14 points)"),
    "smoke": (_smoke, "two tiny models, for tests and first contact"),
    "zoo": (_zoo, "the course's four models against smp's UNet, DeepLabV3+ and FPN on "
                  "ResNet34 and SegFormer on MiT-B0 (8 points, full epochs)"),
    "losses": (_losses, "cross-entropy, class-weighted CE, Dice, Focal, Lovasz and the last "
                        "three + CE on smp's UNet-ResNet34 (8 points, full epochs)"),
}


@dataclasses.dataclass
class Grid:
    name: str
    points: list[dict[str, Any]]
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""
    scheduler: str | None = None  # a grid file's own choice; None: the search's default
    seeds: int | None = None  # a grid file's replicates per point; None: one (or --seeds)
    objectives: list[str] | None = None  # a grid file's; None: mIoU alone (or --objective)
    budgets: dict[str, float] = dataclasses.field(default_factory=dict)  # objective -> limit
    search_ranges: dict[str, Any] = dataclasses.field(default_factory=dict)  # raw ``search:``

    @property
    def labels(self) -> list[str]:
        return [point_label(p) for p in self.points]

    def by_label(self) -> dict[str, dict[str, Any]]:
        return dict(zip(self.labels, self.points))


def grid_name(name_or_path: str) -> str:
    """A grid's name without loading it: the named grid's, or the YAML file's stem."""
    return name_or_path if name_or_path in NAMED_GRIDS else Path(name_or_path).stem


def load_grid(name_or_path: str) -> Grid:
    """A named grid, or a YAML file validated completely before anything runs."""
    if name_or_path in NAMED_GRIDS:
        points = [_normalize(p) for p in NAMED_GRIDS[name_or_path][0]()]
        scheduler = "fifo" if name_or_path in _FULL_EPOCHS else None
        return Grid(name_or_path, points, source=f"the built-in grid {name_or_path!r}",
                    scheduler=scheduler)
    path = Path(name_or_path)
    if path.suffix.lower() not in (".yaml", ".yml") and not path.exists():
        raise GridError(
            f"unknown grid {name_or_path!r}; named grids: "
            f"{', '.join(NAMED_GRIDS)}, or pass a .yaml file"
        )
    return load_grid_file(path)


class GridLoader(yaml.SafeLoader):
    """PyYAML's safe loader read the way YAML 1.2 reads numbers, and strict about keys.

    PyYAML follows YAML 1.1, where a float needs a dot: ``lr: 1e-3`` would be the text
    "1e-3" and be refused as "wrong type". And a key written twice would silently keep the
    last value; here it is an error naming both lines."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (lines {seen[key]} and {line}); "
                    "keep one", key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


GridLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
GridLoader.add_implicit_resolver(  # YAML 1.2 floats: 1e-3, 1E5, +2e4 (no dot needed)
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def load_grid_file(path: Path) -> Grid:
    if not path.is_file():
        raise GridError(f"{path}: grid file not found")
    try:
        raw = yaml.load(path.read_text(), Loader=GridLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise GridError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GridError(f"{path}: cannot be read ({exc})") from None
    if not isinstance(raw, dict):
        raise GridError(f"{path}: a grid must be a mapping with 'axes' (and optional 'fixed')")
    unknown = sorted(set(raw) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise GridError(
            f"{path}: unknown top-level key(s) {', '.join(unknown)}; valid keys: "
            f"{', '.join(TOP_LEVEL_KEYS)}"
        )
    seeds = raw.get("seeds")
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int)
                              or seeds < 1):
        raise GridError(f"{path}: seeds = {seeds!r} must be a whole number >= 1 (the training "
                        "runs of every point, one per seed)")
    objectives, budgets = raw.get("objectives"), raw.get("budget") or {}
    search_ranges = raw.get("search") or {}
    try:
        if objectives is not None:
            objectives = objectives if isinstance(objectives, list) else [objectives]
            check_objectives(objectives, "objectives:")
        if not isinstance(budgets, dict):
            raise ConfigError(f"budget = {budgets!r}: expected a mapping such as "
                              "{cpu_ms: 30, size_mb: 20}")
        check_budgets(budgets, "budget:")
        if not isinstance(search_ranges, dict):
            raise ConfigError(f"search = {search_ranges!r}: expected a mapping such as "
                              "{weight_decay: [1.0e-6, 1.0e-2, log]}")
    except ConfigError as exc:
        raise GridError(f"{path}: {exc}") from None
    scheduler = raw.get("scheduler")
    if scheduler is not None and scheduler not in SCHEDULERS:
        raise GridError(f"{path}: scheduler = {scheduler!r} is not valid; valid values: "
                        f"{', '.join(SCHEDULERS)}")
    axes, fixed = raw.get("axes"), raw.get("fixed") or {}
    if not isinstance(axes, dict) or not axes:
        raise GridError(
            f"{path}: 'axes' must map config keys to lists of values, "
            "e.g. axes: {model: [unet, deeplab]}"
        )
    if not isinstance(fixed, dict):
        raise GridError(f"{path}: 'fixed' must map config keys to single values")
    axes = {k: v if isinstance(v, list) else [v] for k, v in axes.items()}
    empty = [k for k, v in axes.items() if not v]
    if empty:  # the product with an empty list has no point at all
        raise GridError(f"{path}: axes.{empty[0]} is an empty list, which leaves the grid "
                        "without a single point; give it a value or remove it")
    for key, values in axes.items():
        for value in values:
            check_value(path, f"axes.{key}", key, value)
    for key, value in fixed.items():
        if key in axes:
            raise GridError(f"{path}: key {key!r} is both an axis and fixed; keep one")
        check_value(path, f"fixed.{key}", key, value)
    points = expand(_point_axes(axes, fixed))
    # Model settings now live in the points, where UNet drops backbone/aspp; left in the fixed
    # settings they would come back into UNet's config.
    shared = {k: v for k, v in fixed.items() if k not in MODEL_AXES}
    return Grid(grid_name(str(path)), points, shared, source=str(path), scheduler=scheduler,
                seeds=seeds, objectives=objectives, budgets=dict(budgets),
                search_ranges=dict(search_ranges))


def with_seeds(grid: Grid, seeds: int, first: int) -> Grid:
    """Every point once per seed ``first .. first + seeds - 1``, each its own trial with the seed
    in its label (``unet/aug/seed=1``): replicates the analysis pairs by seed. Seed-major, so
    the first replicate of every point is scheduled before any second one."""
    if seeds == 1:
        return grid
    varied = [label for label, p in grid.by_label().items() if "seed" in p]
    if varied:
        raise GridError(f"{grid.source or grid.name}: its points already set seed ({varied[0]}, "
                        "...: a seed axis or --point-set ...:seed=); set seeds one way, not "
                        "with --seeds/seeds: as well")
    points = [{**p, "seed": first + s} for s in range(seeds) for p in grid.points]
    return dataclasses.replace(grid, points=points)


def _point_axes(axes: dict[str, list[Any]], fixed: dict[str, Any]) -> dict[str, list[Any]]:
    """The axes plus fixed model settings as one-value axes. A point's own defaults (augment
    on; DeepLab-ResNet18 with ASPP) override fixed values when a trial's config is built, so
    a fixed ``augment: false`` must be in the point: there it trains and labels as set."""
    merged = {**axes, **{k: [v] for k, v in fixed.items() if k in MODEL_AXES}}
    merged.setdefault("model", ["deeplab"])
    return merged


def check_value(source: Path | str, where: str, key: str, value: Any) -> None:
    """One grid setting, checked by TrialConfig; the error names the file and the key."""
    try:
        config.check_value(key, value, where)
    except ConfigError as exc:
        raise GridError(f"{source}: {exc}") from None


def parse_point_setting(text: str) -> tuple[str, str, Any]:
    """``PATTERN:KEY=VALUE`` (``--point-set``) -> (glob over point labels, key, typed value)."""
    pattern, sep, assignment = text.partition(":")  # labels have no ':'; values may
    key, eq, raw = assignment.partition("=")
    if not sep or not eq or not pattern or not key:
        raise GridError(f"--point-set {text!r}: expected PATTERN:KEY=VALUE, e.g. "
                        "'deeplab/mobilenet_v3_small/*:crops_per_image=8'")
    key = key.strip().replace("-", "_")
    if key in MODEL_AXES:
        raise GridError(f"--point-set {text!r}: {key!r} names the model itself; put model "
                        "variants in a grid file's axes instead")
    try:
        value = config.parse_value(key, raw.strip())
    except ConfigError as exc:
        raise GridError(f"--point-set {text!r}: {exc}") from None
    return pattern.strip(), key, value


def apply_point_settings(grid: Grid, settings: list[str]) -> Grid:
    """Give matching grid points their own setting (e.g. more crops per epoch for a model that
    learns slowly); the setting then shows in their labels. Each pattern must match a point."""
    labels = grid.labels  # patterns match the labels --list-grids shows, not amended ones
    points = [dict(p) for p in grid.points]
    for text in settings:
        pattern, key, value = parse_point_setting(text)
        matched = [p for label, p in zip(labels, points) if fnmatch.fnmatchcase(label, pattern)]
        if not matched:
            raise GridError(f"--point-set {text!r}: {pattern!r} matches no point of grid "
                            f"{grid.name!r}; its points: {', '.join(grid.labels)}")
        for point in matched:
            point[key] = value
    amended = dataclasses.replace(grid, points=points)
    if len(set(amended.labels)) < len(points):
        raise GridError(f"--point-set {', '.join(settings)}: two grid points would become the "
                        f"same ({', '.join(amended.labels)}); set a key the grid does not vary")
    return amended


def scratch_point(point: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    """``--pretrained`` applies to the models that have pretrained weights
    (segmodels/models/pretrained.py); a point of another model gets ``pretrained=False``,
    which its label shows."""
    cfg = config.TrialConfig.from_dict(config.trial_settings(fixed, point))
    if cfg.pretrained and weights_of(cfg.model, **cfg.model_args()) is None:
        return {**point, "pretrained": False}
    return point


def scratch_where_no_weights(grid: Grid, fixed: dict[str, Any]) -> tuple[Grid, list[str]]:
    """``scratch_point`` for every grid point. Returns the grid and the labels of the points
    that now train from scratch."""
    points: dict[str, dict[str, Any]] = {}
    scratch = []
    for point in grid.points:
        adjusted = scratch_point(point, fixed)
        if adjusted is not point:
            scratch.append(point_label(adjusted))
        points.setdefault(point_label(adjusted), adjusted)  # UNet with and without: one point
    return dataclasses.replace(grid, points=list(points.values())), list(dict.fromkeys(scratch))
