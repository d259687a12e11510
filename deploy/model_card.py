"""What leaves the sweep with the model: ``model.json`` (read by ``segsweep_predict`` and any
deployment: the input it takes, the classes it gives, how it was checked) and ``MODEL_CARD.md``
(the same for a person: what was trained on what, how well, how fast, and what it cannot do)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from analysis.intervals import image_intervals
from analysis.loading import Experiment
from deploy.result import ExportResult
from segmodels.classes import CLASS_NAMES, IGNORE_INDEX
from segmodels.colors import PALETTE
from segmodels.metrics import iou_per_class
from segmodels.training import IMAGENET_MEAN, IMAGENET_STD
from sweeps.storage import MODEL_FILE

FORMAT, VERSION = "segsweep-model", 1
CARD_FILE = "MODEL_CARD.md"


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def describe(result: ExportResult, exp: Experiment, row: pd.Series, state: dict[str, Any],
             fmt: str, points: pd.DataFrame) -> dict[str, Any]:
    """The export as plain data: ``model.json``'s content. ``points``: the sweep's
    ``point_table``, as the export chose its trial from it."""
    config = dict(state.get("config") or {})
    trial_id = row["trial_id"]
    interval = image_intervals(exp, [trial_id]).loc[trial_id]  # its bootstrap alone
    low, high = interval["miou_low"], interval["miou_high"]
    point = None
    for _, p in points.iterrows():
        if trial_id in str(p["trial_ids"]).split() and p["seeds"] > 1:
            point = {"name": p["point"], "seeds": int(p["seeds"]),
                     "mean_best_val_miou": _number(p["best_val_miou"]),
                     "interval": [_number(p["miou_low"]), _number(p["miou_high"])]}
    try:
        per_class = iou_per_class(_tensor(exp.confusion(trial_id)))
        class_iou = {name: _number(v) for name, v in zip(CLASS_NAMES, per_class.tolist())}
    except KeyError:
        class_iou = {}
    data = exp.meta.get("data") or {}
    check = result.check.to_dict()
    return {
        "format": FORMAT, "version": VERSION,
        "model_file": result.model_file.name, "export_format": fmt,
        "passed_check": result.check.passed,
        "input": {
            "name": "image", "layout": "NCHW", "dtype": "float32", "channels": "RGB",
            "value_range": [0, 255],
            "normalization": "inside the model: (pixels / 255 - mean) / std",
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "dynamic": ["batch", "height", "width"],
            "orientation": "EXIF orientation applied first, as image viewers show the image "
                           "(as training did)",
            "size_trained": [config.get("crop_size"), config.get("crop_size")],
            "size_validated": "whole validation images at their own sizes",
        },
        "output": {"name": "logits", "layout": "NCHW", "classes": len(CLASS_NAMES),
                   "prediction": "argmax over the class axis"},
        "classes": [{"id": i, "name": name, "color": PALETTE[i].tolist()}
                    for i, name in enumerate(CLASS_NAMES)],
        "ignore_index": IGNORE_INDEX,
        "trained": {
            "sweep": str(exp.path), "trial_id": trial_id, "trial": result.name,
            "chosen": result.notes[0] if result.notes else "",
            "checkpoint": str(result.checkpoint), "checkpoint_epoch": state.get("epoch"),
            "epochs_trained": _int(row.get("epochs_done")),
            "epochs_planned": _int(row.get("epochs_planned")),
            "config": config,
            "data": {"root": data.get("root"), "synthetic": bool(data.get("synthetic")),
                     "train_images": data.get("train"), "val_images": data.get("val"),
                     "image_size": data.get("image_size"), "notes": data.get("notes") or []},
        },
        "scores": {
            "best_val_miou": _number(row.get("best_val_miou")),
            "interval_95": [_number(low), _number(high)],
            "interval_over": "the validation images (bootstrap)",
            "point_over_seeds": point,
            "class_iou": class_iou,
        },
        "check": check,
        "latency_ms_per_frame": {name: vars(lat) for name, lat in result.latency.items()},
        "size": {"file_bytes": result.model_file.stat().st_size,
                 "parameters": _int(row.get("params"))},
        "limitations": limitations(data, config, result),
    }


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _tensor(cm: np.ndarray):
    import torch

    return torch.as_tensor(np.asarray(cm))


def limitations(data: dict[str, Any], config: dict[str, Any], result: ExportResult) -> list[str]:
    """What the figures cannot promise, in plain words."""
    out = []
    if data.get("synthetic"):
        out.append("Trained and validated on segsweep's SYNTHETIC images, not on aerial "
                   "photographs: its scores say nothing about real FloodNet images.")
    if not config.get("pretrained"):
        out.append("Trained from scratch (no ImageNet weights): expect lower scores than a "
                   "pretrained backbone on few images.")
    val = data.get("val")
    if val is not None and val < 50:
        out.append(f"Validated on {val} images only: the interval above is wide, and another "
                   "set of images can rank models differently.")
    if result.check.images < (val or 0):
        out.append(f"The export was checked on {result.check.images} of the {val} validation "
                   "images.")
    out.append("Classes outside FloodNet's 8 (e.g. flooded buildings as a class of their own) "
               "are not predicted.")
    return out


def markdown(card: dict[str, Any]) -> str:
    trained, scores, check = card["trained"], card["scores"], card["check"]
    low, high = scores["interval_95"]
    interval = f" [{low:.3f}, {high:.3f}] (95%, over the validation images)" \
        if low is not None and high is not None else " (no interval: no per-image evidence)"
    lines = [
        f"# Model card: {trained['trial']}", "",
        f"Exported from sweep `{trained['sweep']}` as `{card['model_file']}` "
        f"({card['export_format']}). Chosen: {trained['chosen']}.",
        "" if card["passed_check"] else
        "\n**THE EXPORT FAILED ITS CHECK: do not deploy this file.**\n",
        "## Scores", "",
        f"- Best val mIoU: {scores['best_val_miou']:.3f}{interval}",
    ]
    if scores["point_over_seeds"]:
        p = scores["point_over_seeds"]
        lines.append(f"- Its point {p['name']} over {p['seeds']} seeds: mean "
                     f"{p['mean_best_val_miou']:.3f} [{_fmt(p['interval'][0])}, "
                     f"{_fmt(p['interval'][1])}]")
    if scores["class_iou"]:
        lines += ["", "| class | IoU |", "|---|---|"]
        lines += [f"| {name} | {_fmt(v)} |" for name, v in scores["class_iou"].items()]
    lines += ["", "## Check against PyTorch", "",
              f"On {check['images']} validation image(s) at their own sizes "
              f"({', '.join('x'.join(map(str, s[::-1])) for s in check['sizes'][:5])}"
              f"{', ...' if len(check['sizes']) > 5 else ''}): classes agree on "
              f"{check['agreement']:.4%} of pixels (needs >= {check['min_agreement']:.1%}), "
              f"max |logit difference| {check['max_abs_logit_difference']:.2e}, mIoU "
              f"{check['miou_exported']:.4f} exported vs {check['miou_pytorch']:.4f} PyTorch "
              f"(may differ by {check['max_miou_difference']:g}): "
              f"{'passed' if check['passed'] else 'FAILED'}.", "",
              "## Latency (per frame; -cuda: on the GPU)", "",
              "| runtime | median ms | range ms | threads | frame |", "|---|---|---|---|---|"]
    for name, lat in card["latency_ms_per_frame"].items():
        lines.append(f"| {name} | {lat['median_ms']:.1f} | {lat['low_ms']:.1f}-"
                     f"{lat['high_ms']:.1f} | {lat['threads']} | {lat['width']}x"
                     f"{lat['height']} |")
    data, config, inp = trained["data"], trained["config"], card["input"]
    size = data["image_size"]
    shrunk = f", shrunk to fit {'x'.join(map(str, size))}" if size else ""
    lines += ["", "## What was trained", "",
              f"- Model: {trained['trial']} ({_architecture(config)}), pretrained: "
              f"{bool(config.get('pretrained'))}",
              f"- Epochs: {trained['epochs_trained']} of {trained['epochs_planned']} planned; "
              f"checkpoint of epoch {trained['checkpoint_epoch']}",
              f"- Settings: lr {config.get('lr')}, optimizer {config.get('optimizer')}, loss "
              f"{config.get('loss')}, crop {config.get('crop_size')}, batch "
              f"{config.get('batch_size')}, augment {config.get('augment')}, seed "
              f"{config.get('seed')}",
              f"- Data: {data['root']} ({'SYNTHETIC, ' if data['synthetic'] else ''}"
              f"{data['train_images']} train / {data['val_images']} val images{shrunk})",
              *[f"  - {note}" for note in data["notes"]],
              "", "## Input and output", "",
              f"- Input `{inp['name']}`: {inp['dtype']} {inp['layout']}, {inp['channels']} "
              f"pixel values {inp['value_range'][0]}-{inp['value_range'][1]}; "
              f"{inp['normalization']}, mean {inp['mean']}, std {inp['std']}; any height and "
              f"width, any batch. {inp['orientation']}.",
              f"- Output `{card['output']['name']}`: {card['output']['layout']} logits over "
              f"{card['output']['classes']} classes; the prediction is their argmax.",
              "", "| id | class | colour (RGB) |", "|---|---|---|"]
    lines += [f"| {c['id']} | {c['name']} | {tuple(c['color'])} |" for c in card["classes"]]
    lines += ["", "## Limitations", "", *[f"- {text}" for text in card["limitations"]], "",
              "## Use it", "",
              "    python -m segsweep_predict THIS_FOLDER IMAGES... --out PREDICTIONS",
              "", "(needs numpy, Pillow and onnxruntime only)", ""]
    return "\n".join(lines)


def _architecture(config: dict[str, Any]) -> str:
    from segmodels.training import TrialConfig

    try:
        return TrialConfig.from_dict(config).architecture
    except Exception:  # noqa: BLE001 - a card of an older checkpoint still gets written
        return str(config.get("model"))


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def write_card(result: ExportResult, exp: Experiment, row: pd.Series, state: dict[str, Any],
               fmt: str, points: pd.DataFrame) -> dict[str, Any]:
    card = describe(result, exp, row, state, fmt, points)
    (result.folder / MODEL_FILE).write_text(json.dumps(card, indent=2, default=str))
    (result.folder / CARD_FILE).write_text(markdown(card))
    return card
