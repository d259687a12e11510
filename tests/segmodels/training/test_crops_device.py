"""crops_device on CPU tensors: the GPU path's crops, geometry and random stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import segmodels.training.crops_device as crops_device
from segmodels.classes import IGNORE_INDEX
from segmodels.training.crops_device import (
    FLIP_P,
    ROTATION_DEGREES,
    ROTATION_P,
    SCALE,
    DeviceCrops,
    augmentation,
    window_size,
)
from segmodels.training.normalize import IMAGENET_MEAN, IMAGENET_STD

BLOCK = 8  # mask class = block of the source pixel


def coordinate_arrays(height: int, width: int, n: int = 1):
    """Images whose pixels encode their own coordinates (red 2x, green 2y, blue 200 inside)
    and masks whose class is the 8x8 block of the same coordinates."""
    y, x = np.mgrid[:height, :width]
    image = np.stack([2 * x, 2 * y, np.full_like(x, 200)], axis=-1).astype(np.uint8)
    mask = ((x // BLOCK + y // BLOCK) % 8).astype(np.uint8)
    return [image] * n, [mask] * n


def pixels(images: torch.Tensor) -> torch.Tensor:
    """Normalized (N, 3, H, W) -> (N, 3, H, W) in 0..255."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images * std + mean) * 255


def without_colour(monkeypatch) -> None:
    """Geometry only: colour changes would scramble the coordinates the pixels encode."""
    def geometric(crop_size):
        full = augmentation(crop_size)
        kept = [m for m in full.children() if "ColorJitter" not in type(m).__name__]
        return type(full)(*kept, data_keys=["input", "mask"], extra_args=full.extra_args)

    monkeypatch.setattr(crops_device, "augmentation", geometric)


def test_image_and_mask_stay_aligned_through_every_geometric_transform(monkeypatch):
    without_colour(monkeypatch)
    height, width, crop = 72, 88, 48  # small: scaled-down crops and rotations reach the borders
    images, masks = coordinate_arrays(height, width, n=4)
    crops = DeviceCrops(images, masks, crop_size=crop, augment=True, crops_per_image=32,
                        batch_size=16, device="cpu", seed=0)
    batches = list(crops)
    image = pixels(torch.cat([b[0] for b in batches]))
    mask = torch.cat([b[1] for b in batches])
    assert image.shape == (128, 3, crop, crop) and mask.shape == (128, crop, crop)
    inside = image[:, 2] > 199  # not blended with the black border: coordinates are exact
    x, y = image[:, 0] / 2, image[:, 1] / 2  # bilinear keeps a linear code exact
    labelled = mask != IGNORE_INDEX
    assert (labelled & inside).float().mean() > 0.5
    # every labelled pixel's class is that of the source pixel within 1.5 px of where it was
    # sampled (two nearest resamplings for the mask, two bilinear for the image)
    near = torch.zeros_like(labelled)
    for dx in (-1.5, 0, 1.5):
        for dy in (-1.5, 0, 1.5):
            xs = (x + dx).round().clamp(0, width - 1)
            ys = (y + dy).round().clamp(0, height - 1)
            near |= ((xs // BLOCK + ys // BLOCK) % 8).long() == mask
    assert near[labelled & inside].all()
    exact = ((x.round() // BLOCK + y.round() // BLOCK) % 8).long() == mask
    assert exact[labelled & inside].float().mean() > 0.97
    # borders: ignored in the mask, black in the image, on both sides of the check
    ignored = mask == IGNORE_INDEX
    assert ignored.any(), "no crop reached a border: the test image is too large"
    assert (image[:, 2][ignored] < 120).float().mean() > 0.95
    assert not (ignored & inside).any()
    outside = image[:, 2] < 20  # black: sampled beyond the image
    assert outside.any() and (mask[outside] == IGNORE_INDEX).float().mean() > 0.95


def test_samples_of_a_batch_get_their_own_parameters(monkeypatch):
    images, masks = coordinate_arrays(64, 64, n=1)
    crops = DeviceCrops(images, masks, crop_size=32, augment=True, crops_per_image=16,
                        batch_size=16, device="cpu", seed=3)
    batch, _ = next(iter(crops))
    scale, rotation, _, hflip, vflip, *_ = (p.data for p in crops.pipeline._params)
    assert len(set(scale["scale"][:, 0].tolist())) == 16
    for step in (rotation, hflip, vflip):
        assert 0 < step["batch_prob"].sum() < 16  # some samples turned or flipped, some not
    assert len({sample.numpy().tobytes() for sample in batch}) == 16  # one image, 16 crops


def test_the_same_seed_repeats_the_crops_whatever_else_draws_random_numbers():
    images, masks = coordinate_arrays(40, 56, n=3)

    def epoch(seed: int, augment: bool) -> torch.Tensor:
        torch.manual_seed(seed + 100)  # the model's draws (dropout) must not matter
        crops = DeviceCrops(images, masks, crop_size=24, augment=augment, crops_per_image=2,
                            batch_size=4, device="cpu", seed=seed)
        torch.rand(1000)
        return torch.cat([x for x, _ in crops])

    for augment in (False, True):
        assert torch.equal(epoch(7, augment), epoch(7, augment))
        assert not torch.equal(epoch(7, augment), epoch(8, augment))


def test_parameters_follow_the_courses_ranges_over_many_draws():
    n = 4000
    params = augmentation(64).forward_parameters((n, 3, window_size(64, True),
                                                  window_size(64, True)))
    scale, rotation, _, hflip, vflip, light, hue = (p.data for p in params)
    s = scale["scale"][:, 0]
    assert SCALE[0] <= s.min() < SCALE[0] + 0.01 and SCALE[1] - 0.01 < s.max() <= SCALE[1]
    assert torch.equal(scale["angle"], torch.zeros(n))  # the scale step never rotates
    applied = rotation["batch_prob"] > 0.5
    assert abs(applied.float().mean() - ROTATION_P) < 0.04
    angle = rotation["angle"][applied]
    assert -ROTATION_DEGREES <= angle.min() < -ROTATION_DEGREES + 1
    assert ROTATION_DEGREES - 1 < angle.max() <= ROTATION_DEGREES
    for flip in (hflip, vflip):
        assert abs(flip["batch_prob"].mean() - FLIP_P) < 0.04
    for jitter in (light, hue):
        assert abs(jitter["batch_prob"].mean() - 0.5) < 0.04
    for key in ("brightness_factor", "contrast_factor"):
        assert 0.8 <= light[key].min() < 0.81 and 1.19 < light[key].max() <= 1.2
    assert 0.8 <= hue["saturation_factor"].min() and hue["saturation_factor"].max() <= 1.2
    assert hue["hue_factor"].abs().max() <= 20 / 360 + 1e-6  # +-20 degrees of hue
    assert hue["brightness_factor"].min() >= 0.96 and hue["brightness_factor"].max() <= 1.04


def test_crop_positions_cover_the_whole_image_uniformly():
    height, width, crop = 40, 56, 16
    images, masks = coordinate_arrays(height, width)
    crops = DeviceCrops(images, masks, crop_size=crop, augment=False, crops_per_image=3000,
                        batch_size=100, device="cpu", seed=0)
    corner = pixels(torch.cat([x for x, _ in crops]))[:, :2, 0, 0].round() / 2  # (N, 2) x, y
    left, top = corner[:, 0], corner[:, 1]
    assert left.min() == 0 and left.max() == width - crop
    assert top.min() == 0 and top.max() == height - crop
    assert abs(left.mean() - (width - crop) / 2) < 1.0
    assert abs(top.mean() - (height - crop) / 2) < 1.0


def test_without_augmentation_a_crop_is_a_window_of_the_source():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)]
    masks = [rng.integers(0, 8, (40, 56), dtype=np.uint8)]
    crops = DeviceCrops(images, masks, crop_size=24, augment=False, crops_per_image=4,
                        batch_size=4, device="cpu", seed=0)
    image, mask = next(iter(crops))
    source = torch.from_numpy(images[0]).permute(2, 0, 1).float()
    for sample, labels in zip(pixels(image), mask):
        hits = [(y, x) for y in range(40 - 24 + 1) for x in range(56 - 24 + 1)
                if torch.allclose(sample, source[:, y:y + 24, x:x + 24], atol=1e-3)]
        assert len(hits) == 1
        (y, x), = hits
        assert torch.equal(labels, torch.from_numpy(masks[0][y:y + 24, x:x + 24]).long())


@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augment"])
def test_a_crop_larger_than_the_image_is_centred_and_padded_with_ignore(augment):
    images, masks = coordinate_arrays(20, 28)
    crops = DeviceCrops(images, masks, crop_size=48, augment=augment, crops_per_image=4,
                        batch_size=4, device="cpu", seed=0)
    image, mask = next(iter(crops))
    assert image.shape == (4, 3, 48, 48) and mask.shape == (4, 48, 48)
    assert (mask == IGNORE_INDEX).any(dim=(1, 2)).all() and (mask != IGNORE_INDEX).any()
    if not augment:  # exactly the image, centred: 14 rows above, 10 columns left
        assert (mask != IGNORE_INDEX).sum() == 4 * 20 * 28
        assert torch.equal(mask[0, 14:34, 10:38], torch.from_numpy(masks[0]).long())


def test_source_arrays_are_only_read():
    images, masks = coordinate_arrays(40, 56, n=2)
    images, masks = [a.copy() for a in images], [a.copy() for a in masks]
    for arr in images + masks:
        arr.setflags(write=False)  # what Ray's zero-copy object store hands a trial
    before = [a.copy() for a in images + masks]
    for augment in (False, True):
        crops = DeviceCrops(images, masks, crop_size=64, augment=augment, crops_per_image=2,
                            batch_size=2, device="cpu", seed=0)
        for image, mask in crops:
            image.add_(1.0)
            mask.fill_(0)
    for arr, orig in zip(images + masks, before):
        np.testing.assert_array_equal(arr, orig)


def test_an_epoch_follows_the_batch_plan():
    images, masks = coordinate_arrays(40, 56, n=11)
    crops = DeviceCrops(images, masks, crop_size=16, augment=True, crops_per_image=3,
                        batch_size=8, device="cpu", seed=0)
    sizes = [len(x) for x, _ in crops]
    assert sizes == [8, 8, 8, 5, 4] and len(crops) == 5  # 33 crops: 1 left over is folded in
    assert crops.window % 2 == 16 % 2  # a symmetric centre crop


def test_the_window_holds_any_scaled_and_rotated_crop():
    assert window_size(256, augment=False) == 256
    w = window_size(256, augment=True)
    assert w >= 256 * (np.cos(np.radians(30)) + np.sin(np.radians(30))) / 0.7
    assert w % 2 == 0 and w < 256 * 2


def test_data_goes_to_the_gpu_only_within_the_trials_share_of_it(monkeypatch):
    # A half-GPU trial must not fill its half with data: it budgets within its capped share.
    from segmodels.training import device_data

    gib = 2**30
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (60 * gib, 80 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction",
                        lambda share, device=None: None)
    monkeypatch.setattr(device_data, "_process_share", 1.0)
    assert device_data.placement(12 * gib, cuda) == cuda  # 12 <= 0.25 x 60 free
    device_data.cap_process_memory(0.25)  # 20 GiB of 80 for this trial
    assert device_data.placement(12 * gib, cuda) == torch.device("cpu")  # > 0.25 x 20
    assert device_data.placement(4 * gib, cuda) == cuda
    assert device_data.placement(12 * gib, torch.device("cpu")) == torch.device("cpu")
