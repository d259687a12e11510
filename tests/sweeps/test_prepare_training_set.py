"""A training set smaller than one batch: a single crop is refused by ``prepare`` before Ray
starts; a few crops train in one smaller batch, and ``prepare`` says so."""

import pytest

from sweeps.prepare import prepare
from sweeps.settings import SweepError, SweepSettings


def _settings(tmp_path, data, **overrides):
    return SweepSettings(grid="smoke", data=str(data), storage=str(tmp_path / "runs"),
                         overrides={"crop_size": 64, **overrides})


def test_a_single_training_crop_is_refused_before_ray_starts(tmp_path):
    import ray

    from segmodels.data import synthetic

    one = synthetic.generate(tmp_path / "one", n_train=1, n_test=1, seed=0, height=96,
                             width=128)
    with pytest.raises(SweepError) as info:
        prepare(_settings(tmp_path, one, batch_size=4))
    message = str(info.value)
    assert message.startswith("grid point ")
    for figure in ("1 crop(s) per epoch", "1 image(s)", "batch_size 4", "--crops-per-image to 4"):
        assert figure in message, message
    assert not ray.is_initialized()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_set_smaller_than_a_batch_is_said_before_ray_starts(tmp_path, tiny_dataset_dir,
                                                             capsys):
    prepare(_settings(tmp_path, tiny_dataset_dir, batch_size=16))  # 8 training images
    err = capsys.readouterr().err
    assert err.count("note: the training set gives 8 crop(s) per epoch") == 1, err
    assert "batch_size 16" in err and "training in batches of 8" in err
    prepare(_settings(tmp_path, tiny_dataset_dir, batch_size=16, crops_per_image=2))
    assert "note: the training set" not in capsys.readouterr().err


def test_batch_size_one_is_refused_for_a_model_it_cannot_train(tmp_path, tiny_dataset_dir):
    # DeepLab's ASPP image pooling normalises one 1x1 value per crop: a batch of one fails in
    # every trial (three retries each) unless refused here; UNet trains with it.
    def settings(grid):
        return SweepSettings(grid=str(grid), data=str(tiny_dataset_dir),
                             overrides={"crop_size": 64, "batch_size": 1},
                             storage=str(tmp_path / "runs"))

    aspp = tmp_path / "aspp.yaml"
    aspp.write_text("axes:\n  model: [deeplab]\n  backbone: [resnet18]\n  aspp: [true]\n")
    with pytest.raises(SweepError, match="batch_size 1 cannot train this model.*--batch-size 2"):
        prepare(settings(aspp))
    unet = tmp_path / "unet.yaml"
    unet.write_text("axes:\n  model: [unet]\n")
    assert prepare(settings(unet)).fixed["batch_size"] == 1
