import numpy as np
import pytest
import torch

from segmodels.classes import IGNORE_INDEX, NUM_CLASSES
from segmodels.errors import ConfigError
from segmodels.training.config import TrialConfig
from segmodels.training.losses import (
    LOSSES,
    NEEDS_CLASS_WEIGHTS,
    build_loss,
    class_weights,
    list_losses,
)

WEIGHTS = [1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 1.0, 8.0]


def _loss(name: str) -> torch.nn.Module:
    return build_loss(name, NUM_CLASSES, WEIGHTS if name in NEEDS_CLASS_WEIGHTS else None)


def _batch():
    """Logits that need grad, and masks with ignored pixels and class 6 absent."""
    torch.manual_seed(0)
    logits = torch.randn(2, NUM_CLASSES, 16, 16, requires_grad=True)
    masks = torch.randint(0, NUM_CLASSES, (2, 16, 16))
    masks[masks == 6] = 0
    masks[:, :4, :] = IGNORE_INDEX  # e.g. the border of a rotated crop
    return logits, masks


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_trains_a_step_with_ignored_pixels_and_an_absent_class(name):
    logits, masks = _batch()
    loss = _loss(name)(logits, masks)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(LOSSES))
def test_ignored_pixels_change_neither_loss_nor_gradient(name):
    logits, masks = _batch()
    loss = _loss(name)(logits, masks)
    (grad,) = torch.autograd.grad(loss, logits)
    other = logits.detach().clone()
    other[:, :, :4, :] = 100 * torch.randn_like(other[:, :, :4, :])  # wild logits, ignored
    other.requires_grad_(True)
    other_loss = _loss(name)(other, masks)
    (other_grad,) = torch.autograd.grad(other_loss, other)
    torch.testing.assert_close(other_loss, loss)
    assert not grad[:, :, :4, :].any() and not other_grad[:, :, :4, :].any()


def test_weighted_ce_weighs_pixels_by_their_class():
    logits, masks = _batch()
    weights = torch.tensor(WEIGHTS)
    expected = torch.nn.functional.cross_entropy(logits, masks, weight=weights,
                                                 ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(_loss("weighted_ce")(logits, masks), expected)
    assert not torch.allclose(expected, _loss("ce")(logits, masks))


def test_summed_losses_are_the_sum_of_their_parts():
    logits, masks = _batch()
    torch.testing.assert_close(_loss("ce+dice")(logits, masks),
                               _loss("ce")(logits, masks) + _loss("dice")(logits, masks))


def test_class_weights_come_from_the_training_masks_frequencies():
    # 100 pixels: class 0 60, class 1 30, class 2 10 (and 10 ignored); classes 3-7 absent.
    mask = np.array([0] * 60 + [1] * 30 + [2] * 10 + [IGNORE_INDEX] * 10, dtype=np.uint8)
    halves = [mask[:55].reshape(5, 11), mask[55:].reshape(5, 11)]
    weights = class_weights(halves, NUM_CLASSES)
    # frequencies 0.6, 0.3, 0.1; median 0.3: weights 0.5, 1, 3; absent classes: the largest
    assert weights == pytest.approx([0.5, 1.0, 3.0] + [3.0] * 5)


def test_weighted_ce_without_weights_or_with_the_wrong_count_is_refused():
    with pytest.raises(ConfigError, match="needs class_weights.*training split"):
        build_loss("weighted_ce", NUM_CLASSES)
    with pytest.raises(ConfigError, match="8 finite numbers"):
        build_loss("weighted_ce", NUM_CLASSES, [1.0, 2.0])


def test_loss_is_a_trial_setting_with_the_registrys_choices():
    assert TrialConfig().loss == "ce"  # the course's
    assert TrialConfig.from_dict({"loss": "ce+lovasz"}).loss == "ce+lovasz"
    with pytest.raises(ConfigError, match="loss = 'iou' is not valid.*weighted_ce.*ce\\+dice"):
        TrialConfig.from_dict({"loss": "iou"})


def test_a_trials_module_trains_with_its_configured_loss_and_weights():
    from segmodels.training.module import SegmentationModule

    cfg = TrialConfig.from_dict({"loss": "weighted_ce", "class_weights": WEIGHTS,
                                 "model_kwargs": {"min_channels": 4, "max_channels": 8}})
    module = SegmentationModule(cfg)
    assert torch.equal(module.loss_fn.loss.weight, torch.tensor(WEIGHTS))
    assert "loss_fn.loss.weight" in module.state_dict()  # a buffer: it follows the module's device


@pytest.mark.parametrize("name", list_losses())
def test_a_batch_with_no_labelled_pixel_gives_zero_loss_not_nan(name):
    # Masks may mark unlabelled pixels 255; a random crop can hold nothing else. A mean over no
    # pixels would be NaN and end the trial as "diverged".
    logits = torch.randn(2, NUM_CLASSES, 8, 8, requires_grad=True)
    masks = torch.full((2, 8, 8), IGNORE_INDEX, dtype=torch.long)
    weights = [1.0] * NUM_CLASSES if name in NEEDS_CLASS_WEIGHTS else None
    loss = build_loss(name, NUM_CLASSES, weights)(logits, masks)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(logits.grad).all() and not logits.grad.any()
