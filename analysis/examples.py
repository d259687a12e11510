"""Good and failed predictions of the best model for every class (course Task 4), found
automatically instead of by cropping TensorBoard images by hand.

The best trial's best checkpoint predicts every validation image once. For each class, every
window position is scored at once with summed-area tables: the *good* example is the window
where the class is present and predicted with the highest IoU; the *failure* is the window
where it is present but recalled worst, named with the class it was mostly predicted as.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from analysis.loading import Experiment  # noqa: E402
from segmodels import metrics  # noqa: E402
from segmodels.classes import CLASS_NAMES  # noqa: E402
from segmodels.colors import PALETTE, colorize  # noqa: E402
from segmodels.data import Split  # noqa: E402
from segmodels.training import normalize_image  # noqa: E402
from sweeps.summary import best_first  # noqa: E402

GOOD_IOU = 0.5  # a window counts as a good example from this IoU up
FAILED_RECALL = 0.5  # ... and as a failure below this recall
OUTLINE = "#ff8c00"  # the class's ground-truth outline: orange is not a class colour


@dataclass(frozen=True)
class Crop:
    image: int  # index in the validation split
    box: tuple[int, int, int, int]  # y0, x0, y1, x1
    iou: float
    recall: float
    pixels: int  # ground-truth pixels of the class in the window
    confused_with: str | None = None


@dataclass
class ClassExamples:
    class_id: int
    name: str
    good: Crop | None
    failure: Crop | None
    notes: list[str]
    path: Path | None = None


@dataclass
class Examples:
    trial_id: str
    name: str
    checkpoint: Path
    classes: list[ClassExamples] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@torch.inference_mode()
def predict(model: torch.nn.Module, images: list[np.ndarray]) -> list[np.ndarray]:
    """Whole images one at a time (any size, as validation ran): (H, W, 3) -> (H, W) ids."""
    torch.set_num_threads(os.cpu_count() or 1)
    model.eval()
    out = []
    for image in images:
        x = torch.from_numpy(np.ascontiguousarray(normalize_image(image).transpose(2, 0, 1)))
        out.append(model(x[None]).argmax(1)[0].to(torch.uint8).numpy())  # (H, W)
    return out


def _starts(length: int, win: int, stride: int) -> np.ndarray:
    """Window start offsets every ``stride`` pixels, the last one flush with the edge."""
    return np.unique(np.r_[np.arange(0, length - win + 1, stride), length - win])


def _window_sums(mask: np.ndarray, win: int, stride: int) -> np.ndarray:
    """Sum of ``mask`` over every win x win window on the stride grid (summed-area table)."""
    sat = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    y = _starts(mask.shape[0], win, stride)[:, None]
    x = _starts(mask.shape[1], win, stride)[None, :]
    return sat[y + win, x + win] - sat[y, x + win] - sat[y + win, x] + sat[y, x]


def _step(score: np.ndarray) -> np.ndarray:
    return np.round(score / 0.1)


def _off_half(crop: Crop) -> float:
    y0, x0, y1, x1 = crop.box
    return abs(crop.pixels / ((y1 - y0) * (x1 - x0)) - 0.5)


def window_size(shape: tuple[int, int]) -> int:
    """A third of the shorter side: small enough to zoom in, large enough for context."""
    return max(16, min(shape) // 3)


def find_crops(preds: list[np.ndarray], targets: list[np.ndarray], class_id: int,
               names: tuple[str, ...] = CLASS_NAMES) -> tuple[Crop | None, Crop | None, str]:
    """(good window, failed window, note) for one class over all validation images.

    Good: highest IoU; failure: lowest recall. Scores count in steps of 0.1; between
    near-equal windows the one whose class share is nearest half wins, so a crop shows the
    class with its surroundings and boundary rather than one flat colour."""
    windows = [w for i, (p, t) in enumerate(zip(preds, targets))
               for w in _scored_windows(i, p, t, class_id)]
    if not windows:
        return None, None, "too few pixels in any window to judge"
    best = max(windows, key=lambda w: (_step(w.iou), -_off_half(w)))
    worst = min(windows, key=lambda w: (_step(w.recall), _off_half(w)))
    notes = []
    if best.iou < GOOD_IOU:
        notes.append(f"no good example: the best window reaches IoU {best.iou:.2f} "
                     f"(< {GOOD_IOU})")
        best = None
    if worst.recall >= FAILED_RECALL:
        notes.append(f"no failure: recall is at least {worst.recall:.2f} in every window")
        worst = None
    else:
        worst = _with_confusion(worst, preds, targets, class_id, names)
    return best, worst, "; ".join(notes)


def _scored_windows(index: int, pred: np.ndarray, target: np.ndarray,
                    class_id: int) -> list[Crop]:
    """This image's best-IoU and worst-recall windows among those with enough of the class."""
    win = min(window_size(target.shape), *target.shape)
    stride = max(1, win // 4)
    gt, pr = target == class_id, pred == class_id
    g, p = _window_sums(gt, win, stride), _window_sums(pr, win, stride)
    tp = _window_sums(gt & pr, win, stride)
    ok = g >= max(8, win * win // 200)  # enough of the class to judge the window
    if not ok.any():
        return []
    iou = tp / np.maximum(g + p - tp, 1)
    recall = tp / np.maximum(g, 1)
    ys, xs = _starts(target.shape[0], win, stride), _starts(target.shape[1], win, stride)
    off_half = np.abs(g / (win * win) - 0.5).ravel()
    order_good = np.lexsort((off_half, -_step(iou).ravel(), ~ok.ravel()))
    order_bad = np.lexsort((off_half, _step(recall).ravel(), ~ok.ravel()))
    out = []
    for flat in (order_good[0], order_bad[0]):
        i, j = np.unravel_index(flat, g.shape)
        out.append(Crop(index, _box(ys[i], xs[j], win), float(iou[i, j]), float(recall[i, j]),
                        int(g[i, j])))
    return out


def _box(y: int, x: int, win: int) -> tuple[int, int, int, int]:
    return int(y), int(x), int(y + win), int(x + win)


def _with_confusion(crop: Crop, preds, targets, class_id: int, names) -> Crop:
    y0, x0, y1, x1 = crop.box
    target, pred = targets[crop.image][y0:y1, x0:x1], preds[crop.image][y0:y1, x0:x1]
    wrong = pred[(target == class_id) & (pred != class_id)]
    counts = np.bincount(wrong, minlength=len(names))
    name = names[int(counts.argmax())] if counts.any() else None
    return Crop(crop.image, crop.box, crop.iou, crop.recall, crop.pixels, name)


def class_examples(preds: list[np.ndarray], val: Split, cm: torch.Tensor,
                   names: tuple[str, ...] = CLASS_NAMES) -> list[ClassExamples]:
    """Per class: the crops and sentences saying what was (not) found and why.
    ``cm``: the confusion matrix of ``preds`` over ``val``'s masks."""
    iou = metrics.iou_per_class(cm).tolist()
    out = []
    for c, name in enumerate(names):
        support = int(cm[c].sum())
        if support == 0:
            out.append(ClassExamples(c, name, None, None,
                                     [f"{name} never occurs in the validation images"]))
            continue
        good, failure, note = find_crops(preds, val.masks, c, names)
        row = cm[c].clone()
        row[c] = 0
        notes = [f"val IoU {iou[c]:.2f} over {support} pixels"
                 + (f"; missed pixels mostly predicted as {names[int(row.argmax())]}"
                    if row.sum() > 0 else "")]
        notes += [note] if note else []
        if failure is not None:
            notes.append(f"failure: recall {failure.recall:.2f} in the window, mostly "
                         f"predicted as {failure.confused_with}")
        out.append(ClassExamples(c, name, good, failure, notes))
    return out


def draw_class(example: ClassExamples, val: Split, preds: list[np.ndarray], path: Path,
               names: tuple[str, ...] = CLASS_NAMES) -> Path:
    """Good example above, failure below: image | prediction | ground truth, zoomed in."""
    fig, axes = plt.subplots(2, 3, figsize=(9, 6.6), constrained_layout=True)
    for row, (kind, crop) in enumerate((("good", example.good), ("failure", example.failure))):
        if crop is None:
            for ax in axes[row]:
                ax.axis("off")
            axes[row, 1].text(0.5, 0.5, f"no {kind} example", ha="center", va="center")
            continue
        y0, x0, y1, x1 = crop.box
        target = val.masks[crop.image][y0:y1, x0:x1]
        panels = (val.images[crop.image][y0:y1, x0:x1],
                  colorize(preds[crop.image][y0:y1, x0:x1]), colorize(target))
        for ax, panel, what in zip(axes[row], panels, ("image", "prediction", "ground truth")):
            ax.imshow(panel, interpolation="nearest")
            ax.contour(target == example.class_id, levels=[0.5], colors=OUTLINE, linewidths=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(what, fontsize=9)
        detail = f"IoU {crop.iou:.2f}" if kind == "good" else (
            f"recall {crop.recall:.2f}, predicted as {crop.confused_with}")
        axes[row, 0].set_ylabel(f"{kind}\n{val.names[crop.image]} at y={y0}, x={x0}\n{detail}",
                                fontsize=8)
    handles = [Patch(color=PALETTE[i] / 255, label=n) for i, n in enumerate(names)]
    handles.append(Patch(facecolor="none", edgecolor=OUTLINE, label=f"{example.name} outline"))
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8,
               bbox_to_anchor=(0.5, -0.08), facecolor="lightgrey")
    fig.suptitle(f"{example.name}: good example and failure (zoomed crops)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def build_examples(exp: Experiment, val: Split, out_dir: Path) -> Examples | None:
    """Predict with the best trial's best checkpoint and save one PNG per class.
    Returns None when no trial has a checkpoint yet."""
    from segmodels.training import model_from_checkpoint

    candidates = exp.finished.dropna(subset=["best_checkpoint", "best_val_miou"])
    if candidates.empty:
        return None
    best = best_first(candidates.astype({"best_val_miou": float}),
                      pd.Series(True, index=candidates.index)).iloc[0]
    result = Examples(best["trial_id"], best["name"], Path(best["best_checkpoint"]))
    model, state = model_from_checkpoint(result.checkpoint)
    preds = predict(model, val.images)
    epoch = state.get("epoch")
    if epoch != best["best_epoch"]:
        same = state.get("val_miou") == best["best_val_miou"]
        result.notes.append(f"best epoch {best['best_epoch']}'s checkpoint was not kept; using "
                            f"epoch {epoch}'s" + (" (the same val mIoU)" if same else ""))
    cm = sum(metrics.confusion_matrix(torch.from_numpy(p), torch.tensor(t), len(CLASS_NAMES))
             for p, t in zip(preds, val.masks))  # tensor(): the shared masks are read-only
    logged = exp.curves(best["trial_id"]).set_index("epoch").get("val_miou_global")
    if logged is not None and epoch in logged.index:
        result.notes.append(f"recomputed val mIoU (global) {metrics.mean_iou(cm):.3f}; "
                            f"logged for epoch {epoch}: {logged[epoch]:.3f}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for example in class_examples(preds, val, cm):
        if example.good or example.failure:
            example.path = draw_class(example, val, preds,
                                      out_dir / f"examples_{example.class_id}_{example.name}.png")
        result.classes.append(example)
    return result
