import dataclasses
import math
import warnings

import pytest

from segmodels.errors import ConfigError
from segmodels.models.registry import model_configs
from segmodels.training.checkpoint import load_checkpoint, model_from_checkpoint
from segmodels.training.config import TrialConfig
from segmodels.training.trial import (
    LocalReporter,
    loader_settings,
    peak_gpu_memory_mb,
    train_trial,
)

TINY = {"model": "unet", "model_kwargs": {"min_channels": 4, "max_channels": 16},
        "epochs": 2, "crop_size": 64, "batch_size": 4, "inference_repeats": 1,
        "inference_height": 64, "inference_width": 64, "augment": False}


def test_trial_reports_every_epoch_with_summary_facts(tiny_data, tmp_path):
    reporter = LocalReporter(tmp_path, verbose=False)
    history = train_trial(TINY, tiny_data, reporter=reporter, cpus=1, log_dir=str(tmp_path))
    assert [row["epoch"] for row in history] == [1, 2]
    row = reporter.history[-1]
    for key in ("train_loss", "val_loss", "val_miou", "val_accuracy", "val_mean_class_recall",
                "val_iou_vehicle", "best_val_miou", "best_epoch", "train_minutes", "size_mb",
                "params", "inference_ms_cpu", "hostname", "val_confusion"):
        assert key in row, key
    assert row["epochs_planned"] == 2  # what the CLI projects a stopped trial's minutes to
    assert math.isnan(row["inference_ms_gpu"])  # no GPU here
    assert "gpu_memory_mb" not in row  # a CPU trial holds no GPU memory to report
    assert row["best_val_miou"] == max(r["val_miou"] for r in reporter.history)
    assert sum(map(sum, row["val_confusion"])) == sum(m.size for m in tiny_data.val.masks)
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()
    assert any((tmp_path / "tensorboard").iterdir())  # image | prediction | ground truth


def test_checkpoint_rebuilds_its_model_and_resume_continues_the_epochs(tiny_data, tmp_path):
    first = LocalReporter(tmp_path / "a", verbose=False)
    train_trial(TINY, tiny_data, reporter=first, cpus=1)
    state = load_checkpoint(tmp_path / "a" / "last.pt")
    assert state["config"]["model"] == "unet" and state["epoch"] == 2
    model, _ = model_from_checkpoint(tmp_path / "a" / "last.pt")
    assert not model.training

    longer = {**TINY, "epochs": 4}
    state["config"]["epochs"] = 4
    second = LocalReporter(tmp_path / "b", verbose=False)
    history = train_trial(longer, tiny_data, reporter=second, resume=state, cpus=1)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]  # old history + new epochs
    assert [row["epoch"] for row in second.history] == [3, 4]  # only new epochs trained
    assert second.history[-1]["train_minutes"] > first.history[-1]["train_minutes"]


def test_diverging_training_stops_with_a_clear_reason(tiny_data):
    with pytest.raises(FloatingPointError, match="diverged"):
        train_trial({**TINY, "lr": 1e30, "optimizer": "sgd", "epochs": 3}, tiny_data, cpus=1)


def test_unknown_config_key_is_refused():
    with pytest.raises(ValueError, match="unknown trial config key.*learning_rate"):
        TrialConfig.from_dict({"learning_rate": 0.1})


def test_threads_and_workers_follow_the_trials_cpus():
    cfg = TrialConfig()
    assert loader_settings(cfg, 1, "cpu") == {"threads": 1, "num_workers": 0, "pin_memory": False}
    assert loader_settings(cfg, 8, "gpu")["threads"] == 8
    assert loader_settings(cfg, 8, "gpu")["pin_memory"] is True


def test_a_sweep_trial_can_leave_cpu_timing_to_the_sweep(tiny_data, monkeypatch):
    import segmodels.training.trial as trial

    def no_timing(*args, **kwargs):
        raise AssertionError("CPU inference was timed although the sweep times it afterwards")

    monkeypatch.setattr(trial, "time_inference", no_timing)
    history = train_trial({**TINY, "epochs": 1}, tiny_data, cpus=1,
                          time_cpu_inference=False)
    assert math.isnan(history[-1]["inference_ms_cpu"])


def test_resuming_a_finished_trial_trains_and_times_nothing(tiny_data, tmp_path, monkeypatch):
    import segmodels.training.trial as trial

    first = LocalReporter(tmp_path, verbose=False)
    train_trial(TINY, tiny_data, reporter=first, cpus=1)
    state = load_checkpoint(tmp_path / "last.pt")
    monkeypatch.setattr(trial, "time_inference", lambda *a, **k: pytest.fail("timed again"))
    again = LocalReporter(tmp_path / "again", verbose=False)
    history = train_trial(TINY, tiny_data, reporter=again, resume=state, cpus=1)
    assert [row["epoch"] for row in history] == [1, 2] and again.history == []


def test_a_channels_last_trial_trains_and_its_checkpoint_loads(tiny_data, tmp_path):
    import torch

    reporter = LocalReporter(tmp_path, verbose=False)
    history = train_trial({**TINY, "epochs": 1, "memory_format": "channels_last"}, tiny_data,
                          reporter=reporter, cpus=1, time_cpu_inference=False)
    assert math.isfinite(history[-1]["train_loss"])
    state = load_checkpoint(tmp_path / "last.pt")
    conv = next(v for v in state["model"].values() if v.dim() == 4 and v.shape[-1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    model, _ = model_from_checkpoint(tmp_path / "last.pt")
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 8, 64, 64)


def test_a_trial_repeats_with_the_same_seed(tiny_data):
    config = {**TINY, "epochs": 1, "augment": True}
    runs = [train_trial(config, tiny_data, cpus=1, time_cpu_inference=False) for _ in range(2)]
    assert runs[0][-1]["train_loss"] == runs[1][-1]["train_loss"]
    assert runs[0][-1]["val_miou"] == runs[1][-1]["val_miou"]


def test_the_device_data_path_trains_and_repeats_with_the_same_seed(tiny_data):
    """The path a CUDA trial takes (crops, augmentation and validation batches made on the
    device), here on CPU tensors."""
    config = {**TINY, "epochs": 1, "augment": True}
    runs = [train_trial(config, tiny_data, cpus=1, time_cpu_inference=False,
                        data_on_device=True) for _ in range(2)]
    assert math.isfinite(runs[0][-1]["train_loss"])
    assert runs[0][-1]["train_loss"] == runs[1][-1]["train_loss"]
    assert runs[0][-1]["val_miou"] == runs[1][-1]["val_miou"]
    row = runs[0][-1]
    assert 0 < row["val_seconds"] < row["epoch_seconds"]  # validation's part of the epoch


def _training_set(data, images: int):
    from segmodels.data import Split

    train = data.train
    return dataclasses.replace(data, train=Split(train.names[:images], train.images[:images],
                                                 train.masks[:images]))


# The course's models, and an smp model whose ASPP pools to one value per crop like ours.
SIZE_MODELS = [*model_configs(), {"model": "smp", "arch": "deeplabv3", "encoder": "resnet18"}]


@pytest.mark.slow
@pytest.mark.parametrize("model", SIZE_MODELS, ids=lambda m: "/".join(map(str, m.values())))
def test_every_model_trains_an_epoch_whatever_the_training_sets_size(tiny_data, model):
    """batch + 1 and 2 x batch + 1 crops left one crop over, which broke every ASPP trial
    ("Expected more than 1 value per channel"); fewer crops than a batch train in one smaller
    batch, with a warning; one crop is refused, naming the sizes."""
    config = {**TINY, **model, "epochs": 1, "batch_size": 4, "log_images": 0}
    if model["model"] != "unet":
        config.pop("model_kwargs")
    for images, per_image in ((5, 1), (3, 3), (3, 1)):  # batch + 1, 2 x batch + 1, batch - 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = train_trial({**config, "crops_per_image": per_image},
                                  _training_set(tiny_data, images), cpus=1,
                                  time_cpu_inference=False)
        assert math.isfinite(history[-1]["train_loss"])
        said = [str(w.message) for w in caught if "fewer than one batch" in str(w.message)]
        assert said == (["the training set gives 3 crop(s) per epoch (3 image(s) x "
                         "crops_per_image 1), fewer than one batch (batch_size 4): training in "
                         "batches of 3; set --batch-size 3 or raise --crops-per-image to choose"]
                        if images * per_image < 4 else [])
    with pytest.raises(ConfigError, match=r"1 crop\(s\) per epoch.*batch_size 4"):
        train_trial(config, _training_set(tiny_data, 1), cpus=1, time_cpu_inference=False)


def test_the_best_epochs_per_image_evidence_is_kept_in_the_splits_order(tiny_data, tmp_path):
    """The per-image confusion counts beside the best checkpoint give back the epoch's scores,
    one matrix per validation image in the split's order, whatever order validation batched
    them in (images of one size go together)."""
    import numpy as np
    import torch

    from segmodels import metrics
    from segmodels.data import SegmentationData, Split
    from segmodels.training.checkpoint import IMAGE_CONFUSIONS_FILE, load_image_confusions

    val = tiny_data.val
    sizes = [(96, 128), (48, 64), (96, 128), (40, 56)]  # mixed: batched out of order
    images = [val.images[i % len(val)][:h, :w] for i, (h, w) in enumerate(sizes)]
    masks = [val.masks[i % len(val)][:h, :w] for i, (h, w) in enumerate(sizes)]
    data = SegmentationData(tiny_data.root, tiny_data.layout, tiny_data.train,
                            Split([f"v{i}" for i in range(4)], images, masks))
    reporter = LocalReporter(tmp_path, verbose=False)
    train_trial({**TINY, "epochs": 3}, data, reporter=reporter, cpus=1)
    cms = load_image_confusions(tmp_path / IMAGE_CONFUSIONS_FILE)
    assert cms.shape == (4, 8, 8) and cms.dtype == np.int64
    assert [int(cm.sum()) for cm in cms] == [h * w for h, w in sizes]  # the split's order
    best = next(r for r in reporter.history if r["epoch"] == r["best_epoch"] == max(
        r["best_epoch"] for r in reporter.history))

    assert metrics.mean_iou(torch.from_numpy(cms.sum(0))) == pytest.approx(best["val_miou_global"])
    assert metrics.course_scores(torch.from_numpy(cms))["miou"] == \
        pytest.approx(best["val_miou_per_image"])


def test_a_gpu_trial_reports_its_peak_gpu_memory(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device: 1_536_000_000)
    assert peak_gpu_memory_mb(torch.device("cuda", 0)) == 1536.0
    assert peak_gpu_memory_mb(torch.device("cpu")) is None
