import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segmodels.classes import CLASS_NAMES
from segmodels.data import synthetic
from segmodels.data.constants import SYNTHETIC_MARKER
from segmodels.data.synthetic import (
    ensure_generated,
    generate,
    is_synthetic,
    read_marker,
    render_scene,
)

SMALL = {"n_train": 6, "n_test": 2, "height": 64, "width": 96, "seed": 3}
# 24 images: large enough that the rare classes (vehicle, pool) reliably show up.
MEDIUM = {"n_train": 18, "n_test": 6, "height": 128, "width": 160, "seed": 0}


def _load(root: Path, split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    images, masks = [], []
    for p in sorted((root / split / "image").glob("*.jpg")):
        images.append(np.asarray(Image.open(p)))
        masks.append(np.asarray(Image.open(root / split / "mask" / f"{p.stem}.png")))
    return images, masks


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("small"), **SMALL)


@pytest.fixture(scope="module")
def medium(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("medium"), **MEDIUM)


def test_layout_and_formats(small):
    for split, n in (("train", 6), ("test", 2)):
        images = sorted((small / split / "image").iterdir())
        masks = sorted((small / split / "mask").iterdir())
        assert [p.name for p in images] == [f"{i:06d}.jpg" for i in range(n)]
        assert [p.name for p in masks] == [f"{i:06d}.png" for i in range(n)]
        for ip, mp in zip(images, masks, strict=True):
            with Image.open(ip) as im, Image.open(mp) as m:
                assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (96, 64))
                assert (m.format, m.mode, m.size) == ("PNG", "L", (96, 64))
                assert np.asarray(m).max() < len(CLASS_NAMES)
    marker = json.loads((small / SYNTHETIC_MARKER).read_text())
    assert marker == {"generator": "segsweep.synthetic", "version": 1, **SMALL}
    assert read_marker(small) == marker and is_synthetic(small)
    assert not (small / ".synthetic-partial").exists()


def test_render_scene_shapes_and_reproducibility():
    img, mask = render_scene(np.random.default_rng([5, 0, 1]), 70, 90)
    assert img.shape == (70, 90, 3) and img.dtype == np.uint8
    assert mask.shape == (70, 90) and mask.dtype == np.uint8
    img2, mask2 = render_scene(np.random.default_rng([5, 0, 1]), 70, 90)
    assert np.array_equal(img, img2) and np.array_equal(mask, mask2)


def test_deterministic_per_seed(tmp_path, small):
    again = generate(tmp_path / "again", **SMALL)
    other = generate(tmp_path / "other", **{**SMALL, "seed": 4})
    for split in ("train", "test"):
        for p in sorted((small / split / "mask").iterdir()):
            assert p.read_bytes() == (again / split / "mask" / p.name).read_bytes()
        a, b, c = _load(small, split), _load(again, split), _load(other, split)
        assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True))
        assert not any(np.array_equal(x, y) for x, y in zip(a[1], c[1], strict=True))
    # Each image depends only on (seed, split, index), not on how many were generated.
    fewer = generate(tmp_path / "fewer", **{**SMALL, "n_train": 2})
    name = "000001.png"
    assert (fewer / "train/mask" / name).read_bytes() == (small / "train/mask" / name).read_bytes()


def test_class_coverage_and_imbalance(medium):
    masks = np.stack(_load(medium, "train")[1] + _load(medium, "test")[1])
    freq = np.bincount(masks.ravel(), minlength=8) / masks.size
    assert np.all(freq > 0), dict(zip(CLASS_NAMES, freq, strict=True))
    assert freq[5] < 0.05 and freq[6] < 0.05  # vehicle, pool are rare
    assert freq[[0, 2, 4, 7]].sum() > 0.6  # background, road, tree, grass dominate
    has_vehicle = np.mean([(m == 5).any() for m in masks])
    assert has_vehicle > 0.5


def test_not_a_colour_lookup(medium):
    """A per-pixel nearest-class-mean colour classifier must be far from perfect."""
    def pixels(split):
        images, masks = _load(medium, split)
        x = np.concatenate([im.reshape(-1, 3) for im in images]).astype(np.float32)
        return x, np.concatenate([m.ravel() for m in masks])

    x, y = pixels("train")
    means = np.stack([x[y == c].mean(0) for c in range(len(CLASS_NAMES))])
    xt, yt = pixels("test")
    pred = np.argmin(((xt[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == yt).mean() < 0.9


def test_ensure_generated_is_cached(tmp_path, monkeypatch):
    root = ensure_generated(tmp_path / "data", **SMALL)
    probe = root / "train/mask/000000.png"
    before = probe.stat().st_mtime_ns, (root / SYNTHETIC_MARKER).stat().st_mtime_ns

    def boom(*args, **kwargs):
        raise AssertionError("should not regenerate")

    monkeypatch.setattr(synthetic, "generate", boom)
    assert ensure_generated(root, **SMALL) == root
    assert (probe.stat().st_mtime_ns, (root / SYNTHETIC_MARKER).stat().st_mtime_ns) == before


def test_ensure_generated_regenerates_on_change(tmp_path):
    root = ensure_generated(tmp_path / "data", **SMALL)
    ensure_generated(root, **{**SMALL, "n_train": 3, "seed": 9})
    assert read_marker(root)["n_train"] == 3 and read_marker(root)["seed"] == 9
    assert len(list((root / "train/image").iterdir())) == 3  # stale files removed
    assert len(list((root / "train/mask").iterdir())) == 3


def test_recovers_from_partial_run(tmp_path):
    root = generate(tmp_path / "data", **SMALL)
    (root / SYNTHETIC_MARKER).unlink()  # as if the process died before the marker
    (root / ".synthetic-partial").touch()
    assert not is_synthetic(root) and read_marker(root) is None
    ensure_generated(root, **SMALL)
    assert is_synthetic(root)


def test_refuses_to_overwrite_foreign_data(tmp_path):
    real = tmp_path / "real"
    (real / "train" / "image").mkdir(parents=True)
    (real / "train" / "image" / "6336.jpg").write_bytes(b"not ours")
    with pytest.raises(FileExistsError):
        ensure_generated(real, **SMALL)
    assert (real / "train" / "image" / "6336.jpg").exists()


@pytest.mark.parametrize(
    "bad", [{"n_train": 0}, {"n_test": 0}, {"height": 63}, {"width": 10}],
)
def test_bad_arguments(tmp_path, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        generate(tmp_path, **{**SMALL, **bad})
    with pytest.raises(ValueError):
        ensure_generated(tmp_path, **{**SMALL, **bad})
    assert not is_synthetic(tmp_path)


def test_cache_folder_follows_segsweep_cache(tmp_path):
    """README: without --data the dataset is generated under $SEGSWEEP_CACHE/synthetic."""
    probe = "from segmodels.data.synthetic import SYNTHETIC_DIR; print(SYNTHETIC_DIR)"
    env = {**os.environ, "SEGSWEEP_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert Path(out) == tmp_path / "cache" / "synthetic"
    env.pop("SEGSWEEP_CACHE")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert Path(out) == Path("~/.cache/segsweep/synthetic").expanduser()
