"""segmodels.data: layout detection, validation (one error listing every problem) and decoding."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import (
    TEST_NAMES,
    TRAIN_NAMES,
    H,
    W,
    labels,
    load_quietly,
    make_floodnet,
    rgb,
    write_mask,
)
from PIL import Image

import segmodels
from segmodels.data import (
    FLOODNET_TO_OURS,
    DatasetError,
    SegmentationData,
    load_dataset,
)

# ----------------------------------------------------------------------------- good cases


def test_the_package_api_takes_a_dataset_through_every_model_to_a_score(tiny):
    """What ``import segmodels`` promises: every exported name exists, a loaded dataset goes
    through each registered model to (N, classes, H, W) logits, and the metrics score them."""
    assert [name for name in segmodels.__all__ if not hasattr(segmodels, name)] == []
    ds = segmodels.load_dataset(tiny)
    images = torch.from_numpy(np.stack(ds.val.images)).permute(0, 3, 1, 2).float() / 255
    masks = torch.from_numpy(np.stack(ds.val.masks))
    k = len(segmodels.CLASS_NAMES)
    for name in segmodels.list_models():
        with torch.no_grad():
            logits = segmodels.create_model(name).eval()(images)
        assert logits.shape == (len(ds.val), k, H, W), name
        cm = segmodels.metrics.confusion_matrix(logits.argmax(1), masks, k)
        assert int(cm.sum()) == masks.numel(), name
        assert 0 <= segmodels.metrics.mean_iou(cm) <= 1, name


def test_tiny_floodnet_loads(tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean dataset loads without any warning
        ds = load_dataset(tiny)
    assert isinstance(ds, SegmentationData)
    assert ds.layout == "tiny-floodnet"
    assert ds.root == str(tiny)
    assert ds.synthetic is False
    assert ds.notes == []
    assert len(ds.train) == 3 and len(ds.val) == 2
    assert ds.train.names == sorted(TRAIN_NAMES)
    assert ds.val.names == sorted(TEST_NAMES)
    for split in (ds.train, ds.val):
        assert len(split.images) == len(split.masks) == len(split.names)
        for img, mask in zip(split.images, split.masks):
            assert img.dtype == np.uint8 and img.shape == (H, W, 3)
            assert mask.dtype == np.uint8 and mask.shape == (H, W)
            assert mask.max() < 8
    # Masks are lossless PNGs: the decoded labels are exactly what was written, in sorted order.
    for name, mask in zip(ds.train.names, ds.train.masks):
        np.testing.assert_array_equal(mask, labels(int(name[-1])))
    assert ds.smallest_side == H
    assert "3 train / 2 val" in ds.describe()


def test_validate_dataset_the_earlier_name_of_load_dataset_still_works(tiny):
    from segmodels import validate_dataset

    ds = validate_dataset(tiny)
    assert isinstance(ds, SegmentationData)
    assert len(ds.train) == 3 and len(ds.val) == 2


def test_decode_count_one_per_file(decodes, tiny):
    n_files = (3 + 2) * 2  # images + masks
    for _ in range(2):  # per call, not just the first time
        before = decodes.count
        load_dataset(tiny)
        assert decodes.count - before == n_files


def test_rgb_mask_with_equal_channels_is_accepted(tiny):
    grey = labels(0)
    write_mask(tiny / "train" / "mask" / "img_0.png", np.stack([grey] * 3, axis=-1))
    assert Image.open(tiny / "train" / "mask" / "img_0.png").mode == "RGB"
    ds = load_dataset(tiny)
    i = ds.train.names.index("img_0")
    assert ds.train.masks[i].shape == (H, W)
    np.testing.assert_array_equal(ds.train.masks[i], grey)


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_greyscale_and_rgba_images_are_converted(tiny, mode):
    if mode == "L":
        path = tiny / "train" / "image" / "img_1.jpg"
        Image.fromarray(rgb(1)[..., 0]).save(path, quality=95)
    else:
        (tiny / "train" / "image" / "img_1.jpg").unlink()
        path = tiny / "train" / "image" / "img_1.png"
        Image.fromarray(np.dstack([rgb(1), np.full((H, W), 200, np.uint8)]), "RGBA").save(path)
    assert Image.open(path).mode == mode
    with pytest.warns(UserWarning) as record:
        ds = load_dataset(tiny)
    messages = [str(w.message) for w in record]
    assert any(path.name in m and mode in m and "RGB" in m for m in messages), messages
    assert any(path.name in n for n in ds.notes), ds.notes
    i = ds.train.names.index("img_1")
    img = ds.train.images[i]
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    if mode == "L":  # grey -> the 3 channels are equal
        assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
    else:  # RGBA -> alpha dropped, colours kept exactly (PNG is lossless)
        np.testing.assert_array_equal(img, rgb(1))


@pytest.mark.parametrize("nested", [True, False], ids=["ROOT-SPLIT-dirs", "flat"])
def test_floodnet_layout_maps_classes(tmp_path, nested):
    all_values = (np.arange(H * W) % 10).reshape(H, W).astype(np.uint8)
    root = make_floodnet(tmp_path / "floodnet", masks={"6467": all_values})
    if not nested:  # FloodNet also ships as ROOT/train-org-img etc.
        flat = tmp_path / "flat"
        for split in ("train", "val"):
            for sub in (f"{split}-org-img", f"{split}-label-img"):
                shutil.copytree(root / split / sub, flat / sub)
        root = flat
    ds = load_dataset(root)
    assert ds.layout == "floodnet"
    assert ds.train.names == ["6467", "6468"]  # the _lab suffix is stripped from mask names
    assert ds.val.names == ["7001"]
    mask = ds.train.masks[0]
    assert mask.dtype == np.uint8 and mask.shape == (H, W)
    expected = np.array([0, 1, 1, 2, 2, 3, 4, 5, 6, 7], np.uint8)[all_values]
    np.testing.assert_array_equal(mask, expected)
    assert set(np.unique(mask)) == set(range(8))
    for m in ds.train.masks + ds.val.masks:
        assert m.max() <= 7


def test_floodnet_label_10_is_an_error(tmp_path):
    bad = labels(0, n=10)
    bad[3, 4] = 10
    root = make_floodnet(tmp_path / "floodnet", masks={"6468": bad})
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    msg = str(err.value)
    assert str(root / "train" / "train-label-img" / "6468_lab.png") in msg
    assert "10" in msg and "label value" in msg


def test_floodnet_grey_rgb_mask_is_mapped_like_l_mask(tmp_path):
    all_values = (np.arange(H * W) % 10).reshape(H, W).astype(np.uint8)
    root = make_floodnet(tmp_path / "floodnet",
                         masks={"6467": np.stack([all_values] * 3, axis=-1)})
    ds = load_dataset(root)
    np.testing.assert_array_equal(ds.train.masks[0], FLOODNET_TO_OURS[all_values])


def test_16bit_mask_out_of_range_is_an_error(tiny):
    mask = labels(0).astype(np.uint16)
    mask[0, 0] = 263  # 263 % 256 == 7, a valid-looking class after a uint8 cast
    path = tiny / "train" / "mask" / "img_0.png"
    Image.fromarray(mask).save(path)
    assert Image.open(path).mode.startswith("I")
    with pytest.raises(DatasetError, match="263"):
        load_dataset(tiny)


# ----------------------------------------------------------------------------- bad cases
# Each case breaks a good tiny dataset (or makes a bad --data) and returns
# (path passed to load_dataset, offending file/folder, substrings naming the problem).


def _missing(root: Path):
    shutil.rmtree(root)
    return root, root, ["does not exist"]


def _is_a_file(root: Path):
    shutil.rmtree(root)
    root.write_text("not a dataset")
    return root, root, ["is a file"]


def _empty_folder(root: Path):
    shutil.rmtree(root)
    root.mkdir()
    return root, root, ["no known dataset layout"]


def _split_without_images(root: Path):
    for sub in ("image", "mask"):
        for p in (root / "test" / sub).iterdir():
            p.unlink()
    return root, root / "test" / "image", ["no images"]


def _image_without_mask(root: Path):
    (root / "test" / "mask" / "val_1.png").unlink()
    return root, root / "test" / "image" / "val_1.jpg", ["has no mask"]


def _mask_without_image(root: Path):
    path = write_mask(root / "train" / "mask" / "orphan.png", labels(5))
    return root, path, ["has no image"]


def _corrupt_jpeg(root: Path):
    path = root / "train" / "image" / "img_1.jpg"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return root, path, ["cannot decode image", "corrupt"]


def _truncated_jpeg_100_bytes(root: Path):
    path = root / "train" / "image" / "img_1.jpg"
    path.write_bytes(path.read_bytes()[:100])
    return root, path, ["cannot decode image", "truncated"]


def _truncated_jpeg_half(root: Path):  # headers intact, scan data cut: fails only on load()
    path = root / "train" / "image" / "img_1.jpg"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return root, path, ["cannot decode image", "truncated"]


def _mask_size_differs(root: Path):
    path = write_mask(root / "train" / "mask" / "img_2.png", labels(2, h=H, w=W - 6))
    return root, path, [f"mask is {W - 6}x{H}", f"{W}x{H}", "img_2.jpg"]


def _label_42(root: Path):
    mask = labels(0)
    mask[10, 10] = 42
    path = write_mask(root / "test" / "mask" / "val_0.png", mask)
    return root, path, ["42", "label value"]


def _colour_coded_mask(root: Path):
    colour = np.zeros((H, W, 3), np.uint8)
    colour[:, : W // 2] = (255, 0, 0)
    colour[:, W // 2:] = (0, 128, 0)
    path = write_mask(root / "train" / "mask" / "img_0.png", colour)
    return root, path, ["colour-coded"]


BAD_CASES = {
    "data-missing": _missing,
    "data-is-file": _is_a_file,
    "empty-folder-no-layout": _empty_folder,
    "split-without-images": _split_without_images,
    "image-without-mask": _image_without_mask,
    "mask-without-image": _mask_without_image,
    "corrupt-jpeg": _corrupt_jpeg,
    "truncated-jpeg-100-bytes": _truncated_jpeg_100_bytes,
    "truncated-jpeg-half": _truncated_jpeg_half,
    "mask-size-differs": _mask_size_differs,
    "mask-label-42": _label_42,
    "colour-coded-rgb-mask": _colour_coded_mask,
}


@pytest.mark.parametrize("breaker", list(BAD_CASES.values()), ids=list(BAD_CASES))
def test_bad_dataset_raises_naming_file_and_problem(tiny, breaker):
    data_arg, offending, problem = breaker(tiny)
    with pytest.raises(DatasetError) as err:
        load_quietly(data_arg)
    msg = str(err.value)
    assert str(offending) in msg, msg
    for text in problem:
        assert text in msg, f"{text!r} not in {msg!r}"


def test_several_problems_are_listed_in_one_error(tiny):
    cases = [_image_without_mask, _mask_without_image, _corrupt_jpeg, _mask_size_differs,
             _label_42, _colour_coded_mask]
    expected = [case(tiny) for case in cases]
    with pytest.raises(DatasetError) as err:
        load_quietly(tiny)
    msg = str(err.value)
    assert f"{len(cases)} problem(s)" in msg, msg
    for _, offending, problem in expected:
        assert str(offending) in msg, msg
        for text in problem:
            assert text in msg, f"{text!r} not in {msg!r}"
    # one line per problem, each naming its own file
    lines = [line.strip() for line in msg.splitlines()[1:]]
    assert len(lines) == len(cases)
    for _, offending, _ in expected:
        assert sum(line.startswith(str(offending)) for line in lines) == 1, lines


def test_no_training_data_is_returned_after_errors(tiny):
    """A broken file anywhere fails the whole load: nothing partial reaches the trials."""
    _label_42(tiny)
    with pytest.raises(DatasetError):
        load_dataset(tiny)
    assert os.path.isdir(tiny)  # validation never deletes or rewrites user data
    assert sorted(p.name for p in (tiny / "test" / "mask").iterdir()) == ["val_0.png", "val_1.png"]


def test_loading_only_the_validation_split_decodes_only_its_files(decodes, tiny):
    before = decodes.count
    ds = load_dataset(tiny, splits=("val",))
    assert decodes.count - before == 2 * 2  # 2 val images + their masks
    assert len(ds.val) == 2 and len(ds.train) == 0
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset(tiny, splits=("test",))
