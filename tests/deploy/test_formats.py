"""Every network of the named grids exports, with dynamic batch, height and width, and the
export computes what PyTorch computes (deploy.formats, deploy.check)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deploy.check import MIN_AGREEMENT, check_export
from deploy.formats import FORMATS, export_onnx, pixels, run_onnx, run_pytorch
from segmodels.models import create_model
from segmodels.training import TrialConfig, trial_settings
from sweeps.grids import NAMED_GRIDS, load_grid


def _networks() -> dict[str, TrialConfig]:
    """One configuration per distinct network of every named grid."""
    found: dict[str, TrialConfig] = {}
    for name in NAMED_GRIDS:
        grid = load_grid(name)
        for point in grid.by_label().values():
            cfg = TrialConfig.from_dict(trial_settings(grid.fixed, point))
            found.setdefault(cfg.architecture, cfg)
    return found


def _images(rng: np.random.Generator) -> list[np.ndarray]:
    """Sizes a deployment meets: not multiples of 32, landscape and portrait, one odd-sized."""
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in
            ((96, 128), (75, 131), (120, 88))]


@pytest.mark.slow
@pytest.mark.parametrize("architecture", sorted(_networks()))
def test_every_network_of_the_named_grids_exports_to_onnx_and_matches_pytorch(
        architecture, tmp_path):
    cfg = _networks()[architecture]
    torch.manual_seed(0)
    model = create_model(cfg.model, **{**cfg.model_args(), "pretrained": None}).eval()
    path = export_onnx(model, tmp_path / "model.onnx")
    images = _images(np.random.default_rng(0))
    masks = [np.zeros(image.shape[:2], np.uint8) for image in images]
    result = check_export(run_pytorch(model), run_onnx(path), images, masks)
    assert result.passed, result
    assert result.max_abs_logit_difference < 1e-3, result
    batch = np.concatenate([pixels(images[0])] * 2)  # the batch is dynamic too
    assert run_onnx(path)(batch).shape == (2, 8, 96, 128)


def test_torchscript_exports_the_course_unet_with_dynamic_sizes(tmp_path):
    model = create_model("unet", min_channels=4, max_channels=16).eval()
    spec = FORMATS["torchscript"]
    path = spec.write(model, tmp_path / spec.file)
    images = _images(np.random.default_rng(1))
    masks = [np.zeros(image.shape[:2], np.uint8) for image in images]
    result = check_export(run_pytorch(model), spec.run(path), images, masks)
    assert result.passed and result.max_abs_logit_difference < 1e-4, result


def test_the_course_unet_computes_what_it_computed_before_export_support():
    """Eager mode keeps its Python branch: sizes that fit skip the resize, others resize to
    the nearest multiple (rounding halves to even, as round() does) and back."""
    model = create_model("unet", min_channels=4, max_channels=16, num_down_blocks=4).eval()
    torch.manual_seed(0)
    for size in ((64, 64), (40, 56), (8, 9)):  # fits; 40/16 = 2.5 rounds to 2; below 16
        x = torch.rand(1, 3, *size)
        with torch.no_grad():
            traced = torch.jit.trace(model, x, check_trace=False)
            assert torch.allclose(traced(x), model(x), atol=1e-5), size
        assert model(x).shape[-2:] == size


def test_a_check_counts_disagreeing_pixels_and_fails_under_its_threshold():
    images = _images(np.random.default_rng(2))
    masks = [np.zeros(image.shape[:2], np.uint8) for image in images]

    def reference(x: np.ndarray) -> np.ndarray:
        logits = np.zeros((1, 8, *x.shape[2:]), np.float32)
        logits[:, 0] = 1
        return logits

    def flipped(x: np.ndarray) -> np.ndarray:  # one pixel in a thousand disagrees, and more
        logits = reference(x)
        logits[:, 3, :2, :] = 2
        return logits

    result = check_export(reference, flipped, images, masks)
    assert not result.passed and result.agreement < MIN_AGREEMENT
    assert any("classes agree with PyTorch" in why for why in result.failures)
    assert check_export(reference, reference, images, masks).passed
