"""An export is checked, never trusted: on the sweep's validation images at their own sizes,
the exported model's logits and classes against eager PyTorch's, and the mIoU of both."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from deploy.formats import Runner, pixels
from segmodels.classes import NUM_CLASSES
from segmodels.metrics import confusion_matrix, mean_iou

MIN_AGREEMENT = 0.999  # share of pixels whose class matches PyTorch's
MAX_MIOU_DIFFERENCE = 1e-3


@dataclass(frozen=True)
class CheckResult:
    images: int
    sizes: list[list[int]]  # distinct (height, width) checked
    max_abs_logit_difference: float
    agreement: float  # share of pixels with the same argmax
    miou_pytorch: float
    miou_exported: float

    @property
    def failures(self) -> list[str]:
        why = []
        if not self.agreement >= MIN_AGREEMENT:
            why.append(f"classes agree with PyTorch on {self.agreement:.4%} of pixels (needs "
                       f">= {MIN_AGREEMENT:.1%})")
        difference = abs(self.miou_exported - self.miou_pytorch)
        if not difference <= MAX_MIOU_DIFFERENCE:
            why.append(f"mIoU {self.miou_exported:.4f} against PyTorch's "
                       f"{self.miou_pytorch:.4f} (differs by more than {MAX_MIOU_DIFFERENCE:g})")
        return why

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed, "min_agreement": MIN_AGREEMENT,
                "max_miou_difference": MAX_MIOU_DIFFERENCE}


def check_export(reference: Runner, exported: Runner, images: list[np.ndarray],
                 masks: list[np.ndarray]) -> CheckResult:
    """Both runners on each image alone (no padding to a batch shape), compared pixel by
    pixel; mIoU over the images against their masks, global as the sweep's default."""
    if not images:
        raise ValueError("no images to check the export on")
    worst, same, total = 0.0, 0, 0
    cm_ref = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64)
    cm_out = torch.zeros_like(cm_ref)
    for image, mask in zip(images, masks):
        x = pixels(image)
        ref, out = reference(x), exported(x)
        if out.shape != ref.shape:
            raise ValueError(f"the exported model gave logits of shape {out.shape} for an "
                             f"image of {image.shape[1]}x{image.shape[0]}, PyTorch {ref.shape}")
        worst = max(worst, float(np.abs(out - ref).max()))
        ref_cls, out_cls = ref[0].argmax(0), out[0].argmax(0)
        same += int((ref_cls == out_cls).sum())
        total += ref_cls.size
        target = torch.from_numpy(np.array(mask, dtype=np.int64))
        cm_ref += confusion_matrix(torch.from_numpy(ref_cls), target, NUM_CLASSES)
        cm_out += confusion_matrix(torch.from_numpy(out_cls), target, NUM_CLASSES)
    sizes = sorted({tuple(int(s) for s in image.shape[:2]) for image in images})
    return CheckResult(len(images), [list(s) for s in sizes], worst, same / total,
                       mean_iou(cm_ref), mean_iou(cm_out))
