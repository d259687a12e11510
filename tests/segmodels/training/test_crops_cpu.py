"""crops_cpu: crop/augment pipelines and the datasets trials train and validate on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segmodels.classes import IGNORE_INDEX
from segmodels.training.crops_cpu import CropDataset, train_transform
from segmodels.training.normalize import normalize_image

H, W = 40, 56


def make_arrays(n: int = 3, h: int = H, w: int = W, readonly: bool = False):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    masks = [rng.integers(0, 8, (h, w), dtype=np.uint8) for _ in range(n)]
    if readonly:  # what Ray's zero-copy object store hands a trial
        for arr in images + masks:
            arr.setflags(write=False)
    return images, masks


def check_sample(image: torch.Tensor, mask: torch.Tensor, h: int, w: int) -> None:
    assert isinstance(image, torch.Tensor) and isinstance(mask, torch.Tensor)
    assert image.shape == (3, h, w) and image.dtype == torch.float32
    assert mask.shape == (h, w) and mask.dtype == torch.int64
    values = set(torch.unique(mask).tolist())
    assert values <= set(range(8)) | {IGNORE_INDEX}, values
    assert torch.isfinite(image).all()


@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augment"])
@pytest.mark.parametrize("crop", [32, 64], ids=["crop-inside", "crop-larger-than-image"])
def test_crop_dataset_shapes_and_dtypes(augment, crop):
    images, masks = make_arrays()
    ds = CropDataset(images, masks, crop_size=crop, augment=augment, crops_per_image=2)
    assert len(ds) == 6
    for i in range(len(ds)):
        check_sample(*ds[i], crop, crop)


def test_crop_dataset_works_with_dataloader():
    images, masks = make_arrays(readonly=True)
    ds = CropDataset(images, masks, crop_size=32, augment=True)
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert x.shape == (3, 3, 32, 32) and y.shape == (3, 32, 32)


def test_crop_larger_than_image_pads_mask_with_ignore_index():
    images, masks = make_arrays(n=1)
    ds = CropDataset(images, masks, crop_size=64, augment=False)
    image, mask = ds[0]
    # without augmentation the whole 40x56 image is inside the 64x64 crop; the rest is padding
    assert int((mask == IGNORE_INDEX).sum()) == 64 * 64 - H * W
    assert int((mask != IGNORE_INDEX).sum()) == H * W
    assert sorted(np.unique(mask[mask != IGNORE_INDEX].numpy()).tolist()) == \
        sorted(np.unique(masks[0]).tolist())
    # the padded image pixels are black (0) after normalization
    pad_value = torch.from_numpy(normalize_image(np.zeros((1, 1, 3), np.uint8))[0, 0])
    padded = (mask == IGNORE_INDEX)
    assert torch.allclose(image[:, padded], pad_value[:, None].expand(3, int(padded.sum())),
                          atol=1e-5)


def test_crop_larger_than_image_pads_with_ignore_index_when_augmenting():
    images, masks = make_arrays(n=1)
    ds = CropDataset(images, masks, crop_size=96, augment=True)  # > 1.3 x 56: always padded
    for _ in range(5):
        _, mask = ds[0]
        assert (mask == IGNORE_INDEX).any()
        assert (mask != IGNORE_INDEX).any()


@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augment"])
@pytest.mark.parametrize("crop", [32, 64], ids=["crop-inside", "crop-larger-than-image"])
def test_readonly_source_arrays_are_never_modified(augment, crop):
    images, masks = make_arrays(readonly=True)
    before = [a.copy() for a in images + masks]
    ds = CropDataset(images, masks, crop_size=crop, augment=augment, crops_per_image=3)
    for i in range(len(ds)):
        image, mask = ds[i]
        image.add_(1.0)  # the returned tensors must be independent, writable copies
        mask.fill_(0)
    for arr, orig in zip(images + masks, before):
        assert not arr.flags.writeable
        np.testing.assert_array_equal(arr, orig)


def test_normalize_image_uses_imagenet_statistics():
    img = np.array([[[124, 116, 104]]], np.uint8)  # ~ ImageNet mean * 255
    assert np.abs(normalize_image(img)).max() < 0.01
    assert normalize_image(img).dtype == np.float32


def _windows_matching(out: np.ndarray, source: np.ndarray) -> list[tuple[int, int]]:
    c = out.shape[0]
    hits = []
    for y in range(source.shape[0] - c + 1):
        for x in range(source.shape[1] - c + 1):
            if np.allclose(out, source[y:y + c, x:x + c], atol=1e-4):
                hits.append((y, x))
    return hits


def test_no_augment_only_crops():
    images, masks = make_arrays(n=1)
    source = normalize_image(images[0])
    t = train_transform(24, augment=False)
    for _ in range(5):
        out = t(image=images[0], mask=masks[0])
        hits = _windows_matching(out["image"], source)
        assert len(hits) == 1, hits  # the crop is exactly one window of the normalized source
        (y, x), = hits
        np.testing.assert_array_equal(out["mask"], masks[0][y:y + 24, x:x + 24])
    # a crop of the full image size leaves nothing random: every call gives the same output
    square_img, square_mask = images[0][:, :H].copy(), masks[0][:, :H].copy()  # 40x40
    full = train_transform(H, augment=False)
    for _ in range(3):
        out = full(image=square_img, mask=square_mask)
        np.testing.assert_allclose(out["image"], normalize_image(square_img), atol=1e-4)
        np.testing.assert_array_equal(out["mask"], square_mask)


def test_augment_varies_outputs_across_calls():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = rng.integers(0, 8, (64, 64), dtype=np.uint8)
    t = train_transform(64, augment=True)  # crop = image size: any variation is augmentation
    outs = [t(image=image, mask=mask)["image"] for _ in range(8)]
    distinct = {o.tobytes() for o in outs}
    assert len(distinct) > 1
    # at least one output is not simply the normalized input
    assert any(not np.allclose(o, normalize_image(image), atol=1e-4) for o in outs)
    for o in outs:
        assert o.shape == (64, 64, 3) and o.dtype == np.float32


def _epoch(ds: CropDataset, workers: int, init=True) -> torch.Tensor:
    from segmodels.training.crops_cpu import seed_crop_worker

    torch.manual_seed(0)  # what the trial's seed_everything does for the loader's seeds
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=workers,
                                         worker_init_fn=seed_crop_worker if init else None)
    return torch.cat([x for x, _ in loader])  # batches alternate between the workers


@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augment"])
def test_the_same_seed_draws_the_same_crops_and_another_seed_others(augment):
    images, masks = make_arrays()
    run = [CropDataset(images, masks, 32, augment, crops_per_image=4, seed=s) for s in (7, 7, 8)]
    first, again, other = (torch.stack([ds[i][0] for i in range(len(ds))]) for ds in run)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_loader_workers_draw_different_crops_and_repeat_across_runs():
    images, masks = make_arrays(n=1)
    make = lambda: CropDataset(images, masks, 16, augment=True, crops_per_image=8, seed=0)  # noqa: E731
    batch = _epoch(make(), workers=2)
    assert torch.equal(batch, _epoch(make(), workers=2))  # a rerun repeats
    # worker 0 computes items 0, 2, 4, ..., worker 1 items 1, 3, 5, ...: not the same crops
    assert not torch.equal(batch[0::2], batch[1::2])
    unseeded = _epoch(make(), workers=2, init=False)  # what the worker seeding prevents
    assert torch.equal(unseeded[0::2], unseeded[1::2])


def test_seeded_flips_are_drawn_independently():
    import albumentations as A

    from segmodels.training.crops_cpu import seed_transform

    image = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    flips = seed_transform(A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]), 3)
    seen = set()
    for _ in range(40):
        out = flips(image=image)["image"]
        seen.add(next(name for name, f in (("none", lambda a: a), ("h", lambda a: a[:, ::-1]),
                                           ("v", lambda a: a[::-1]),
                                           ("hv", lambda a: a[::-1, ::-1]))
                      if np.array_equal(out, f(image))))
    assert seen == {"none", "h", "v", "hv"}  # with one seed per transform: only none and hv
