"""Prepare a sweep: every check that can fail (grid, dataset, numbers, storage, name, model
options, pretrained weights) runs here, before Ray starts and before anything is written to
storage; a resumed sweep is re-validated against what it stored. ``sweeps.runner`` then runs
what this returns.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segmodels.data import (
    SYNTHETIC_DIR,
    DatasetError,
    SegmentationData,
    ensure_generated,
    listing_changes,
    load_dataset,
)
from segmodels.errors import ConfigError
from segmodels.models import create_model, fetch_all, weights_of
from segmodels.training import (
    NEEDS_CLASS_WEIGHTS,
    TrialConfig,
    checkpoint_bytes,
    class_weights,
    training_batch_size,
    trial_settings,
)
from sweeps import name_lock, objectives, ray_state, search, tracking
from sweeps.grids import (
    Grid,
    apply_point_settings,
    grid_name,
    load_grid,
    scratch_point,
    scratch_where_no_weights,
    with_seeds,
)
from sweeps.record import read_experiment_file, read_sweep_record
from sweeps.resume_repair import refill_missing_checkpoints, repair_result_files
from sweeps.search_space import SearchSpace, build_space, parse_ranges
from sweeps.settings import AUTO, LARGE_GRID, SweepError, SweepSettings
from sweeps.storage import DATA_FILES, SWEEP_FILE
from sweeps.storage_space import check_space


@dataclass
class PreparedSweep:
    """A sweep checked and resolved: its settings (name, data and scheduler filled in), grid,
    fixed trial settings and decoded data."""

    settings: SweepSettings
    grid: Grid
    fixed: dict[str, Any]
    data: SegmentationData
    scheduler_reason: str = ""  # why settings.scheduler: shown at start and in the report
    cpu_inference: dict[str, dict[str, Any]] = field(default_factory=dict)  # after the sweep
    gpu_inference: dict[str, dict[str, Any]] = field(default_factory=dict)  # when trials had GPUs
    from_scratch: list[str] = field(default_factory=list)  # --pretrained, but no weights exist
    notes: list[str] = field(default_factory=list)  # said at start (e.g. a stale claim taken)
    checkpoints: dict[str, int] = field(default_factory=dict)  # label -> bytes of a checkpoint
    space: SearchSpace | None = None  # what a new --search optuna sweep proposes
    # label -> point of every model the search may propose beyond the grid (recorded, so a
    # resume, the trackers and the report resolve them as grid points)
    search_points: dict[str, dict[str, Any]] = field(default_factory=dict)

    @functools.cached_property
    def points(self) -> dict[str, dict[str, Any]]:
        """Label -> point of every trial the sweep may run (the grid's, then what the search
        may propose), made once: a lookup per trial stays linear in the grid's size."""
        return {**self.search_points, **self.grid.by_label()}

    def trial_config(self, label: str, searched: dict[str, Any] | None = None) -> TrialConfig:
        return TrialConfig.from_dict(trial_settings(self.fixed, self.points[label], searched))


def longest_epochs(configs: Iterable[TrialConfig], space: SearchSpace | None) -> int:
    """The most epochs a trial of the sweep can train (a searched epochs range's top included):
    ASHA's horizon, and the bound of ``--grace-period``."""
    longest = max(cfg.epochs for cfg in configs)
    return longest if space is None else space.longest_epochs(longest)


def network_without_weights(cfg: TrialConfig):
    """The trial's network built on the meta device (no memory, no download); one the meta
    device cannot build (smp's MiT encoders call ``.item()``) is built on the CPU."""
    import torch

    args = {**cfg.model_args(), "pretrained": None}
    try:
        with torch.device("meta"):
            return create_model(cfg.model, **args)
    except RuntimeError:
        return create_model(cfg.model, **args)


def _check_model(cfg: TrialConfig) -> int:
    """Build the model without weights on the meta device (no memory): a bad model option or an
    architecture/encoder pair smp cannot build fails here, before Ray starts and before any
    download, not in every trial. A model the meta device cannot build (smp's MiT encoders
    call ``.item()``) is built on the CPU, where a real error recurs. Returns the bytes of
    one checkpoint of it (for the disk check)."""
    import torch

    model = network_without_weights(cfg)
    if cfg.batch_size == 1:  # an explicit choice: fine for UNet, fatal for ASPP's pooling
        device = next(model.parameters()).device
        try:
            model.train()(torch.zeros(1, 3, cfg.crop_size, cfg.crop_size, device=device))
        except ValueError as exc:
            if "Expected more than 1 value per channel" not in str(exc):
                raise
            raise ConfigError("batch_size 1 cannot train this model: a BatchNorm layer (e.g. "
                              "ASPP's image pooling) sees a single value per channel; use "
                              "--batch-size 2 or more") from None
    return checkpoint_bytes(model, cfg.optimizer)


def _fixed_config(grid: Grid, overrides: dict[str, Any]) -> dict[str, Any]:
    """The grid's fixed values <- CLI flags (None flags are unset)."""
    return {**grid.fixed, **{k: v for k, v in overrides.items() if v is not None}}


def _load_data(settings: SweepSettings) -> SegmentationData:
    """The decoded dataset; a folder or file the system will not let us read is a
    DatasetError naming it, like every other problem of the data."""
    root = settings.data or SYNTHETIC_DIR.expanduser()
    try:
        if settings.data is None:
            root = ensure_generated(root)
        return load_dataset(root, image_size=settings.image_size)
    except OSError as exc:
        where = exc.filename or root
        why = exc.strerror or str(exc)
        hint = " (the synthetic data's cache: set $SEGSWEEP_CACHE to a writable folder)" \
            if settings.data is None else ""
        raise DatasetError(f"{where}: cannot be read or written: {why}{hint}") from exc


def _check_storage(settings: SweepSettings) -> None:
    if settings.remote_storage:  # object storage: no folder to probe, but a record may exist
        if not settings.resume and not settings.overwrite and read_sweep_record(settings):
            raise SweepError(f"a sweep named {settings.name!r} already exists in "
                             f"{settings.storage}; use --resume to continue it, --overwrite to "
                             "replace it, or another --name")
        return
    path = Path(settings.storage_path())
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise SweepError(f"--storage {settings.storage}: {probe} is not a writable folder; "
                         "choose a folder you can write to")


def _check_name_free(settings: SweepSettings) -> bool:
    """A new sweep's folder is empty or absent (run under the name's claim: no race). True
    when it holds a sweep that stopped before Tune's first save: nothing trained, so the same
    command starts it afresh, without --overwrite."""
    if settings.remote_storage:
        return False
    exp = Path(settings.experiment_path())
    path = Path(settings.storage_path())
    if settings.resume or not exp.exists() or not any(exp.iterdir()):
        return False
    if not (exp / SWEEP_FILE).is_file():  # --overwrite deletes only what a sweep wrote
        raise SweepError(f"--name {settings.name}: {exp} holds files but no sweep record "
                         f"({SWEEP_FILE}), so segsweep will neither write into it nor delete "
                         "it (not even with --overwrite); choose another --name or --storage")
    if not ray_state.tune_saved(exp):
        return True
    if not settings.overwrite:
        raise SweepError(f"a sweep named {settings.name!r} already exists in {path}; use "
                         "--resume to continue it, --overwrite to replace it, or another --name")
    return False


def check_name(name: str) -> None:
    """A sweep's name is one plain folder name: ``--overwrite`` deletes the folder it names, so
    a path (``..``, ``a/b``, ``.``) must never reach it."""
    bad = (not name or name in (".", "..") or any(sep in name for sep in ("/", "\\", os.sep))
           or any(ord(c) < 32 for c in name) or name != name.strip())
    if bad:
        raise SweepError(f"--name {name!r}: a sweep's name is a plain folder name (no path "
                         "separators, not '.' or '..', no control characters or surrounding "
                         "spaces); it is created inside --storage, so give the folder there")


def _check_same_data(settings: SweepSettings, data: SegmentationData) -> None:
    """A resume trains on the files the sweep started with: any file added, removed or changed
    since is refused, named. The synthetic data is compared by size only (it is regenerated,
    byte for byte, when its folder was deleted). Sweeps stored before the listing: unchecked."""
    recorded = read_experiment_file(settings, DATA_FILES)
    if recorded is None:
        return
    before = json.loads(recorded)
    changes = [f"{split}: {change}" for split in ("train", "val")
               for change in listing_changes(before.get(split, {}), data.files.get(split, {}),
                                             times=not data.synthetic)]
    if changes:
        raise SweepError(f"--resume: dataset {data.root} changed since sweep {settings.name!r} "
                         f"started ({'; '.join(changes)}); a resume trains on the data it "
                         "started with: restore it, or start a new sweep under another --name")


def _check_tune_state(settings: SweepSettings) -> None:
    """A resume needs Tune's saved state whole: from a damaged one (cut short by a full disk
    that segsweep could not repair) Tune silently starts every trial over."""
    if settings.remote_storage:
        return
    try:
        ray_state.check_readable(Path(settings.experiment_path()))
    except ray_state.RayStateError as exc:
        raise SweepError(f"--resume: {exc}; from it Ray Tune would start every trial of sweep "
                         f"{settings.name!r} over. Put back a whole copy of that file (a backup, "
                         "or Ray's staged copy under /tmp/ray/session_*/artifacts/*/"
                         f"{settings.name}/driver_artifacts/), or start afresh with --overwrite"
                         ) from None


def _repair_stored_files(settings: SweepSettings) -> None:
    """What a killed driver can leave inconsistent (sweeps/resume_repair.py), fixed before
    Ray reads it; each repair is named on stderr."""
    if settings.remote_storage:
        return
    experiment = Path(settings.experiment_path())
    for note in repair_result_files(experiment) + refill_missing_checkpoints(experiment):
        print(f"note: {note}", file=sys.stderr)


def _stored_sweep(settings: SweepSettings
                  ) -> tuple[SweepSettings, Grid, dict[str, Any], str, dict[str, Any]]:
    """A resumed sweep continues exactly as it was started: its grid, fixed settings, data and
    scheduler come from its record; flags that would change them are refused, not silently
    mixed in. Returns (settings as resumed, grid, fixed settings, why that scheduler, the
    points its search may propose beyond the grid)."""
    settings = dataclasses.replace(settings, name=settings.name or grid_name(settings.grid))
    record = read_sweep_record(settings)
    if record is None:
        raise SweepError(f"--resume: no sweep named {settings.name!r} in {settings.storage} "
                         f"(no {settings.experiment_path()}/{SWEEP_FILE}); check --name and "
                         "--storage")
    if not settings.remote_storage and not ray_state.tune_saved(settings.experiment_path()):
        raise SweepError(f"--resume: sweep {settings.name!r} stopped before its first save (no "
                         f"Ray Tune state in {settings.experiment_path()}), so nothing trained "
                         "and there is nothing to resume; run the same command without "
                         "--resume: it starts the sweep afresh")
    _check_tune_state(settings)
    # Every setting as the sweep started: its fixed values over the defaults of the code that
    # started it (recorded), so a default changed since applies to no resumed epoch.
    known = {f.name for f in dataclasses.fields(TrialConfig)}  # a field removed since: dropped
    recorded = {k: v for k, v in (record.get("trial_defaults") or {}).items() if k in known}
    fixed = {**recorded, **record["fixed"]}
    unknown = object()  # a sweep recorded before its defaults were: a given value cannot match
    changed = {k: v for k, v in settings.overrides.items()
               if v is not None and fixed.get(k, unknown) != v}
    if changed:
        flags = ", ".join(f"--{k.replace('_', '-')} {v} (sweep has "
                          f"{fixed[k] if k in fixed else 'its unrecorded default'})"
                          for k, v in changed.items())
        raise SweepError(f"--resume continues sweep {settings.name!r} as it was started; "
                         f"drop {flags}, or start a new sweep under another --name")
    stored = record.get("settings", {})
    scheduler = stored.get("scheduler") or "asha"  # records before FIFO became the default
    if settings.scheduler is not None and settings.scheduler != scheduler:
        raise SweepError(f"--resume continues sweep {settings.name!r} with its own scheduler "
                         f"({scheduler}); drop --scheduler {settings.scheduler}")
    stored_root = record["data"]["root"]
    if settings.data is not None and Path(settings.data).resolve() != Path(stored_root).resolve():
        raise SweepError(f"--resume: sweep {settings.name!r} was trained on {stored_root}, "
                         f"not --data {settings.data}")
    size = record["data"].get("image_size")  # [W, H], or None: decoded as stored
    size = tuple(size) if size else None
    if settings.image_size is not None and tuple(settings.image_size) != size:
        raise SweepError(f"--resume: sweep {settings.name!r} was loaded at --image-size "
                         f"{'x'.join(map(str, size)) if size else '(none: as stored)'}; drop "
                         "--image-size")
    default = Path(stored_root).resolve() == SYNTHETIC_DIR.expanduser().resolve()
    settings = dataclasses.replace(
        settings, scheduler=scheduler, image_size=size,
        data=None if default else stored_root)  # None: regenerated if it was deleted
    trackers = stored.get("trackers", [])
    if settings.trackers and set(settings.trackers) != set(trackers):
        raise SweepError(f"--resume continues sweep {settings.name!r} with its own trackers "
                         f"({', '.join(trackers) or 'none'}); drop --tracker")
    artifacts = stored.get("tracker_artifacts", False)  # older sweeps' trackers kept none
    if not settings.tracker_artifacts and artifacts:
        raise SweepError(f"--resume continues sweep {settings.name!r} as its trackers were "
                         "started (with checkpoint artifacts); drop --no-tracker-artifacts")
    num_samples = int(stored.get("num_samples") or 0)
    if settings.num_samples is not None and settings.num_samples != num_samples:
        raise SweepError(f"--resume continues sweep {settings.name!r} with its own "
                         f"--num-samples {num_samples}; drop --num-samples "
                         f"{settings.num_samples}")
    seeds = int(stored.get("seeds") or 1)
    if settings.seeds is not None and settings.seeds != seeds:
        raise SweepError(f"--resume continues sweep {settings.name!r} with its own --seeds "
                         f"{seeds}; drop --seeds {settings.seeds}")
    goals = stored.get("objectives") or list(objectives.DEFAULT_OBJECTIVES)
    if settings.objectives is not None and list(settings.objectives) != list(goals):
        raise SweepError(f"--resume continues sweep {settings.name!r} with its own objectives "
                         f"({', '.join(goals)}); drop --objective")
    budgets = stored.get("budgets") or {}
    if settings.budgets and settings.budgets != budgets:
        raise SweepError(f"--resume continues sweep {settings.name!r} with its own budgets "
                         f"({budgets or 'none'}); drop the --max-* flags")
    settings = dataclasses.replace(settings, trackers=trackers, num_samples=num_samples,
                                   search=stored.get("search", settings.search), seeds=seeds,
                                   objectives=goals, budgets=budgets,
                                   tracker_artifacts=artifacts)
    reason = f"the sweep's own ({record.get('scheduler_reason') or 'as it was started'})"
    grid = Grid(record["grid"], list(record["points"].values()), source=record["grid_source"])
    return settings, grid, fixed, reason, dict(record.get("search_points") or {})


def prepare(settings: SweepSettings) -> PreparedSweep:
    """All checks that need no Ray; raises SegsweepError subclasses (SweepError, GridError,
    DatasetError, ConfigError) naming what to change. Cheap checks first, downloads last, and a
    resume repairs its stored files only once every check has passed. ``settings`` is left as
    given: the returned sweep holds the resolved copy (name, data, scheduler, samples)."""
    _check_flags(settings)
    if settings.name is not None:
        check_name(settings.name)  # before anything reads or deletes the folder it names
    if settings.resume:
        settings, grid, fixed, reason, search_points = _stored_sweep(settings)
        ranges = {}
    else:
        grid = apply_point_settings(load_grid(settings.grid), settings.point_settings)
        fixed = _fixed_config(grid, settings.overrides)
        seeds = settings.seeds or grid.seeds or 1
        if seeds > 1 and settings.search != "grid":
            raise SweepError(f"--seeds {seeds} with --search {settings.search}: the searcher "
                             "would learn from single-seed scores of replicated points; search "
                             "with one seed, then re-run the points it found with --seeds")
        grid = with_seeds(grid, seeds, TrialConfig.from_dict(fixed).seed)
        if len(grid.points) > LARGE_GRID and not settings.large_grid:
            raise SweepError(f"grid {grid.name!r} has {len(grid.points):,} trials (points x "
                             f"seeds), over {LARGE_GRID:,}: check its axes, then pass "
                             "--large-grid to confirm")
        goals, budgets, ranges = _objectives(settings, grid)
        multi = objectives.is_multi_objective(goals)
        scheduler, reason = search.resolve_scheduler(settings.search, settings.scheduler,
                                                     grid.scheduler, grid.source, multi)
        if multi and scheduler == "asha":
            raise SweepError(f"{'--scheduler asha' if settings.scheduler else grid.source} "
                             f"with objectives {', '.join(goals)}: {search.ASHA_RANKS_ONE}; "
                             "use --scheduler fifo (the default with several objectives)")
        settings = dataclasses.replace(settings, name=settings.name or grid.name,
                                       scheduler=scheduler, num_samples=settings.num_samples or 0,
                                       seeds=seeds, objectives=goals, budgets=budgets)
        search_points = {}
    _check_gpu_costs(settings)
    check_name(settings.name)
    tracking.check_trackers(settings.trackers)
    checkpoints = _check_points(settings, grid, _point_configs(grid, fixed))
    space = None
    if settings.search == "optuna" and not settings.resume:
        # crop choices are narrowed to the data once it is loaded (below)
        try:
            space = build_space(grid, [TrialConfig.from_dict(fixed).crop_size], ranges, fixed,
                                adjust=lambda point: scratch_point(point, fixed))
        except ConfigError as exc:
            raise SweepError(f"{grid.source or grid.name}: {exc}") from None
    grid, scratch = scratch_where_no_weights(grid, fixed)
    if space is not None:
        search_points = {k: p for k, p in space.points.items() if k not in grid.by_label()}
        beyond = Grid("search", list(search_points.values()))
        searchable = _check_points(settings, beyond, _point_configs(beyond, fixed),
                                   what="the search's combination")
    else:
        searchable = {}
    everything = Grid(grid.name, [*grid.points, *search_points.values()])
    configs = _point_configs(everything, fixed)  # as they train: --pretrained only where
    # weights exist
    longest = longest_epochs(configs.values(), space)
    if settings.scheduler == "asha" and (settings.grace_period or 0) > longest:
        raise SweepError(f"--grace-period {settings.grace_period} is beyond the sweep's longest "
                         f"training ({longest} epochs): ASHA could never stop a trial; use "
                         f"--grace-period <= {longest}")
    _check_storage(settings)
    # One checkpoint per trial: the grid's, then one of the largest per searched sample.
    check_space(settings, list(checkpoints.values())
                + [max([*checkpoints.values(), *searchable.values()])]
                * (settings.num_samples or 0))
    checkpoints |= searchable
    held = name_lock.holds(settings)
    claimed = name_lock.claim(settings)  # before the "already exists" check: no race after it
    notes = [claimed] if claimed else []
    try:
        if _check_name_free(settings):
            settings = dataclasses.replace(settings, overwrite=True)  # the folder is its own
            notes.append(f"the sweep named {settings.name!r} had stopped before its first save "
                         "(nothing trained): started afresh")
        data = _load_data(settings)
        _check_training_sets(configs, TrialConfig.from_dict(fixed).crop_size, data)
        if space is not None:
            space.crop_choices = search.crop_choices(TrialConfig.from_dict(fixed).crop_size,
                                                     data.smallest_side)
        fetch_all(w for cfg in configs.values() if cfg.pretrained
                  and (w := weights_of(cfg.model, **cfg.model_args())) is not None)
    except BaseException:
        if not held:  # a refused sweep leaves nothing behind, its claim included
            name_lock.release(name_lock.lock_path(settings))
        raise
    if "class_weights" not in fixed and any(c.loss in NEEDS_CLASS_WEIGHTS
                                            for c in configs.values()):
        # Once per sweep, from the training split; recorded with the sweep, so a resume keeps them.
        fixed = {**fixed, "class_weights": class_weights(data.train.masks, len(data.class_names))}
    if settings.resume:
        _check_same_data(settings, data)
        _repair_stored_files(settings)
    return PreparedSweep(settings, grid, fixed, data, scheduler_reason=reason,
                         from_scratch=scratch, notes=notes, checkpoints=checkpoints,
                         space=space, search_points=search_points)


def _objectives(settings: SweepSettings, grid: Grid
                ) -> tuple[list[str], dict[str, float], dict[str, Any]]:
    """(objectives, budgets, searched numeric ranges) of a new sweep: the flags over the grid
    file's, checked."""
    goals = list(settings.objectives or grid.objectives or objectives.DEFAULT_OBJECTIVES)
    budgets = {**grid.budgets, **settings.budgets}
    try:
        objectives.check_objectives(goals)
        objectives.check_budgets(budgets, "--max-*")
        ranges = parse_ranges(grid.search_ranges, grid.source)
    except ConfigError as exc:
        raise SweepError(str(exc)) from None
    if ranges and settings.search != "optuna":
        raise SweepError(f"{grid.source}: search: names ranges for --search optuna to propose; "
                         f"add --search optuna, or remove search:")
    return goals, budgets, ranges


def _check_gpu_costs(settings: SweepSettings) -> None:
    """GPU latency is measured on a GPU: refused on a local Ray without one (a cluster's
    GPUs are checked once Ray has started, sweeps/runner.py)."""
    wants = "gpu_ms" in (settings.objectives or []) or "gpu_ms" in settings.budgets
    if wants and settings.address is None:
        import torch

        if not torch.cuda.is_available():
            raise SweepError("--objective gpu_ms / --max-gpu-ms: this machine has no CUDA GPU "
                             "to time the architectures on; use cpu_ms, or run on a machine "
                             "(or --address a cluster) with one")


def _check_flags(settings: SweepSettings) -> None:
    """The sweep-level flags on their own."""
    if settings.search not in search.SEARCHES:
        raise SweepError(f"--search {settings.search!r}: choose from {', '.join(search.SEARCHES)}")
    if settings.scheduler is not None and settings.scheduler not in search.SCHEDULERS:
        raise SweepError(f"--scheduler {settings.scheduler!r}: choose from "
                         f"{', '.join(search.SCHEDULERS)}")
    if settings.seeds is not None and settings.seeds < 1:
        raise SweepError(f"--seeds must be >= 1, got {settings.seeds}")
    if settings.num_samples is not None and settings.num_samples < 0:
        raise SweepError(f"--num-samples must be >= 0, got {settings.num_samples}")
    if settings.reduction_factor is not None and not settings.reduction_factor > 1:
        raise SweepError(f"--reduction-factor must be > 1 (ASHA keeps 1/factor of the trials "
                         f"at each rung), got {settings.reduction_factor}")
    if settings.grace_period is not None and settings.grace_period < 1:
        raise SweepError(f"--grace-period must be >= 1 epoch, got {settings.grace_period}")
    if settings.num_samples and settings.search == "grid" and not settings.resume:
        raise SweepError(f"--num-samples {settings.num_samples} adds trials a searcher "
                         "proposes; a grid sweep has none: add --search optuna, or drop it")
    for flag in ("cpus_per_trial", "gpus_per_trial"):
        value = getattr(settings, flag)
        if value not in (None, AUTO) and value < 0 or (flag == "cpus_per_trial" and value == 0):
            raise SweepError(f"--{flag.replace('_', '-')} must be > 0, got {value}")
    if settings.resume and settings.point_settings:
        raise SweepError("--resume continues a sweep with the points it was started with; "
                         "drop --point-set")


def _point_configs(grid: Grid, fixed: dict[str, Any]) -> dict[str, TrialConfig]:
    """label -> the point's trial configuration; a bad value is named with its point."""
    configs = {}
    for label, point in grid.by_label().items():
        try:
            configs[label] = TrialConfig.from_dict(trial_settings(fixed, point))
        except ConfigError as exc:
            raise SweepError(f"grid point {label}: {exc}") from None
    return configs


def _check_points(settings: SweepSettings, grid: Grid, configs: dict[str, TrialConfig],
                  what: str = "grid point") -> dict[str, int]:
    """Every grid point builds (on the meta device) and leaves the searched keys to Optuna.
    A network is built once however many points share it (a 10,000-point grid over lr and
    weight decay builds one UNet, not 10,000). Returns label -> bytes of one checkpoint."""
    built: dict[tuple, int] = {}
    checkpoints: dict[str, int] = {}
    for label, point in grid.by_label().items():
        cfg = configs[label]
        key = (cfg.network_key(), cfg.optimizer, cfg.batch_size == 1 and cfg.crop_size)
        try:
            if key not in built:
                built[key] = _check_model(cfg)
            checkpoints[label] = built[key]
        except ConfigError as exc:
            hint = ("" if what == "grid point" else "; the search combines the grid's axes: "
                    "narrow them, or search a grid file whose axes all combine")
            raise SweepError(f"{what} {label}: {exc}{hint}") from None
        searched = sorted(set(point) & set(search.SEARCHED_KEYS))
        if settings.search == "optuna" and searched:
            raise SweepError(f"grid point {label} sets {', '.join(searched)}, which --search "
                             "optuna proposes itself; drop it from the point or search the grid")
    return checkpoints


MIN_TRAINING_SIDE = 16  # px: a smaller image cannot give a crop any model here trains on


def _check_training_sets(configs: dict[str, TrialConfig], crop: int,
                         data: SegmentationData) -> None:
    """Crops fit the smallest image; no batch of one crop; a training set smaller than one
    batch trains in one smaller batch, said here."""
    if not len(data.train):
        return
    i = min(range(len(data.train)), key=lambda k: min(data.train.images[k].shape[:2]))
    height, width = data.train.images[i].shape[:2]
    side, where = min(height, width), f"train image {data.train.names[i]} in {data.root}"
    if side < MIN_TRAINING_SIDE:
        raise SweepError(f"{where} is {width}x{height} px, too small to train on (under "
                         f"{MIN_TRAINING_SIDE} px a side); remove it with its mask")
    for label, size in [("", crop), *((label, cfg.crop_size) for label, cfg in configs.items())]:
        if size > side:
            flag = f"grid point {label}: crop_size {size}" if label else f"--crop-size {size}"
            raise SweepError(f"{flag} is larger than the smallest training image side ({side} "
                             f"px, {where}); use a crop size <= {side}")
    notes: list[str] = []
    for label, cfg in configs.items():
        try:
            _, note = training_batch_size(len(data.train), cfg)
        except ConfigError as exc:
            raise SweepError(f"grid point {label}: {exc}") from None
        if note and note not in notes:
            notes.append(note)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


