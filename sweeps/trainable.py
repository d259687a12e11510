"""The function Ray Tune runs for each trial: resolve the grid point, resume, train, report."""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import ray
from ray import tune

from segmodels.data import SegmentationData
from segmodels.training import (
    CHECKPOINT_FILE,
    IMAGE_CONFUSIONS,
    IMAGE_CONFUSIONS_FILE,
    TrialConfig,
    load_checkpoint,
    save_checkpoint,
    save_image_confusions,
    trial_settings,
)
from sweeps.costs import REJECTED, reported
from sweeps.search import split_tune_config
from sweeps.storage import META_FILE

_STAGING_PREFIX = "segsweep-ckpt-"  # + writer's pid + "-": see remove_orphaned_staging
_STAGING_NAME = re.compile(rf"^{_STAGING_PREFIX}(\d+)-")
_SHM = "/dev/shm"
_SHM_MIN_FREE = 2 << 30  # containers often mount a 64 MB /dev/shm: too small for a checkpoint


def scratch_dir() -> str | None:
    """Where a checkpoint is written before Tune copies it into the trial's storage: memory
    (/dev/shm) when it has room, so an epoch's checkpoint costs one disk write, not two;
    else the default temporary folder (None)."""
    try:
        if os.access(_SHM, os.W_OK) and shutil.disk_usage(_SHM).free >= _SHM_MIN_FREE:
            return _SHM
    except OSError:
        pass
    return None


def _jsonable(value: Any) -> Any:
    """numpy and torch scalars/arrays as plain JSON values."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def remove_orphaned_staging(folders: list[str | None]) -> list[Path]:
    """Remove staged checkpoints whose writer process is gone. A trial killed while reporting
    (SIGKILL runs no cleanup) leaves its folder behind, and in /dev/shm that is memory held
    until reboot. Returns what was removed."""
    removed = []
    for root in {Path(f or tempfile.gettempdir()) for f in folders}:
        try:
            candidates = list(root.iterdir())
        except OSError:
            continue
        for folder in candidates:
            match = _STAGING_NAME.match(folder.name)
            if match and folder.is_dir() and not _process_alive(int(match.group(1))):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to clean
        return True
    return True


class TuneReporter:
    """Sends each epoch to Tune with a checkpoint directory (model + optimizer + history)."""

    def __init__(self, point: str, costs: dict[str, Any] | None = None):
        self.point = point
        self.costs = dict(costs or {})  # the architecture's costs, measured before the sweep
        self.node_id = ray.get_runtime_context().get_node_id()
        self.last_epoch = 0
        remove_orphaned_staging([scratch_dir(), None])

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any] | None) -> None:
        self.last_epoch = metrics["epoch"]
        metrics = {**metrics, **self.costs, "point": self.point, "node_id": self.node_id}
        if checkpoint is None:
            tune.report(metrics)
            return
        evidence = checkpoint.pop(IMAGE_CONFUSIONS, None)
        prefix = f"{_STAGING_PREFIX}{os.getpid()}-"
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=scratch_dir()))
        try:
            try:
                save_checkpoint(folder / CHECKPOINT_FILE, checkpoint)
            except (OSError, RuntimeError):  # memory filled up (torch's writer raises
                # RuntimeError): the ordinary temporary folder
                shutil.rmtree(folder, ignore_errors=True)
                folder = Path(tempfile.mkdtemp(prefix=prefix))
                save_checkpoint(folder / CHECKPOINT_FILE, checkpoint)
            if evidence is not None:  # the analysis resamples the images for its intervals
                save_image_confusions(folder / IMAGE_CONFUSIONS_FILE, evidence)
            # The reported row rides along: a resume after a badly timed kill can put it back
            # into result.json if Ray had not yet stored it (sweeps/resume_repair.py).
            (folder / META_FILE).write_text(
                json.dumps(
                    {
                        "epoch": metrics["epoch"],
                        "val_miou": metrics["val_miou"],
                        "point": self.point,
                        # + what Tune adds to a row that the loader reads
                        "row": {**metrics, "hostname": platform.node()},
                    },
                    default=_jsonable,
                )
            )
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def resolve_trial_config(
    config: dict[str, Any], points: dict[str, dict[str, Any]], fixed: dict[str, Any]
) -> dict[str, Any]:
    """Tune's config (point label + searched values) -> a full TrialConfig dict."""
    label, searched = split_tune_config(config)
    return trial_settings(fixed, points[label], searched)


def run_trial(
    config: dict[str, Any],
    *,
    data: SegmentationData,
    points: dict[str, dict[str, Any]],
    fixed: dict[str, Any],
    costs: dict[str, dict[str, Any]] | None = None,
    time_cpu_inference: bool = False,
) -> None:
    """``costs``: label -> its architecture's costs measured before the sweep (sweeps/costs.py),
    reported with every epoch; an architecture over a budget reports them once, with why, and
    never trains. ``time_cpu_inference`` is off by default: the runner times each architecture
    alone (sweeps/inference_pass.py). The trial's CPUs (threads, loader workers) and
    GPU share (its memory cap) are what Ray gave it: under ``--gpus-per-trial auto`` they
    differ by architecture (sweeps/packing.py)."""
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one line per checkpoint is noise
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume = load_checkpoint(Path(folder) / CHECKPOINT_FILE)
    trial_config = resolve_trial_config(config, points, fixed)
    label = split_tune_config(config)[0]
    own_costs = reported((costs or {}).get(label, {}))
    if own_costs.get(REJECTED):
        nan, planned = float("nan"), TrialConfig.from_dict(trial_config).epochs
        tune.report({"epoch": 0, "epochs_planned": planned, "val_miou": nan,
                     "best_val_miou": nan, **own_costs, "point": label})
        return
    reporter = TuneReporter(label, own_costs)
    context = tune.get_context()
    granted = context.get_trial_resources().required_resources  # {"CPU": 4.0, "GPU": 0.5}
    from segmodels.training import train_trial  # Lightning: in the trial's process only

    try:
        train_trial(trial_config, data, reporter=reporter, resume=resume,
                    cpus=max(1, int(granted.get("CPU", 1))), gpu_share=granted.get("GPU", 0.0),
                    log_dir=context.get_trial_dir(), time_cpu_inference=time_cpu_inference)
    except FloatingPointError as exc:
        # A retry would diverge again: end the trial here with the reason recorded.
        epoch = (reporter.last_epoch or (resume or {}).get("epoch", 0)) + 1
        reporter.report({"epoch": epoch, "val_miou": float("nan"), "diverged": True,
                         "failure": str(exc)}, None)
