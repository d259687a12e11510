"""Run a prepared sweep with Ray Tune: start or join Ray, wire the trainable, scheduler,
searcher and callbacks, fit with a clean Ctrl-C, then time inference once per architecture.

Every check that can fail ran before, in ``sweeps.prepare``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import os
import signal
import sys
import threading
import time

from segmodels.data import (
    Split,
)
from segmodels.training import (
    TrialConfig,
)
from sweeps import costs, optuna_store, ray_state, search, search_space, tracking
from sweeps.cluster_checks import storage_warning
from sweeps.console import ConsoleProgress, release_terminal, replace_rays_console
from sweeps.inference_pass import time_after_sweep
from sweeps.prepare import PreparedSweep, longest_epochs
from sweeps.record import (
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
from sweeps.settings import SweepError, SweepSettings
from sweeps.storage_space import (
    StorageFull,
    hold_reserve,
    put_back_staged_state,
    release_reserve,
    storage_problem,
)
from sweeps.trainable import run_trial


class SweepInterrupted(KeyboardInterrupt):
    """Tune stopped before every trial ended (first Ctrl-C): its state is saved."""

    def __init__(self, settings: SweepSettings):
        super().__init__(f"sweep {settings.name!r} interrupted")
        self.settings = settings


def build_tuner(prepared: PreparedSweep, resources: dict[str, float], reuse_actors: bool = True,
                measured: dict[str, dict] | None = None):
    """``measured``: label -> its architecture's costs measured before training
    (sweeps/costs.py), for objectives and budgets beyond mIoU; a grid point over a budget is
    not a trial, and the search never asks for a value only such points use."""
    from ray import tune

    settings, grid, fixed = prepared.settings, prepared.grid, prepared.fixed
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, data=prepared.data, points=prepared.points, fixed=fixed,
                             costs=measured or {}),
        trial_request(resources),
    )
    if settings.resume:
        from sweeps.tracker_callbacks import resolve_earlier_pickles

        resolve_earlier_pickles()  # a sweep's callbacks pickled before they moved
        return tune.Tuner.restore(settings.experiment_path(), trainable,
                                  resume_unfinished=True, resume_errored=True)
    defaults = TrialConfig.from_dict(fixed)
    over = set(costs.rejected(measured or {}))
    labels = [label for label in grid.labels if label not in over]  # never trained
    # ASHA's max_t: the longest trial (points may set their own epochs).
    max_epochs = longest_epochs((prepared.trial_config(label) for label in prepared.points),
                                prepared.space)
    if settings.search == "optuna":
        space = search_space.within_budget(prepared.space, over) if over else prepared.space
        seeds = [space.seed(label, prepared.trial_config(label).to_dict()) for label in labels]
        searcher = search.optuna_searcher(
            space, seeds, objectives=settings.objectives or ["miou"], budgets=settings.budgets,
            costs=measured or {}, seed=defaults.seed, storage=optuna_store.study_url(settings),
            study_name=settings.name)
        param_space = {}  # the searcher's define-by-run space holds it
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
            trial_name_creator=_trial_name,
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
            callbacks=[*tracking.new_sweep_callbacks(settings, fixed, prepared.points),
                       ConsoleProgress({label: prepared.trial_config(label).epochs
                                        for label in prepared.points},
                                       early_stopping=settings.scheduler == "asha")],
            verbose=0,  # Ray's result boxes and status tables: ConsoleProgress instead
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


def _trial_name(trial) -> str:
    """What the console, MLflow and W&B call a trial (Ray's default is ``run_trial_<id>``):
    its label with the values a search proposed, as the ranking and the report call it."""
    return search.trial_label(trial.config)


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
    replace_rays_console()
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        results = tuner.fit()
    finally:
        signal.signal(signal.SIGINT, previous)
        release_terminal()
    if interrupted.is_set():
        raise SweepInterrupted(settings)
    return results


def _fit_checking_storage(tuner, prepared: PreparedSweep):
    """Fit; when the storage filled up or turned read-only on the way (Tune's own error, a
    trial's, or a write that fails now), StorageFull says so instead of Tune's traceback or a
    list of failed trials, after putting back the Tune state a full disk cut short; the timing
    pass, which writes to the same storage, is skipped. A reserve held in the sweep's folder
    meanwhile leaves room for that repair and for the report."""
    settings = prepared.settings
    largest = max(prepared.checkpoints.values(), default=1 << 20)
    started = time.time()
    hold_reserve(settings)
    results, failure = None, None
    try:
        try:
            results = _fit_with_clean_interrupt(tuner, settings)
        except SweepInterrupted:
            raise
        except Exception as exc:  # a storage error, or not: which one is found below
            failure = exc
        if failure is not None or results.num_errors:
            problem = storage_problem(settings, failure, checkpoint=largest, since=started)
            if problem is not None:
                notes = put_back_staged_state(settings,
                                              ray_state.driver_staging_folder(settings.name))
                raise StorageFull(settings, problem, results, notes) from failure
            if failure is not None:
                raise failure
    finally:
        release_reserve(settings)
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
    wanted = costs.needed(settings.objectives or [], settings.budgets)
    if "gpu_ms" in wanted and not cluster.get("GPU"):
        raise SweepError("--objective gpu_ms / --max-gpu-ms: the cluster has no GPU to time the "
                         "architectures on; use cpu_ms, or add a GPU node")
    if not settings.resume:  # the record of a resumed sweep stays as it was started
        write_sweep_record(settings, prepared.grid, prepared.fixed, prepared.data,
                           scheduler_reason=prepared.scheduler_reason, resources=resources,
                           cluster=cluster, search_points=prepared.search_points)
    measured, over = {}, {}
    if wanted or settings.budgets:
        measured = costs.measure_costs(settings, prepared.points, prepared.fixed,
                                       threads=max(1, int(resources["cpu"])))
        over = costs.rejected(measured)
        runnable = len(set(prepared.grid.labels) - set(over)) + (
            settings.num_samples if settings.search == "optuna" else 0)
        if not runnable or len(over) == len(prepared.points):
            shown = "; ".join(f"{label}: {why}" for label, why in list(over.items())[:3])
            beyond = ("every model the search could propose is over it; raise the --max-* "
                      "limit or add smaller models to the grid's axes"
                      if len(over) == len(prepared.points) else
                      "raise the --max-* limit, add smaller models to the grid, or search "
                      "beyond it with --search optuna --num-samples N")
            raise SweepError(f"nothing to train within the budget ({shown}"
                             f"{'; ...' if len(over) > 3 else ''}): {beyond}")
        n_trials -= len(set(prepared.grid.labels) & set(over))  # grid points never trained
    print(f"Sweep {settings.name!r}: {n_trials} trial(s) of grid {prepared.grid.name!r}, "
          f"{describe_resources(resources, configs)}, scheduler "
          f"{settings.scheduler.upper()} ({prepared.scheduler_reason}); results in "
          f"{settings.experiment_path()}", flush=True)
    for label, why in over.items():
        print(f"rejected, never trained: {label}: {why}", flush=True)
    for line in tracking.dashboard_commands(settings):
        print(line, flush=True)
    if prepared.from_scratch:
        print(f"--pretrained: {', '.join(prepared.from_scratch)} train from scratch (the model "
              "has no pretrained weights)", flush=True)
    tuner = build_tuner(prepared, resources, reuse_trial_actors(n_trials, resources, cluster),
                        measured=measured)
    # The trials read the training split from Ray's object store (tune.with_parameters put it
    # there): the driver's own decoded copy would hold the dataset twice on the head node.
    prepared.data = dataclasses.replace(prepared.data, train=Split([], [], []))
    _return_freed_memory()
    results = _fit_checking_storage(tuner, prepared)
    if settings.search == "optuna":
        for note in optuna_store.fail_abandoned_trials(settings):
            print(f"note: {note}", file=sys.stderr)
    trained = {r.config.get(search.POINT_KEY) for r in results} - set(costs.rejected(measured))
    prepared.cpu_inference, prepared.gpu_inference = time_after_sweep(
        settings, {k: p for k, p in prepared.points.items() if k in trained}, prepared.fixed,
        threads=max(1, int(resources["cpu"])), on_gpu=resources["gpu"] > 0)
    return results


__all__ = ["SweepInterrupted", "build_tuner", "run"]
