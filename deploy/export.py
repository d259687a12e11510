"""A sweep's winner out of the sweep: ``export_run`` picks the trial (the report's best by
default), writes the model in a format of ``deploy.formats.FORMATS``, checks it against PyTorch
on the sweep's validation images, times both side by side and writes the model card. A check
that fails keeps the file, renamed ``*.FAILED.*``, and raises ``ExportCheckFailed``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd

from analysis.dataset import load_validation, recorded_files
from analysis.loading import Experiment, load_experiment
from analysis.replicates import point_table
from deploy.check import check_export
from deploy.formats import FORMATS, cuda_runners, run_pytorch
from deploy.latency import side_by_side
from deploy.model_card import write_card
from deploy.result import ExportResult
from segmodels.errors import SegsweepError
from segmodels.training import CHECKPOINT_FILE, model_from_checkpoint
from sweeps.storage import CHECKPOINT_PREFIX, EXPORT_DIR, META_FILE

CHECKPOINTS = ("best", "last")


class ExportError(SegsweepError, ValueError):
    """The export cannot be made as asked; the message says why and what to do."""


class ExportCheckFailed(ExportError):
    """The exported model disagrees with PyTorch; its file is kept, named as failed."""

    def __init__(self, message: str, result: ExportResult):
        super().__init__(message)
        self.result = result


def export_run(run_dir: str | Path, *, trial: str | None = None, checkpoint: str = "best",
               fmt: str = "onnx", out: str | Path | None = None,
               check_images: int | None = None, threads: int = 1,
               repeats: int = 5) -> ExportResult:
    """Export one trial of the sweep in ``run_dir``: ``trial`` (its name or label; default the
    best point's best trial, as the report ranks them), its ``checkpoint`` (best or last), to
    ``out`` (default RUN/export/NAME/). ``check_images``: how many validation images the check
    runs on (default all)."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    if checkpoint not in CHECKPOINTS:
        raise ExportError(f"--checkpoint {checkpoint!r}: choose from {', '.join(CHECKPOINTS)}")
    if check_images is not None and check_images < 1:
        raise ExportError(f"--check-images must be >= 1, got {check_images}")
    run_dir = Path(run_dir)
    exp = load_experiment(run_dir)
    points = point_table(exp)  # its intervals are bootstraps: once per export
    row, how = choose_trial(exp, trial, points)
    path = checkpoint_file(row, checkpoint)
    val, notes = load_validation(exp.meta, recorded_files(run_dir))
    if val is None or not len(val):
        raise ExportError(f"{run_dir}: the check needs the sweep's validation images, which "
                          f"are not available ({'; '.join(notes) or 'none recorded'})")
    model, state = model_from_checkpoint(path)
    folder = Path(out) if out is not None else run_dir / EXPORT_DIR / safe_name(row["name"])
    folder.mkdir(parents=True, exist_ok=True)
    spec = FORMATS[fmt]
    target = folder / spec.file
    for stale in folder.glob("model*"):  # a previous export of this trial, failed or not
        stale.unlink()
    try:
        spec.write(model, target)
    except Exception as exc:  # noqa: BLE001 - exporters raise anything; one line says why
        target.unlink(missing_ok=True)
        other = next(name for name in FORMATS if name != fmt)
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ExportError(f"{row['name']} ({state['config'].get('model')}) cannot be exported "
                          f"to {fmt} ({type(exc).__name__}: {why}); try --format {other}"
                          ) from None
    exported = spec.run(target, threads)
    reference = run_pytorch(model, threads)
    count = len(val) if check_images is None else min(check_images, len(val))
    check = check_export(reference, exported, val.images[:count], val.masks[:count])
    config = state.get("config", {})
    frame = {"height": int(config.get("inference_height") or 750),
             "width": int(config.get("inference_width") or 1000)}
    latency = side_by_side({spec.runtime: exported, "pytorch": reference}, threads=threads,
                           repeats=repeats, **frame)
    if fmt == "onnx":  # and on a GPU, where one and onnxruntime-gpu are here
        gpu = cuda_runners(model, target)
        latency.update(side_by_side(gpu, threads=threads, repeats=repeats, **frame) if gpu
                       else {})
    result = ExportResult(folder, target, row["trial_id"], str(row["name"]), path, check,
                          latency, notes=[how, *notes])
    if not check.passed:
        failed = target.with_name(f"{target.stem}.FAILED{target.suffix}")
        shutil.move(target, failed)
        result.model_file = failed
    write_card(result, exp, row, state, fmt, points)
    if not check.passed:
        raise ExportCheckFailed(f"{failed}: the export does not match PyTorch on "
                                f"{check.images} validation image(s): "
                                f"{'; '.join(check.failures)}; kept for inspection, not for "
                                "use", result)
    return result


def choose_trial(exp: Experiment, wanted: str | None,
                 points: pd.DataFrame) -> tuple[pd.Series, str]:
    """The trial to export and how it was chosen. Default: the best point by the report's
    ranking (``points``: its ``point_table``, mean best mIoU over seeds), then that point's
    best trial."""
    trials = exp.trials
    usable = trials[trials["best_checkpoint"].notna()]
    if wanted is not None:
        match = trials[(trials["name"].astype(str) == wanted)
                       | (trials["label"].astype(str) == wanted)
                       | (trials["trial_id"].astype(str) == wanted)]
        if match.empty:
            raise ExportError(f"--trial {wanted!r}: no such trial in {exp.path}; choose from "
                              f"{', '.join(map(str, trials['name']))}")
        if len(match) > 1:
            raise ExportError(f"--trial {wanted!r} names {len(match)} trials (seeds of one "
                              f"point); give one of {', '.join(map(str, match['name']))}")
        row = match.iloc[0]
        if pd.isna(row["best_checkpoint"]):
            raise ExportError(f"--trial {wanted!r}: the trial kept no checkpoint (status "
                              f"{row['status']}); choose a finished trial")
        return row, f"trial {row['name']}, as asked"
    if usable.empty:
        raise ExportError(f"{exp.path}: no trial kept a checkpoint yet; nothing to export")
    done = usable[usable["status"].astype(str).isin(["TERMINATED", "done"])]
    candidates = done if not done.empty else usable
    for _, point in points.iterrows():
        own = candidates[candidates["trial_id"].isin(str(point["trial_ids"]).split())]
        if not own.empty:
            row = own.sort_values("best_val_miou", ascending=False, kind="stable").iloc[0]
            how = (f"the best point by the report's ranking ({point['point']}, mean best "
                   f"val mIoU {point['best_val_miou']:.3f} over {point['seeds']} seed(s)); "
                   "its best trial" if point["seeds"] > 1 else
                   "the best trial by the report's ranking")
            return row, how
    row = candidates.sort_values("best_val_miou", ascending=False, kind="stable").iloc[0]
    return row, "the trial with the best val mIoU"


def checkpoint_file(row: pd.Series, which: str) -> Path:
    """The trial's best kept checkpoint, or its newest one (``last``)."""
    if which == "best":
        return Path(row["best_checkpoint"])
    folders = sorted(Path(row["trial_dir"]).glob(f"{CHECKPOINT_PREFIX}*"),
                     key=lambda f: _epoch(f))
    folders = [f for f in folders if (f / CHECKPOINT_FILE).is_file()]
    if not folders:
        raise ExportError(f"{row['trial_dir']}: no checkpoint kept")
    return folders[-1] / CHECKPOINT_FILE


def _epoch(folder: Path) -> int:
    try:
        return int(json.loads((folder / META_FILE).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        match = re.search(r"(\d+)$", folder.name)
        return int(match.group(1)) if match else -1


def safe_name(name: str) -> str:
    """A trial's name as one folder name: ``deeplab/resnet18/aspp`` -> ``deeplab_resnet18_aspp``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


__all__ = ["ExportCheckFailed", "ExportError", "ExportResult", "choose_trial",
           "checkpoint_file", "export_run", "safe_name"]

