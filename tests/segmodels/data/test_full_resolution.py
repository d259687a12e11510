"""Full-resolution datasets: shrink on load, decode in worker processes, cache the
shrunk arrays, refuse before decoding what will not fit in memory. Every check of the data
(test_data_trust.py) still holds at any size, with any number of processes."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from data_helpers import TRAIN_NAMES, H, W, labels, load_quietly, rgb, write_mask
from PIL import Image

from segmodels.data import DatasetError, load_dataset, memory_check
from segmodels.data import cache as data_cache
from segmodels.data.image_size import fit_within, parse_image_size
from segmodels.errors import ConfigError

# The tiny dataset's 56x40 images (W x H), shrunk 4 times.
SMALL = (W // 4, H // 4)


def load(root: Path, cache: Path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean dataset loads without any warning
        return load_dataset(root, cache_dir=cache, **kwargs)


def blocks(h: int, w: int, block: int, channels: int, seed: int = 0) -> np.ndarray:
    """An image of ``block`` x ``block`` squares of one colour each."""
    small = np.random.default_rng(seed).integers(0, 256, (h // block, w // block, channels),
                                                 dtype=np.uint8)
    big = np.repeat(np.repeat(small, block, axis=0), block, axis=1)
    return big[..., 0] if channels == 1 else big


# ------------------------------------------------------------------------------ image size


@pytest.mark.parametrize("text, size", [("1000x750", (1000, 750)), (" 640 X 480 ", (640, 480))])
def test_the_image_size_flag_reads_width_x_height(text, size):
    assert parse_image_size(text) == size


@pytest.mark.parametrize("text", ["1000", "1000x", "x750", "0x750", "1000*750", "-1x5", "big"])
def test_a_bad_image_size_says_the_syntax(text):
    with pytest.raises(ConfigError, match="WIDTHxHEIGHT|at least 1 pixel"):
        parse_image_size(text)


@pytest.mark.parametrize("size, box, fitted", [
    ((4000, 3000), (1000, 750), (1000, 750)),  # FloodNet
    ((3000, 4000), (1000, 750), (562, 750)),  # portrait: aspect kept, fits the box
    ((4000, 3000), (2000, 2000), (2000, 1500)),
    ((800, 600), (1000, 750), (800, 600)),  # fits already: never enlarged
    ((4000, 3000), None, (4000, 3000)),
])
def test_an_image_is_shrunk_to_fit_the_box_keeping_its_aspect(size, box, fitted):
    assert fit_within(*size, box) == fitted


def test_images_are_area_averaged_and_masks_keep_drawn_class_ids(tiny, tmp_path):
    """4x4 blocks of one colour and one class: shrunk 4 times, each block is one pixel of
    exactly its colour (area) and its class (nearest), and no other class appears."""
    image, mask = blocks(H, W, 4, 3), blocks(H, W, 4, 1, seed=1) % 8
    (tiny / "train" / "image" / "img_0.jpg").unlink()
    Image.fromarray(image).save(tiny / "train" / "image" / "img_0.png")
    write_mask(tiny / "train" / "mask" / "img_0.png", mask)
    ds = load(tiny, tmp_path / "cache", image_size=SMALL)
    i = ds.train.names.index("img_0")
    np.testing.assert_array_equal(ds.train.images[i], image[::4, ::4])
    np.testing.assert_array_equal(ds.train.masks[i], mask[::4, ::4])
    stripes = np.zeros((H, W), np.uint8)  # 1-px stripes of 0 and 7: area would make 3s and 4s
    stripes[:, ::2] = 7
    write_mask(tiny / "train" / "mask" / "img_1.png", stripes)
    ds = load(tiny, tmp_path / "cache", image_size=SMALL)
    assert set(np.unique(ds.train.masks[ds.train.names.index("img_1")])) <= {0, 7}
    for split in (ds.train, ds.val):
        assert {img.shape for img in split.images} == {(SMALL[1], SMALL[0], 3)}
        assert {m.shape for m in split.masks} == {(SMALL[1], SMALL[0])}
    assert ds.smallest_side == SMALL[1]
    assert ds.image_size == SMALL
    assert f"loaded to fit {SMALL[0]}x{SMALL[1]} (5 shrunk, from up to {W}x{H})" in ds.describe()


def test_a_mask_a_few_pixels_off_is_refused_though_both_shrink_to_one_size(tiny, tmp_path):
    path = write_mask(tiny / "train" / "mask" / "img_2.png", labels(2, h=H, w=W - 2))
    assert fit_within(W - 2, H, SMALL) == fit_within(W, H, SMALL)  # the shrunk sizes agree
    with pytest.raises(DatasetError, match=f"mask is {W - 2}x{H}") as err:
        load_quietly(tiny, image_size=SMALL, cache_dir=tmp_path / "cache")
    assert str(path) in str(err.value)


def test_a_turned_camera_photo_is_shrunk_as_viewers_show_it(tiny, tmp_path):
    shown = blocks(W, H, 4, 3)  # portrait as shown: H wide, W high
    stored = np.ascontiguousarray(np.rot90(shown, 1))  # EXIF 6 turns it back 90° clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    (tiny / "train" / "image" / "img_0.jpg").unlink()
    Image.fromarray(stored).save(tiny / "train" / "image" / "img_0.png", exif=exif)
    write_mask(tiny / "train" / "mask" / "img_0.png", labels(0, h=W, w=H))
    with pytest.warns(UserWarning, match="EXIF orientation 6"):
        ds = load_dataset(tiny, image_size=SMALL, cache_dir=tmp_path / "cache")
    i = ds.train.names.index("img_0")
    fitted = fit_within(H, W, SMALL)
    assert ds.train.images[i].shape == (fitted[1], fitted[0], 3)
    assert ds.train.masks[i].shape == (fitted[1], fitted[0])


# ------------------------------------------------------------------------- worker processes


def test_worker_processes_decode_exactly_what_this_process_decodes(decodes, tiny, tmp_path):
    """Same arrays, names, notes and ignore counts; the decodes done in the workers are
    counted here, one per file."""
    Image.open(tiny / "train" / "image" / "img_1.jpg").convert("L").save(
        tiny / "train" / "image" / "img_1.jpg")  # a conversion note
    mask = labels(0)
    mask[:3] = 255  # unlabelled pixels
    write_mask(tiny / "train" / "mask" / "img_0.png", mask)
    loads = {}
    for workers in (1, 2):
        before = decodes.count
        loads[workers] = load_quietly(tiny, workers=workers)
        assert decodes.count - before == (3 + 2) * 2, workers
    one, two = loads[1], loads[2]
    assert one.notes == two.notes and len(one.notes) == 2, two.notes
    for a, b in ((one.train, two.train), (one.val, two.val)):
        assert a.names == b.names and a.ignored_pixels == b.ignored_pixels
        assert a.full_sizes == b.full_sizes == [(W, H)] * len(a)
        for x, y in zip(a.images + a.masks, b.images + b.masks):
            np.testing.assert_array_equal(x, y)


def test_worker_processes_report_every_problem_in_one_error(tiny):
    (tiny / "train" / "image" / "img_0.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    bad = labels(1)
    bad[0, 0] = 42
    write_mask(tiny / "train" / "mask" / "img_1.png", bad)
    write_mask(tiny / "test" / "mask" / "val_0.png", labels(3, h=H - 1))
    messages = []
    for workers in (1, 2):
        with pytest.raises(DatasetError) as err:
            load_quietly(tiny, workers=workers)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "3 problem(s)" in messages[1]
    for text in ("img_0.jpg", "cannot decode image", "img_1.png", "42", "val_0.png",
                 f"mask is {W}x{H - 1}"):
        assert text in messages[1], messages[1]


# ----------------------------------------------------------------------------------- cache


def test_a_second_load_at_the_same_size_decodes_nothing(decodes, tiny, tmp_path):
    Image.open(tiny / "train" / "image" / "img_1.jpg").convert("L").save(
        tiny / "train" / "image" / "img_1.jpg")
    cache = tmp_path / "cache"
    before = decodes.count
    first = load_quietly(tiny, image_size=SMALL, cache_dir=cache)
    assert decodes.count - before == (3 + 2) * 2
    assert len(list(cache.glob("*.npz"))) == 2  # one per split
    before = decodes.count
    with pytest.warns(UserWarning, match="converted to RGB"):  # notes come back with the arrays
        second = load_dataset(tiny, image_size=SMALL, cache_dir=cache)
    assert decodes.count == before
    assert second.notes == first.notes and second.describe() == first.describe()
    for a, b in ((first.train, second.train), (first.val, second.val)):
        assert a.names == b.names and a.full_sizes == b.full_sizes
        for x, y in zip(a.images + a.masks, b.images + b.masks):
            np.testing.assert_array_equal(x, y)
    # The report's validation-only load is served by the same cache.
    before = decodes.count
    val = load_quietly(tiny, splits=("val",), image_size=SMALL, cache_dir=cache)
    assert decodes.count == before and val.val.names == first.val.names


@pytest.mark.parametrize("change", ["edit a file", "add a pair", "another size",
                                    "same size and time"])
def test_a_changed_dataset_or_size_is_decoded_again(decodes, tiny, tmp_path, change):
    cache = tmp_path / "cache"
    stored = tiny / "train" / "mask" / "img_0.png"
    if change == "same size and time":  # uncompressed: any content of its shape, same size
        Image.fromarray(np.asarray(Image.open(stored))).save(stored, compress_level=0)
    load(tiny, cache, image_size=SMALL)
    size = SMALL
    if change == "edit a file":
        path = tiny / "train" / "mask" / "img_0.png"
        write_mask(path, labels(7))
        os.utime(path, ns=(1, 1))  # whatever the clock says, the file is not what was cached
    elif change == "same size and time":  # cp -p, rsync -t, tar x: only ctime tells
        stat = stored.stat()
        Image.fromarray(labels(7)).save(stored, compress_level=0)
        assert stored.stat().st_size == stat.st_size
        os.utime(stored, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    elif change == "add a pair":
        Image.fromarray(rgb(9)).save(tiny / "train" / "image" / "img_9.jpg")
        write_mask(tiny / "train" / "mask" / "img_9.png", labels(9))
    else:
        size = (W // 2, H // 2)
    before = decodes.count
    ds = load(tiny, cache, image_size=size)
    decoded = decodes.count - before
    assert decoded == {"edit a file": 3 * 2, "add a pair": 4 * 2, "another size": 10,
                       "same size and time": 3 * 2}[change]
    if change in ("edit a file", "same size and time"):
        np.testing.assert_array_equal(ds.train.masks[0], labels(7)[2::4, 2::4])


def test_loads_at_full_size_are_not_cached(tiny, tmp_path):
    load(tiny, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_the_cache_keeps_under_its_cap_dropping_the_least_recently_used(decodes, tmp_path,
                                                                        monkeypatch):
    from data_helpers import make_tiny

    roots = [make_tiny(tmp_path / f"data{i}") for i in range(3)]
    cache = tmp_path / "cache"
    load(roots[0], cache, image_size=SMALL)
    one = sum(size for _, size in data_cache.entries(cache))  # a dataset's two splits
    monkeypatch.setenv(data_cache.CAP_ENV, str(2.2 * one / 1e9))  # room for two, not three
    load(roots[1], cache, image_size=SMALL)
    load(roots[0], cache, image_size=SMALL)  # used again: now the most recent
    load(roots[2], cache, image_size=SMALL)  # evicts roots[1]'s splits
    assert sum(size for _, size in data_cache.entries(cache)) <= 2.2 * one
    before = decodes.count
    load(roots[0], cache, image_size=SMALL)
    assert decodes.count == before
    load(roots[1], cache, image_size=SMALL)
    assert decodes.count - before == 10


def test_the_cache_can_be_turned_off_and_cleared(tiny, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv(data_cache.CAP_ENV, "0")
    load(tiny, cache, image_size=SMALL)
    assert not cache.exists()
    monkeypatch.setenv(data_cache.CAP_ENV, "1")
    monkeypatch.setenv("SEGSWEEP_CACHE", str(tmp_path))  # the default folder: tmp_path/decoded
    load_quietly(tiny, image_size=SMALL)
    assert len(data_cache.entries()) == 2
    assert data_cache.main([]) == 0
    assert "2 cached split(s)" in capsys.readouterr().out
    assert data_cache.main(["--clear"]) == 0
    assert data_cache.entries() == [] and "cleared" in capsys.readouterr().out
    monkeypatch.setenv(data_cache.CAP_ENV, "lots")
    with pytest.raises(ConfigError, match=data_cache.CAP_ENV):
        load(tiny, cache, image_size=SMALL)


def test_a_damaged_cache_file_is_decoded_again_with_a_warning(decodes, tiny, tmp_path):
    cache = tmp_path / "cache"
    load(tiny, cache, image_size=SMALL)
    for path, _ in data_cache.entries(cache):
        path.write_bytes(path.read_bytes()[:500])  # a copy cut short
    before = decodes.count
    with pytest.warns(UserWarning, match="damaged cache"):
        ds = load_dataset(tiny, image_size=SMALL, cache_dir=cache)
    assert decodes.count - before == 10 and len(ds.train) == 3
    assert load(tiny, cache, image_size=SMALL).train.names == sorted(TRAIN_NAMES)


def test_a_cache_that_cannot_be_written_never_fails_the_load(tiny, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    with pytest.warns(UserWarning, match="not cached"):
        ds = load_dataset(tiny, image_size=SMALL, cache_dir=blocked / "cache")
    assert len(ds.train) == 3


# ---------------------------------------------------------------------------- memory check


def test_a_dataset_that_will_not_fit_in_memory_is_refused_before_decoding(decodes, tiny, tmp_path,
                                                                          monkeypatch):
    decoded = (3 + 2) * W * H * 4  # bytes of the arrays at full size
    monkeypatch.setattr(memory_check, "available_memory", lambda: decoded // 2)
    before = decodes.count
    with pytest.raises(DatasetError) as err:
        load_dataset(tiny, workers=1, cache_dir=tmp_path / "cache")
    assert decodes.count == before  # refused before any decoding
    msg = str(err.value)
    assert str(tiny) in msg and f"5 images of up to {W}x{H}" in msg, msg
    assert "KiB is available" in msg and "--image-size 28x20" in msg, msg
    # with the size it names, the same load passes
    assert len(load(tiny, tmp_path / "cache", image_size=(28, 20), workers=1).train) == 3


def test_the_estimate_counts_the_arrays_and_one_full_image_per_process():
    sizes = [(4000, 3000)] * 1445 + [(4000, 3000)] * 450  # FloodNet's originals
    full = memory_check.estimate(sizes, None, workers=2)
    assert full.decoded_bytes / memory_check.GIB == pytest.approx(84.7, abs=0.1)
    assert full.working_bytes == 2 * 4000 * 3000 * 4
    shrunk = memory_check.estimate(sizes, (1000, 750), workers=2)
    assert shrunk.decoded_bytes == full.decoded_bytes // 16
    assert memory_check.suggest_size(sizes, 2, 16 * memory_check.GIB) == (1000, 750)
    assert memory_check.suggest_size(sizes, 2, 10**6) is None


def test_unknown_available_memory_skips_the_check(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(memory_check, "available_memory", lambda: None)
    assert len(load(tiny, tmp_path / "cache").train) == 3


def test_a_bad_image_size_flag_is_one_line_before_any_work(tmp_path, capsys):
    import tune_app

    code = tune_app.main(["--image-size", "1000", "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: --image-size '1000': expected WIDTHxHEIGHT"), err
    assert not (tmp_path / "runs").exists()
