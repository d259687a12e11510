"""Run a sweep with Ray Tune: validate everything, start or join Ray, fit, summarize.

Order matters for users: every check that can fail (grid, dataset, numbers, storage, name)
runs before Ray starts and before anything is written to storage.
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segmodels.batches import training_batch_size
from segmodels.config import TrialConfig, trial_settings
from segmodels.data import DatasetError, SegmentationData, Split, load_dataset
from segmodels.errors import ConfigError
from segmodels.losses import NEEDS_CLASS_WEIGHTS, class_weights
from segmodels.pretrained import fetch_all, weights_of
from segmodels.registry import create_model
from segmodels.synthetic import SYNTHETIC_DIR, ensure_generated
from sweeps import optuna_store, search, tracking
from sweeps.cluster_checks import storage_warning
from sweeps.grids import (
    Grid,
    apply_point_settings,
    grid_name,
    load_grid,
    scratch_where_no_weights,
)
from sweeps.inference_pass import missing, time_architectures, time_architectures_on_a_gpu
from sweeps.record import (
    read_experiment_file,
    read_sweep_record,
    write_experiment_file,
    write_sweep_record,
)
from sweeps.resources import (
    cluster_capacity,
    describe_resources,
    resources_per_trial,
    reuse_trial_actors,
    start_ray,
    trial_request,
)
from sweeps.resume_repair import refill_missing_checkpoints, repair_result_files
from sweeps.settings import AUTO, SweepError, SweepSettings
from sweeps.storage import INFERENCE_FILE, INFERENCE_GPU_FILE, SWEEP_FILE
from sweeps.trainable import run_trial


class SweepInterrupted(KeyboardInterrupt):
    """Tune stopped before every trial ended (first Ctrl-C): its state is saved."""

    def __init__(self, settings: SweepSettings):
        super().__init__(f"sweep {settings.name!r} interrupted")
        self.settings = settings


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

    def trial_config(self, label: str, searched: dict[str, Any] | None = None) -> TrialConfig:
        return TrialConfig.from_dict(trial_settings(self.fixed, self.grid.by_label()[label],
                                                    searched))


def _check_model(cfg: TrialConfig) -> None:
    """Build the model without weights on the meta device (no memory): a bad model option or an
    architecture/encoder pair smp cannot build fails here, before Ray starts and before any
    download, not in every trial. A model the meta device cannot build (smp's MiT encoders
    call ``.item()``) is built on the CPU, where a real error recurs."""
    import torch

    args = {**cfg.model_args(), "pretrained": None}
    try:
        with torch.device("meta"):
            model = create_model(cfg.model, **args)
    except RuntimeError:
        model = create_model(cfg.model, **args)
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
    exp = Path(settings.experiment_path())
    if not settings.resume and exp.exists() and any(exp.iterdir()) and not settings.overwrite:
        raise SweepError(f"a sweep named {settings.name!r} already exists in {path}; use "
                         "--resume to continue it, --overwrite to replace it, or another --name")


def _repair_stored_files(settings: SweepSettings) -> None:
    """What a killed driver can leave inconsistent (sweeps/resume_repair.py), fixed before
    Ray reads it; each repair is named on stderr."""
    if settings.remote_storage:
        return
    experiment = Path(settings.experiment_path())
    for note in repair_result_files(experiment) + refill_missing_checkpoints(experiment):
        print(f"note: {note}", file=sys.stderr)


def _stored_sweep(settings: SweepSettings) -> tuple[SweepSettings, Grid, dict[str, Any], str]:
    """A resumed sweep continues exactly as it was started: its grid, fixed settings, data and
    scheduler come from its record; flags that would change them are refused, not silently
    mixed in. Returns (settings as resumed, grid, fixed settings, why that scheduler)."""
    settings = dataclasses.replace(settings, name=settings.name or grid_name(settings.grid))
    record = read_sweep_record(settings)
    if record is None:
        raise SweepError(f"--resume: no sweep named {settings.name!r} in {settings.storage} "
                         f"(no {settings.experiment_path()}/{SWEEP_FILE}); check --name and "
                         "--storage")
    fixed = record["fixed"]
    changed = {k: v for k, v in settings.overrides.items()
               if v is not None and fixed.get(k, v) != v}
    if changed:
        flags = ", ".join(f"--{k.replace('_', '-')} {v} (sweep has {fixed[k]})"
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
    num_samples = int(stored.get("num_samples") or 0)
    if settings.num_samples is not None and settings.num_samples != num_samples:
        raise SweepError(f"--resume continues sweep {settings.name!r} with its own "
                         f"--num-samples {num_samples}; drop --num-samples "
                         f"{settings.num_samples}")
    settings = dataclasses.replace(settings, trackers=trackers, num_samples=num_samples,
                                   search=stored.get("search", settings.search))
    reason = f"the sweep's own ({record.get('scheduler_reason') or 'as it was started'})"
    grid = Grid(record["grid"], list(record["points"].values()), source=record["grid_source"])
    return settings, grid, fixed, reason


def prepare(settings: SweepSettings) -> PreparedSweep:
    """All checks that need no Ray; raises SegsweepError subclasses (SweepError, GridError,
    DatasetError, ConfigError) naming what to change. Cheap checks first, downloads last, and a
    resume repairs its stored files only once every check has passed. ``settings`` is left as
    given: the returned sweep holds the resolved copy (name, data, scheduler, samples)."""
    _check_flags(settings)
    if settings.resume:
        settings, grid, fixed, reason = _stored_sweep(settings)
    else:
        grid = apply_point_settings(load_grid(settings.grid), settings.point_settings)
        fixed = _fixed_config(grid, settings.overrides)
        scheduler, reason = search.resolve_scheduler(settings.search, settings.scheduler,
                                                     grid.scheduler, grid.source)
        settings = dataclasses.replace(settings, name=settings.name or grid.name,
                                       scheduler=scheduler, num_samples=settings.num_samples or 0)
    tracking.check_trackers(settings.trackers)
    _check_points(settings, grid, _point_configs(grid, fixed))
    grid, scratch = scratch_where_no_weights(grid, fixed)
    configs = _point_configs(grid, fixed)  # as they train: --pretrained only where weights exist
    _check_storage(settings)
    data = _load_data(settings)
    _check_training_sets(configs, TrialConfig.from_dict(fixed).crop_size, data)
    fetch_all(w for cfg in configs.values()
              if cfg.pretrained and (w := weights_of(cfg)) is not None)
    if "class_weights" not in fixed and any(c.loss in NEEDS_CLASS_WEIGHTS
                                            for c in configs.values()):
        # Once per sweep, from the training split; recorded with the sweep, so a resume keeps them.
        fixed = {**fixed, "class_weights": class_weights(data.train.masks, len(data.class_names))}
    if settings.resume:
        _repair_stored_files(settings)
    return PreparedSweep(settings, grid, fixed, data, scheduler_reason=reason,
                         from_scratch=scratch)


def _check_flags(settings: SweepSettings) -> None:
    """The sweep-level flags on their own."""
    if settings.search not in search.SEARCHES:
        raise SweepError(f"--search {settings.search!r}: choose from {', '.join(search.SEARCHES)}")
    if settings.scheduler is not None and settings.scheduler not in search.SCHEDULERS:
        raise SweepError(f"--scheduler {settings.scheduler!r}: choose from "
                         f"{', '.join(search.SCHEDULERS)}")
    if settings.num_samples is not None and settings.num_samples < 0:
        raise SweepError(f"--num-samples must be >= 0, got {settings.num_samples}")
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


def _check_points(settings: SweepSettings, grid: Grid,
                  configs: dict[str, TrialConfig]) -> None:
    """Every grid point builds (on the meta device) and leaves the searched keys to Optuna."""
    for label, point in grid.by_label().items():
        try:
            _check_model(configs[label])
        except ConfigError as exc:
            raise SweepError(f"grid point {label}: {exc}") from None
        searched = sorted(set(point) & set(search.SEARCHED_KEYS))
        if settings.search == "optuna" and searched:
            raise SweepError(f"grid point {label} sets {', '.join(searched)}, which --search "
                             "optuna proposes itself; drop it from the point or search the grid")


def _check_training_sets(configs: dict[str, TrialConfig], crop: int,
                         data: SegmentationData) -> None:
    """Crops fit the smallest image; no batch of one crop; a training set smaller than one
    batch trains in one smaller batch, said here."""
    if crop > data.smallest_side:
        raise SweepError(f"--crop-size {crop} is larger than the smallest training image side "
                         f"({data.smallest_side} px) in {data.root}; use --crop-size <= "
                         f"{data.smallest_side}")
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


def build_tuner(prepared: PreparedSweep, resources: dict[str, float], reuse_actors: bool = True):
    from ray import tune

    settings, grid, fixed = prepared.settings, prepared.grid, prepared.fixed
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, data=prepared.data, points=grid.by_label(), fixed=fixed),
        trial_request(resources),
    )
    if settings.resume:
        return tune.Tuner.restore(settings.experiment_path(), trainable,
                                  resume_unfinished=True, resume_errored=True)
    defaults = TrialConfig.from_dict(fixed)
    labels = grid.labels
    # ASHA's max_t: the longest trial (points may set their own epochs).
    max_epochs = max(prepared.trial_config(label).epochs for label in labels)
    if settings.search == "optuna":
        choices = search.crop_choices(defaults.crop_size, prepared.data.smallest_side)
        param_space = search.optuna_space(labels, choices)
        searcher = search.optuna_searcher(labels, defaults.lr, defaults.crop_size, defaults.seed,
                                          storage=optuna_store.study_url(settings),
                                          study_name=settings.name)
        num_samples = len(labels) + settings.num_samples
    else:
        param_space, searcher, num_samples = search.grid_space(labels), None, 1
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=search.METRIC, mode=search.MODE, search_alg=searcher,
            scheduler=search.make_scheduler(settings.scheduler, max_epochs,
                                            settings.grace_period, settings.reduction_factor),
            num_samples=num_samples, trial_dirname_creator=_trial_dirname,
            # A new actor per trial re-imports torch, Lightning and Tune (~10 s per trial on
            # 2 cores, measured by bench/makespan.py); run_trial keeps no state between trials.
            reuse_actors=reuse_actors,
        ),
        run_config=tune.RunConfig(
            name=settings.name, storage_path=settings.storage_path(),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute=search.METRIC,
                checkpoint_score_order=search.MODE),  # best + (always) the latest
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            sync_config=tune.SyncConfig(sync_artifacts=True),  # TensorBoard images
            callbacks=tracking.new_sweep_callbacks(settings, fixed, grid.by_label()),
            verbose=1,
        ),
    )


def _return_freed_memory() -> None:
    """glibc keeps freed heap pages: without a trim the dropped arrays stay resident (measured
    by bench/memory.py: the driver kept 1.3x the dataset)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


def _trial_dirname(trial) -> str:
    label = str(trial.config.get(search.POINT_KEY, "trial")).replace("/", "_").replace("=", "-")
    return f"{trial.trial_id}_{label}"[:120]


def _fit_with_clean_interrupt(tuner, settings: SweepSettings):
    """First Ctrl-C: Tune stops the trials and saves its state (through its SIGUSR1 handler),
    then SweepInterrupted says how to resume. Second Ctrl-C: KeyboardInterrupt at once."""
    interrupted = threading.Event()

    def on_sigint(signum, frame):
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        print("\nStopping: saving the sweep's state (Ctrl-C again to quit at once)...",
              file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGUSR1)

    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours decides; Tune's SIGUSR1 stops it
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        results = tuner.fit()
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted.is_set():
        raise SweepInterrupted(settings)
    return results


def run(prepared: PreparedSweep):
    """Start/join Ray, run the sweep, return Tune's ResultGrid."""
    import ray

    settings = prepared.settings
    context = start_ray(settings)
    warning = storage_warning(settings.storage, ray.nodes())
    if warning:
        print(warning, file=sys.stderr, flush=True)
    cluster = cluster_capacity(settings)
    n_trials = len(prepared.grid.points) + (settings.num_samples if settings.search == "optuna"
                                            else 0)
    configs = {label: prepared.trial_config(label) for label in prepared.grid.labels}
    resources = resources_per_trial(settings, n_trials, cluster, configs)
    dashboard = getattr(context, "dashboard_url", None)
    if dashboard:
        print(f"Ray dashboard: http://{dashboard}", flush=True)
    if not settings.resume:  # the record of a resumed sweep stays as it was started
        write_sweep_record(settings, prepared.grid, prepared.fixed, prepared.data,
                           scheduler_reason=prepared.scheduler_reason, resources=resources,
                           cluster=cluster)
    print(f"Sweep {settings.name!r}: {n_trials} trial(s) of grid {prepared.grid.name!r}, "
          f"{describe_resources(resources, configs)}, scheduler "
          f"{settings.scheduler.upper()} ({prepared.scheduler_reason}); results in "
          f"{settings.experiment_path()}", flush=True)
    for line in tracking.dashboard_commands(settings):
        print(line, flush=True)
    if prepared.from_scratch:
        print(f"--pretrained: {', '.join(prepared.from_scratch)} train from scratch (the model "
              "has no pretrained weights)", flush=True)
    tuner = build_tuner(prepared, resources, reuse_trial_actors(n_trials, resources, cluster))
    # The trials read the training split from Ray's object store (tune.with_parameters put it
    # there): the driver's own decoded copy would hold the dataset twice on the head node.
    prepared.data = dataclasses.replace(prepared.data, train=Split([], [], []))
    _return_freed_memory()
    results = _fit_with_clean_interrupt(tuner, settings)
    if settings.search == "optuna":
        for note in optuna_store.fail_abandoned_trials(settings):
            print(f"note: {note}", file=sys.stderr)
    prepared.cpu_inference, prepared.gpu_inference = time_inference_after_sweep(
        prepared, threads=max(1, int(resources["cpu"])), on_gpu=resources["gpu"] > 0)
    return results


def time_inference_after_sweep(prepared: PreparedSweep, threads: int,
                               on_gpu: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each architecture's inference time, measured alone once the trials are done: on the CPU
    in the driver, and on a GPU in a Ray task that asks for one when the trials used GPUs.
    What the sweep's files already hold is kept, not timed again (a resumed sweep that had
    finished its pass times nothing). Returns (CPU, GPU) timings by grid label."""
    settings, points = prepared.settings, prepared.grid.by_label()
    passes = [(INFERENCE_FILE, "CPU", lambda todo: time_architectures(
        todo, prepared.fixed, threads=threads))]
    if on_gpu:
        passes.append((INFERENCE_GPU_FILE, "GPU", lambda todo: time_architectures_on_a_gpu(
            todo, prepared.fixed)))
    found: list[dict[str, Any]] = []
    for name, where, measure in passes:
        timed = json.loads(read_experiment_file(settings, name) or "{}")
        todo = missing(points, timed)
        if todo:
            print(f"Timing {where} inference of each architecture alone (trials timed theirs "
                  "while others trained)...", flush=True)
            try:
                timed = {**timed, **measure(todo)}
            except Exception as exc:  # noqa: BLE001 - the sweep itself finished: keep its report
                print(f"warning: the {where} timing pass failed ({type(exc).__name__}: {exc}); "
                      "the ranking and report use the trials' own timings; --resume retries "
                      "it", file=sys.stderr, flush=True)
                found.append(timed)
                continue
            write_experiment_file(settings, name, json.dumps(timed, indent=2))
        found.append(timed)
    return found[0], (found[1] if on_gpu else {})


__all__ = ["PreparedSweep", "SweepInterrupted", "prepare", "run"]
