"""The predictor reads an image as training did: the same pixels as segmodels.data's decoder
for the files of other tools and systems, and one error naming a file it cannot read."""

import numpy as np
import pytest
from PIL import Image

from segmodels.data.image_io import decode_image
from segsweep_predict import ImageError, read_image


def _files(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    files = {}
    files["rgb.png"] = Image.fromarray(rgb)
    files["grey.png"] = Image.fromarray(rgb[..., 0], "L")
    files["rgba.png"] = Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA")
    files["palette.png"] = Image.fromarray(rgb).convert("P")
    files["grey16.png"] = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)  # mode I;16
    paths = []
    for name, img in files.items():
        img.save(tmp_path / name)
        paths.append(tmp_path / name)
    rotated = Image.fromarray(rgb)
    exif = rotated.getexif()
    exif[0x0112] = 6  # camera held upright: viewers turn it 90 degrees clockwise
    rotated.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    paths.append(tmp_path / "rotated.jpg")
    return paths


def test_the_predictor_reads_the_pixels_training_read(tmp_path):
    for path in _files(tmp_path):
        expected = decode_image(path).array
        got = read_image(path)
        assert got.dtype == np.uint8 and got.shape == expected.shape, path.name
        assert np.array_equal(got, expected), path.name
    assert read_image(tmp_path / "rotated.jpg").shape == (40, 30, 3)  # turned, as viewers do


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"id,label\n1,road\n", "not an image file Pillow can read"),
    ("truncated", "cannot decode it as an image .* corrupt or truncated"),
])
def test_an_unreadable_file_is_one_error_naming_it(tmp_path, content, message):
    path = tmp_path / "bad.png"
    if content == "truncated":
        Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 7).save(path)
        content = path.read_bytes()[:-40]
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as refused:
        read_image(path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)
