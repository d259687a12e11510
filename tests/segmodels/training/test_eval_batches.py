"""eval_batches: batched whole-image validation matches the course's batch 1 exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segmodels import metrics
from segmodels.classes import IGNORE_INDEX
from segmodels.training.config import TrialConfig
from segmodels.training.device_data import placement
from segmodels.training.eval_batches import ValidationBatches, image_confusions, pixels_per_batch
from segmodels.training.module import SegmentationModule
from segmodels.training.normalize import normalize_image

MODELS = [{"model": "unet", "model_kwargs": {"min_channels": 4, "max_channels": 16}},
          {"model": "deeplab", "backbone": "mobilenet_v3_small", "aspp": True}]


def split(sizes: list[tuple[int, int]], seed: int = 0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    masks = [rng.integers(0, 8, (h, w), dtype=np.uint8) for h, w in sizes]
    masks[0][:5] = IGNORE_INDEX  # unlabelled pixels count nowhere
    return images, masks


def validate(module: SegmentationModule, batches: ValidationBatches) -> torch.Tensor:
    """The per-image confusion matrices of one validation pass, in image order."""
    module.eval()
    module.on_validation_epoch_start()
    with torch.inference_mode():
        for i, batch in enumerate(batches):
            module.validation_step(batch, i)
    order = [i for batch in batches.batches for i in batch]
    cms = torch.cat(module._image_cms)
    return cms[torch.argsort(torch.tensor(order))]


@pytest.mark.parametrize("config", MODELS, ids=["unet", "deeplab-aspp"])
@pytest.mark.parametrize("sizes", [[(48, 64)] * 4, [(48, 64)] * 3 + [(40, 56)]],
                         ids=["equal-sizes", "one-of-another-size"])
def test_batched_validation_gives_exactly_the_batch_1_confusion_matrices(config, sizes):
    torch.manual_seed(0)
    module = SegmentationModule(TrialConfig.from_dict({**config, "log_images": 0}))
    images, masks = split(sizes)
    one = ValidationBatches(images, masks, "cpu", max_pixels=0)
    many = ValidationBatches(images, masks, "cpu", max_pixels=10**9)
    assert [len(b) for b in one.batches] == [1] * len(sizes)
    assert [len(b) for b in many.batches] == ([4] if len(set(sizes)) == 1 else [3, 1])
    single, batched = validate(module, one), validate(module, many)
    assert torch.equal(single, batched)
    for cm, image, mask in zip(single, images, masks):  # and what the course computes
        x = torch.from_numpy(normalize_image(image).transpose(2, 0, 1)).unsqueeze(0)
        with torch.inference_mode():
            pred = module(x).argmax(1)[0]
        mask = torch.from_numpy(mask).long()
        assert torch.equal(cm, metrics.confusion_matrix(pred, mask, 8, IGNORE_INDEX))
    assert int(single[0].sum()) == masks[0].size - 5 * masks[0].shape[1]


def test_validation_batches_are_normalized_images_of_one_size():
    images, masks = split([(30, 40), (30, 40), (20, 50)])
    batches = ValidationBatches(images, masks, "cpu", max_pixels=2 * 30 * 40)
    got = list(batches)
    assert [tuple(x.shape) for x, _ in got] == [(2, 3, 30, 40), (1, 3, 20, 50)]
    for (x, y), members in zip(got, batches.batches):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        for sample, labels, i in zip(x, y, members):
            np.testing.assert_allclose(sample.permute(1, 2, 0).numpy(),
                                       normalize_image(images[i]), atol=1e-5)
            assert torch.equal(labels, torch.from_numpy(masks[i]).long())


def test_image_confusions_count_each_image_apart_in_one_bincount():
    target = torch.tensor([[[0, 1], [IGNORE_INDEX, 2]], [[2, 2], [1, 0]]])
    pred = torch.tensor([[[0, 2], [1, 2]], [[2, 0], [1, 1]]])
    cms = image_confusions(pred, target, 3, IGNORE_INDEX)
    for cm, p, t in zip(cms, pred, target):
        assert torch.equal(cm, metrics.confusion_matrix(p, t, 3, IGNORE_INDEX))
    assert cms[0].sum() == 3 and cms[1].sum() == 4


def test_a_gpu_validates_several_frames_per_pass_and_a_cpu_one():
    assert pixels_per_batch(16, 256, "gpu") // (1000 * 750) >= 4
    assert pixels_per_batch(16, 256, "cpu") == 0


def test_splits_stay_on_the_gpu_only_when_they_fit_its_share(monkeypatch):
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (8 * gib, 24 * gib))
    cuda = torch.device("cuda")
    assert placement(1 * gib, cuda) == cuda
    assert placement(3 * gib, cuda) == torch.device("cpu")  # pinned host memory instead
    assert placement(3 * gib, torch.device("cpu")) == torch.device("cpu")
