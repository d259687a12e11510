"""The function Ray Tune runs for each trial: resolve the grid point, resume, train, report."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import ray
from ray import tune

from segmodels.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from segmodels.data import SegmentationData
from segmodels.trial import train_trial

META_FILE = "meta.json"


class TuneReporter:
    """Sends each epoch to Tune with a checkpoint directory (model + optimizer + history)."""

    def __init__(self, point: str):
        self.point = point
        self.node_id = ray.get_runtime_context().get_node_id()
        self.last_epoch = 0

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any] | None) -> None:
        self.last_epoch = metrics["epoch"]
        metrics = {**metrics, "point": self.point, "node_id": self.node_id}
        if checkpoint is None:
            tune.report(metrics)
            return
        folder = Path(tempfile.mkdtemp(prefix="segsweep-ckpt-"))
        try:
            save_checkpoint(folder / CHECKPOINT_FILE, checkpoint)
            (folder / META_FILE).write_text(
                json.dumps(
                    {
                        "epoch": metrics["epoch"],
                        "val_miou": metrics["val_miou"],
                        "point": self.point,
                    }
                )
            )
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def resolve_trial_config(
    config: dict[str, Any], points: dict[str, dict[str, Any]], fixed: dict[str, Any]
) -> dict[str, Any]:
    """Tune's config (point label + searched values) -> a full TrialConfig dict."""
    searched = {k: v for k, v in config.items() if k != "point"}
    return {**fixed, **points[config["point"]], **searched}


def run_trial(
    config: dict[str, Any],
    *,
    data: SegmentationData,
    points: dict[str, dict[str, Any]],
    fixed: dict[str, Any],
    cpus: int,
) -> None:
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one line per checkpoint is noise
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume = load_checkpoint(Path(folder) / CHECKPOINT_FILE)
    trial_config = resolve_trial_config(config, points, fixed)
    reporter = TuneReporter(config["point"])
    try:
        train_trial(trial_config, data, reporter=reporter, resume=resume, cpus=cpus,
                    log_dir=tune.get_context().get_trial_dir())
    except FloatingPointError as exc:
        # A retry would diverge again: end the trial here with the reason recorded.
        epoch = (reporter.last_epoch or (resume or {}).get("epoch", 0)) + 1
        reporter.report({"epoch": epoch, "val_miou": float("nan"), "diverged": True,
                         "failure": str(exc)}, None)
