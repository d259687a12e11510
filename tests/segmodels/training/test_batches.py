"""batches: never a batch of one crop; a small set in one smaller batch, said loudly."""

from __future__ import annotations

import pytest

from segmodels.errors import ConfigError
from segmodels.training.batches import EpochBatches, batch_sizes, training_batch_size
from segmodels.training.config import TrialConfig


@pytest.mark.parametrize("crops, batch, sizes", [
    (32, 16, [16, 16]),
    (33, 16, [16, 9, 8]),  # 16k+1: the course's data broke every ASPP trial here
    (13, 4, [4, 4, 3, 2]),  # the real 13-image training set with batch 4
    (14, 4, [4, 4, 4, 2]),
    (5, 4, [3, 2]),
    (3, 2, [3]),  # 2 + 1 cannot split into two batches of two: one batch of 3
    (5, 2, [2, 3]),
    (7, 16, [7]),  # smaller than a batch: one batch of all its crops
])
def test_an_epoch_never_has_a_batch_of_one(crops, batch, sizes):
    assert batch_sizes(crops, batch) == sizes
    assert sum(sizes) == crops and min(sizes) >= 2


def test_batch_size_one_is_honoured():
    assert batch_sizes(3, 1) == [1, 1, 1]


def test_epoch_batches_shuffle_every_crop_once_and_repeat_with_the_seed():
    epochs = [list(EpochBatches(33, 16, seed=5)) for _ in range(2)]
    assert epochs[0] == epochs[1]
    assert [len(b) for b in epochs[0]] == [16, 9, 8]
    assert sorted(i for b in epochs[0] for i in b) == list(range(33))
    sampler = EpochBatches(33, 16, seed=5)
    assert list(sampler) != list(sampler)  # each epoch its own order
    assert list(EpochBatches(33, 16, seed=6)) != epochs[0]


def test_a_training_set_smaller_than_a_batch_trains_in_one_smaller_batch_said_loudly():
    cfg = TrialConfig.from_dict({"batch_size": 16, "crops_per_image": 2})
    assert training_batch_size(8, cfg) == (16, None)  # 16 crops: one full batch
    size, note = training_batch_size(5, cfg)
    assert size == 10
    for figure in ("10 crop(s) per epoch", "5 image(s)", "crops_per_image 2", "batch_size 16",
                   "training in batches of 10"):
        assert figure in note, note


def test_a_single_crop_is_refused_with_its_figures():
    with pytest.raises(ConfigError) as info:
        training_batch_size(1, TrialConfig.from_dict({"batch_size": 4}))
    message = str(info.value)
    for figure in ("1 crop(s) per epoch", "1 image(s)", "batch_size 4", "--crops-per-image to 4"):
        assert figure in message, message
    assert training_batch_size(1, TrialConfig.from_dict({"batch_size": 1})) == (1, None)
