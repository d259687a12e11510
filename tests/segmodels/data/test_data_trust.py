"""Data you can trust: nothing an image viewer shows differently is trained silently.

Each case is either refused with one ``DatasetError`` naming the file and what really happened,
or converted with a note, the decoded arrays checked against the truth. Silent cases first.
"""

from __future__ import annotations

import html
import json
import os
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import H, W, labels, load_quietly, make_floodnet, rgb, write_jpeg, write_mask
from PIL import Image

from segmodels import metrics
from segmodels.classes import IGNORE_INDEX, NUM_CLASSES
from segmodels.data import DatasetError, load_dataset


def exif(orientation: int) -> Image.Exif:
    tags = Image.Exif()
    tags[0x0112] = orientation
    return tags


def refusal(root: Path) -> str:
    with pytest.raises(DatasetError) as err:
        load_quietly(root)
    return str(err.value)


def index(split, name: str) -> int:
    return split.names.index(name)


# ----------------------------------------------------------------------------- silent cases


def test_a_jpeg_mask_under_a_png_name_is_refused_saying_what_it_is(tiny):
    path = tiny / "train" / "mask" / "img_0.png"
    bands = np.repeat((np.arange(W) * 8 // W).astype(np.uint8)[None], H, axis=0)
    Image.fromarray(bands).save(path, format="JPEG", quality=90)
    noisy = np.asarray(Image.open(path))
    assert noisy.max() < 8 and (noisy != bands).any()  # the silent case: classes never drawn
    msg = refusal(tiny)
    assert str(path) in msg and "really a JPEG" in msg and "lossless" in msg, msg


# stored pixels -> what viewers show, for each EXIF orientation tested
TURNED = {3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, -1), 8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize("orientation", list(TURNED))
def test_exif_orientation_is_applied_so_the_mask_drawn_on_the_shown_view_fits(tiny, orientation):
    # A square image: a quarter turn keeps its size, so nothing but the tag tells the mask apart.
    shown, mask = rgb(5, H, H), labels(5, H, H)
    stored = np.ascontiguousarray(np.rot90(shown, {3: 2, 6: 1, 8: -1}[orientation]))
    np.testing.assert_array_equal(TURNED[orientation](stored), shown)
    (tiny / "train" / "image" / "img_0.jpg").unlink()
    path = tiny / "train" / "image" / "img_0.png"  # lossless, so the truth compares exactly
    Image.fromarray(stored).save(path, exif=exif(orientation))
    write_mask(tiny / "train" / "mask" / "img_0.png", mask)
    with pytest.warns(UserWarning, match="EXIF orientation"):
        ds = load_dataset(tiny)
    i = index(ds.train, "img_0")
    np.testing.assert_array_equal(ds.train.images[i], shown)
    np.testing.assert_array_equal(ds.train.masks[i], mask)
    assert any(path.name in n and f"EXIF orientation {orientation}" in n for n in ds.notes)


def test_a_camera_jpeg_turned_by_exif_is_seen_the_same_by_training_and_the_report(tiny):
    from analysis.dataset import load_validation

    shown = np.kron(rgb(7, 5, 7), np.ones((8, 8, 1), np.uint8))  # flat 8x8 blocks: JPEG-stable
    path = tiny / "test" / "image" / "val_0.jpg"
    upside_down = np.ascontiguousarray(shown[::-1, ::-1])
    Image.fromarray(upside_down).save(path, quality=95, subsampling=0, exif=exif(3))
    full = load_quietly(tiny)
    with pytest.warns(UserWarning, match="EXIF orientation 3"):
        val, _ = load_validation({"data": {"root": str(tiny)}})  # what the report decodes
    i = index(full.val, "val_0")
    for image in (full.val.images[i], val.images[i]):
        assert np.abs(image.astype(int) - shown).mean() < 2  # JPEG noise only
        assert np.abs(image.astype(int) - upside_down).mean() > 40
    np.testing.assert_array_equal(val.images[i], full.val.images[i])


def test_a_mask_drawn_on_the_unturned_pixels_is_refused_naming_exif(tiny):
    path = tiny / "train" / "image" / "img_1.jpg"
    Image.fromarray(rgb(1)).save(path, quality=95, exif=exif(6))  # shown 40 wide, 56 high
    msg = refusal(tiny)  # its mask is 56x40, the stored pixels
    mask = tiny / "train" / "mask" / "img_1.png"
    assert f"{mask}: mask is {W}x{H} but its image img_1.jpg is {H}x{W}" in msg, msg
    assert "EXIF orientation tag (6)" in msg and "exiftool -Orientation=1" in msg, msg


@pytest.mark.parametrize("folder, first, second", [
    ("image", "img_0.jpg", "img_0.png"),
    ("mask", "img_0.png", "img_0.PNG"),
])
def test_two_files_of_one_name_in_a_folder_are_refused_naming_both(tiny, folder, first, second):
    source = tiny / "train" / folder / first
    (tiny / "train" / folder / second).write_bytes(source.read_bytes())
    msg = refusal(tiny)
    assert "1 problem(s)" in msg, msg  # not also "image has no mask"
    line = msg.splitlines()[1]
    assert str(tiny / "train" / folder) in line and first in line and second in line, msg
    assert "same name" in line and "keep one" in line, msg


def test_a_16_bit_greyscale_image_is_scaled_not_clipped_to_white(tiny):
    values = (np.arange(H * W).reshape(H, W) * 37 % 65536).astype(np.uint16)
    (tiny / "train" / "image" / "img_1.jpg").unlink()
    path = tiny / "train" / "image" / "img_1.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    with pytest.warns(UserWarning, match="16-bit"):
        ds = load_dataset(tiny)
    grey = np.round(values / 257).astype(np.uint8)  # 65535 / 255 = 257
    np.testing.assert_array_equal(ds.train.images[index(ds.train, "img_1")],
                                  np.stack([grey] * 3, axis=-1))
    assert any(path.name in n and "scaled to 8 bits" in n for n in ds.notes), ds.notes


def test_transparent_mask_pixels_are_unlabelled_and_ignored(tiny):
    ids, alpha = labels(0), np.full((H, W), 255, np.uint8)
    alpha[:10] = 0  # "not annotated" in the drawing tool
    path = tiny / "train" / "mask" / "img_0.png"
    Image.fromarray(np.dstack([ids, ids, ids, alpha]), "RGBA").save(path)
    with pytest.warns(UserWarning) as record:
        ds = load_dataset(tiny)
    assert [str(w.message) for w in record] == ds.notes  # each note is said as a warning too
    expected = ids.copy()
    expected[:10] = IGNORE_INDEX
    np.testing.assert_array_equal(ds.train.masks[index(ds.train, "img_0")], expected)
    assert ds.train.ignored_pixels == 10 * W
    assert any(path.name in n and "transparent" in n for n in ds.notes), ds.notes


def test_a_palette_mask_with_a_transparent_index_is_unlabelled_there(tiny):
    ids = labels(0)
    path = tiny / "train" / "mask" / "img_0.png"
    mask = Image.fromarray(ids, "L").convert("P")
    mask.save(path, transparency=3)
    ds = load_quietly(tiny)
    np.testing.assert_array_equal(ds.train.masks[index(ds.train, "img_0")],
                                  np.where(ids == 3, IGNORE_INDEX, ids))


def test_semi_transparent_mask_pixels_are_refused(tiny):
    ids, alpha = labels(0), np.full((H, W), 255, np.uint8)
    alpha[0, :4] = 128  # anti-aliased edge
    path = tiny / "train" / "mask" / "img_0.png"
    Image.fromarray(np.dstack([ids, ids, ids, alpha]), "RGBA").save(path)
    msg = refusal(tiny)
    assert f"{path}: 4 pixel(s) of the mask are semi-transparent" in msg, msg


# ----------------------------------------------------------------------------- clear errors


def test_a_folder_that_cannot_be_listed_is_one_error_listing_every_problem(tiny, monkeypatch):
    locked, real = tiny / "train" / "mask", os.scandir

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    bad = labels(0)
    bad[0, 0] = 42
    other = write_mask(tiny / "test" / "mask" / "val_0.png", bad)
    msg = refusal(tiny)
    assert "2 problem(s)" in msg, msg
    assert f"{locked}: folder cannot be listed: permission denied" in msg, msg
    assert f"{other}: label value(s) 42" in msg, msg


def _unreadable(root: Path, monkeypatch):
    path, real = root / "train" / "image" / "img_0.jpg", Path.read_bytes

    def read_bytes(self):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return path, "cannot be read: permission denied"


def _dangling_link(root: Path, monkeypatch):
    path = root / "train" / "image" / "img_0.jpg"
    path.unlink()
    path.symlink_to(root / "gone.jpg")
    return path, "broken symbolic link"


def _folder_with_an_image_name(root: Path, monkeypatch):
    path = root / "train" / "image" / "img_9.jpg"
    path.mkdir()
    return path, "a folder named like an image file"


def _over_pillows_size_limit(root: Path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", H * W // 4)  # as if the image were huge
    return root / "test" / "image" / "val_0.jpg", "larger than Pillow's safety limit"


def _empty_file(root: Path, monkeypatch):
    path = root / "train" / "image" / "img_2.jpg"
    path.write_bytes(b"")
    return path, "empty (0 bytes)"


def _git_lfs_pointer(root: Path, monkeypatch):
    path = root / "train" / "image" / "img_2.jpg"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 81234\n")
    return path, "git lfs pull"


def _web_page(root: Path, monkeypatch):
    path = root / "train" / "mask" / "img_2.png"
    path.write_text("<!DOCTYPE html><html><body>Sign in to download</body></html>")
    return path, "a web page"


def _heic_photo(root: Path, monkeypatch):
    path = root / "train" / "image" / "img_2.jpg"
    path.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64))
    return path, "HEIC photo"


UNREADABLE = {"no-permission": _unreadable, "dangling-link": _dangling_link,
              "folder-named-like-an-image": _folder_with_an_image_name,
              "over-pillows-size-limit": _over_pillows_size_limit, "empty-file": _empty_file,
              "git-lfs-pointer": _git_lfs_pointer, "web-page": _web_page,
              "heic-photo": _heic_photo}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_an_unreadable_file_says_what_really_happened(tiny, monkeypatch, case):
    path, reason = UNREADABLE[case](tiny, monkeypatch)
    msg = refusal(tiny)
    assert f"{path}: " in msg and reason in msg, msg
    assert "corrupt" not in msg and "remove it" not in msg, msg  # the file may be fine


def test_files_operating_systems_leave_behind_are_skipped(tiny):
    for folder in ("image", "mask"):
        where = tiny / "train" / folder
        (where / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (where / f"._img_0{'.jpg' if folder == 'image' else '.png'}").write_bytes(b"\0\5\26\7")
        (where / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
        (where / ".ipynb_checkpoints").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset(tiny)
    assert ds.train.names == ["img_0", "img_1", "img_2"]


def test_names_that_differ_only_in_unicode_normalization_pair_up(tiny):
    composed = "caf\u00e9"
    decomposed = unicodedata.normalize("NFD", composed)  # as macOS writes names
    assert composed != decomposed
    write_jpeg(tiny / "train" / "image" / f"{decomposed}.jpg", rgb(3))
    write_mask(tiny / "train" / "mask" / f"{composed}.png", labels(3))
    ds = load_quietly(tiny)
    np.testing.assert_array_equal(ds.train.masks[index(ds.train, composed)], labels(3))


def _val_instead_of_test(root):
    (root / "test").rename(root / "val")
    return root, f"found {root / 'val'}: rename it to test"


def _images_instead_of_image(root):
    (root / "train" / "image").rename(root / "train" / "images")
    return root, f"found {root / 'train' / 'images'}: rename it to image"


def _masks_instead_of_mask(root):
    (root / "test" / "mask").rename(root / "test" / "masks")
    return root, f"found {root / 'test' / 'masks'}: rename it to mask"


def _mask_saved_as_jpeg(root):
    path = root / "train" / "mask" / "img_0.png"
    Image.open(path).save(path.with_suffix(".jpg"), quality=95)
    path.unlink()
    return root, "found img_0.jpg: masks must be lossless PNGs"


def _tiff_image(root):
    path = root / "train" / "image" / "img_0.jpg"
    Image.open(path).save(path.with_suffix(".tif"))
    path.unlink()
    return root, "found img_0.tif: .tif images are not read"


def _names_differ_in_case(root):
    path = root / "train" / "mask" / "img_0.png"
    path.rename(path.with_name("IMG_0.png"))
    return root, "IMG_0.png differs only in case"


def _the_folder_above(root):
    return root.parent, f"found a dataset in {root}: pass --data {root}"


def _one_split(root):
    return root / "train", "looks like one split"


NEAR_MISSES = {"val-instead-of-test": _val_instead_of_test,
               "images-instead-of-image": _images_instead_of_image,
               "masks-instead-of-mask": _masks_instead_of_mask,
               "mask-saved-as-jpeg": _mask_saved_as_jpeg, "tiff-image": _tiff_image,
               "names-differ-in-case": _names_differ_in_case,
               "the-folder-above": _the_folder_above, "one-split": _one_split}


@pytest.mark.parametrize("case", list(NEAR_MISSES))
def test_a_layout_that_is_almost_right_gets_a_hint_naming_the_fix(tiny, case):
    data_arg, hint = NEAR_MISSES[case](tiny)
    assert hint in refusal(data_arg)


# ----------------------------------------------------------------------------- ignore value


def test_255_marks_unlabelled_pixels_accepted_and_counted_per_split(tiny):
    val = labels(10)
    val[:5] = IGNORE_INDEX
    write_mask(tiny / "test" / "mask" / "val_0.png", val)
    train = labels(0)
    train[0, :3] = IGNORE_INDEX
    write_mask(tiny / "train" / "mask" / "img_0.png", train)
    with pytest.warns(UserWarning, match=f"mask value {IGNORE_INDEX} marks unlabelled pixels"):
        ds = load_dataset(tiny)
    assert (ds.train.ignored_pixels, ds.val.ignored_pixels) == (3, 5 * W)
    assert f"unlabelled (255, ignored): 3 train / {5 * W} val pixels" in ds.describe()
    np.testing.assert_array_equal(ds.val.masks[index(ds.val, "val_0")], val)
    other = labels(0)
    other[1, 1] = 254  # any other value outside the classes is still refused
    path = write_mask(tiny / "train" / "mask" / "img_1.png", other)
    assert f"{path}: label value(s) 254" in refusal(tiny)


def test_floodnet_masks_keep_255_unlabelled(tmp_path):
    raw = labels(0, n=10)
    raw[:2] = IGNORE_INDEX
    ds = load_quietly(make_floodnet(tmp_path / "floodnet", masks={"6467": raw}))
    assert (ds.train.masks[0][:2] == IGNORE_INDEX).all() and ds.train.masks[0][2:].max() < 8


def test_ignored_pixels_change_neither_the_loss_nor_the_metrics(tiny):
    from segmodels.training.config import TrialConfig
    from segmodels.training.module import SegmentationModule

    mask = labels(10)
    mask[:, :20] = IGNORE_INDEX
    write_mask(tiny / "test" / "mask" / "val_0.png", mask)
    target = torch.from_numpy(load_quietly(tiny).val.masks[0].astype(np.int64))[None]
    valid = target != IGNORE_INDEX
    logits = torch.randn(1, NUM_CLASSES, H, W, generator=torch.Generator().manual_seed(0))
    pred = logits.argmax(1)
    cm = metrics.confusion_matrix(pred, target, NUM_CLASSES, IGNORE_INDEX)
    assert torch.equal(cm, metrics.confusion_matrix(pred[valid], target[valid], NUM_CLASSES))
    assert int(cm.sum()) == int(valid.sum()) < target.numel()
    loss_fn = SegmentationModule(TrialConfig()).loss_fn  # what every trial trains with
    only_valid = torch.nn.functional.cross_entropy(logits.permute(0, 2, 3, 1)[valid],
                                                   target[valid])
    torch.testing.assert_close(loss_fn(logits, target), only_valid)
    scrambled = logits.clone()
    scrambled[..., :20] = -scrambled[..., :20]  # predictions on ignored pixels do not count
    assert torch.equal(metrics.confusion_matrix(scrambled.argmax(1), target, NUM_CLASSES,
                                                IGNORE_INDEX), cm)
    torch.testing.assert_close(loss_fn(scrambled, target), only_valid)


# ----------------------------------------------------------------------------- notes kept


def test_conversion_notes_are_stored_with_the_sweep_and_shown_in_its_report(tiny, tmp_path):
    from analysis.report import build_report
    from sweeps.grids import load_grid
    from sweeps.record import write_sweep_record
    from sweeps.settings import SweepSettings

    path = tiny / "train" / "image" / "img_1.jpg"
    Image.fromarray(rgb(1)[..., 0]).save(path, quality=95)  # greyscale: converted, noted
    ds = load_quietly(tiny)
    assert ds.notes
    settings = SweepSettings(grid="smoke", data=str(tiny), storage=str(tmp_path / "runs"),
                             name="t")
    write_sweep_record(settings, load_grid("smoke"), {}, ds, scheduler_reason="FIFO",
                       resources={"cpu": 1, "gpu": 0}, cluster={})
    record = json.loads((Path(settings.experiment_path()) / "segsweep.json").read_text())
    assert record["data"]["notes"] == ds.notes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report loads the validation split again
        page = build_report(settings.experiment_path(), tmp_path / "report",
                            examples=False).read_text()
    for note in ds.notes:
        assert html.escape(note) in page


# ------------------------------------------------------------- validation is not training


@pytest.mark.parametrize("how", ["copy", "symlink", "hardlink"])
def test_a_validation_image_that_is_a_training_image_is_refused_naming_both(tiny, how):
    train, val = tiny / "train" / "image" / "img_1.jpg", tiny / "test" / "image" / "val_0.jpg"
    val.unlink()
    {"copy": lambda: val.write_bytes(train.read_bytes()),
     "symlink": lambda: val.symlink_to(train),
     "hardlink": lambda: os.link(train, val)}[how]()
    text = refusal(tiny)
    assert "1 of 2 validation image(s) are also training images" in text
    assert "test/image/val_0.jpg = train/image/img_1.jpg" in text


def test_a_validation_folder_linked_to_the_training_folder_is_refused(tiny):
    import shutil

    shutil.rmtree(tiny / "test")
    (tiny / "test").symlink_to(tiny / "train", target_is_directory=True)
    assert "3 of 3 validation image(s) are also training images" in refusal(tiny)


def test_the_report_loading_validation_alone_is_not_asked_about_training(tiny):
    val = tiny / "test" / "image" / "val_0.jpg"
    val.unlink()
    val.write_bytes((tiny / "train" / "image" / "img_1.jpg").read_bytes())
    assert len(load_quietly(tiny, splits=("val",)).val) == 2  # nothing to compare with


def test_the_report_warns_when_the_validation_files_changed_since_the_sweep(tiny):
    from analysis.dataset import load_validation
    from segmodels.data import load_dataset

    recorded = load_quietly(tiny).files
    val = tiny / "test" / "image" / "val_0.jpg"
    val.write_bytes(val.read_bytes() + b"\0")
    _, notes = load_validation({"data": {"root": str(tiny)}}, recorded)
    assert any(n.startswith("WARNING: the validation files") and "val_0.jpg (size" in n
               for n in notes)
    _, quiet = load_validation({"data": {"root": str(tiny)}}, load_dataset(tiny).files)
    assert not any("WARNING" in n for n in quiet)


def test_a_file_name_with_a_newline_stays_on_its_line_of_the_error(tiny):
    (tiny / "train" / "image" / "bad\nname.jpg").write_bytes(b"")  # empty, and no mask
    text = refusal(tiny)
    lines = text.splitlines()
    assert any("bad\\nname.jpg" in line for line in lines)
    assert not any(line.startswith("name.jpg") for line in lines)
