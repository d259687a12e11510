"""Everything that can be wrong is refused by ``prepare`` before Ray starts or storage changes."""

import json
from pathlib import Path

import pytest
from ray_state_helpers import saved_by_tune

import sweeps.prepare as preparation
from sweeps.grids import GridError
from sweeps.prepare import prepare
from sweeps.record import write_sweep_record
from sweeps.settings import SweepError, SweepSettings
from sweeps.storage import SWEEP_FILE


def _record(prepared, saved: bool = True) -> None:
    """The sweep's record, and (``saved``) Tune's first save after it."""
    write_sweep_record(prepared.settings, prepared.grid, prepared.fixed, prepared.data,
                       scheduler_reason=prepared.scheduler_reason,
                       resources={"cpu": 1, "gpu": 0}, cluster={"CPU": 2},
                       search_points=prepared.search_points)
    if saved:
        saved_by_tune(Path(prepared.settings.experiment_path()))


def _settings(tmp_path, data, **kw):
    overrides = {"crop_size": 64, **kw.pop("overrides", {})}
    return SweepSettings(grid=kw.pop("grid", "smoke"), data=str(data), overrides=overrides,
                         storage=str(tmp_path / "runs"), **kw)


def test_prepare_resolves_fixed_settings_and_name(tmp_path, tiny_dataset_dir):
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir,
                                        overrides={"epochs": 3, "lr": None, "crop_size": 64}))
    assert prepared.settings.name == "smoke"
    assert prepared.fixed == {"epochs": 3, "crop_size": 64}  # unset flags keep defaults
    assert prepared.data.synthetic and len(prepared.data.train) == 8


def test_bad_grid_fails_before_ray_starts_and_writes_nothing(tmp_path, tiny_dataset_dir):
    import ray

    bad = tmp_path / "bad.yaml"
    bad.write_text("axes:\n  model: [segformer]\n")
    with pytest.raises(GridError, match="segformer"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(bad)))
    assert not ray.is_initialized()
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("kw, message", [
    ({"overrides": {"crop_size": 500}}, "crop-size 500 is larger than the smallest"),
    ({"overrides": {"epochs": 0}}, "epochs must be > 0"),
    ({"overrides": {"lr": -1.0}}, "lr must be a finite number > 0"),
    ({"overrides": {"batch_size": 0}}, "batch_size must be > 0"),
    ({"resume": True, "name": "nope"}, "no sweep named 'nope'"),
    ({"search": "random"}, "--search 'random'"),
    ({"cpus_per_trial": 0}, "cpus-per-trial must be > 0"),
    # values that used to pass here and fail only inside Ray, where --resume cannot fix them
    ({"overrides": {"weight_decay": -0.1}}, "weight_decay must be a finite number >= 0"),
    ({"overrides": {"class_weights": [1.0, 2.0]}}, "class_weights needs one weight per class"),
    ({"overrides": {"inference_height": 0}}, "inference_height must be > 0"),
    ({"overrides": {"num_workers": -1}}, "num_workers must be >= 0"),
    ({"overrides": {"log_images": -1}}, "log_images must be >= 0"),
    ({"num_samples": 4}, "--num-samples 4 adds trials a searcher proposes; a grid sweep"),
    # settings that used to fail inside Tune's setup, leaving a sweep that could not resume
    ({"scheduler": "asha", "reduction_factor": 1}, "--reduction-factor must be > 1"),
    ({"scheduler": "asha", "grace_period": 9, "overrides": {"epochs": 3}},
     "--grace-period 9 is beyond the sweep's longest training \\(3 epochs\\)"),
])
def test_bad_settings_are_refused(tmp_path, tiny_dataset_dir, kw, message):
    with pytest.raises(ValueError, match=message):
        prepare(_settings(tmp_path, tiny_dataset_dir, **kw))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_existing_name_is_refused_unless_resume_or_overwrite(tmp_path, tiny_dataset_dir):
    exp = tmp_path / "runs" / "smoke"
    exp.mkdir(parents=True)
    (exp / SWEEP_FILE).write_text(json.dumps({"kept": True}))
    saved_by_tune(exp)
    with pytest.raises(SweepError, match="already exists.*--resume.*--overwrite"):
        prepare(_settings(tmp_path, tiny_dataset_dir))
    assert json.loads((exp / SWEEP_FILE).read_text()) == {"kept": True}
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, overwrite=True))
    _record(prepared)
    resumed = prepare(_settings(tmp_path, tiny_dataset_dir, resume=True))
    assert resumed.grid.labels == prepared.grid.labels
    assert {k: resumed.fixed[k] for k in prepared.fixed} == prepared.fixed


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../runs2", "", " lead", "tab\tname"])
def test_a_name_that_is_a_path_is_refused_before_anything_is_read_or_deleted(
        tmp_path, tiny_dataset_dir, name):
    storage = tmp_path / "runs"
    (storage / "other").mkdir(parents=True)
    (storage / "other" / SWEEP_FILE).write_text("{}")
    sibling = tmp_path / "mine.txt"
    sibling.write_text("a user's file")
    for resume in (False, True):
        with pytest.raises(SweepError, match="a sweep's name is a plain folder name"):
            prepare(_settings(tmp_path, tiny_dataset_dir, name=name, overwrite=True,
                              resume=resume))
    assert sibling.read_text() == "a user's file" and (storage / "other" / SWEEP_FILE).exists()


def test_overwrite_never_deletes_a_folder_that_holds_no_sweep(tmp_path, tiny_dataset_dir):
    exp = tmp_path / "runs" / "smoke"
    exp.mkdir(parents=True)
    (exp / "thesis.tex").write_text("months of work")
    for overwrite in (False, True):
        with pytest.raises(SweepError, match="holds files but no sweep record") as error:
            prepare(_settings(tmp_path, tiny_dataset_dir, overwrite=overwrite))
        assert "--overwrite to replace" not in str(error.value)  # no advice that would delete
    assert (exp / "thesis.tex").read_text() == "months of work"


def test_resume_refuses_flags_that_would_change_the_sweep(tmp_path, tiny_dataset_dir):
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, overrides={"epochs": 3}))
    _record(prepared)
    with pytest.raises(SweepError, match="drop --epochs 5 \\(sweep has 3\\)"):
        prepare(_settings(tmp_path, tiny_dataset_dir, resume=True,
                                 overrides={"epochs": 5}))
    # the same flags again, or none at all, continue it; the grid comes from the record
    resumed = prepare(SweepSettings(grid="homework", name="smoke", resume=True,
                                           storage=str(tmp_path / "runs"),
                                           data=str(tiny_dataset_dir)))
    assert resumed.grid.labels == prepared.grid.labels and resumed.fixed["epochs"] == 3


def test_unwritable_storage_is_refused(tmp_path, tiny_dataset_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = _settings(tmp_path, tiny_dataset_dir)
    settings.storage = str(blocker / "runs")
    with pytest.raises(SweepError, match="a-file is not a writable folder"):
        prepare(settings)
    assert blocker.read_text() == "not a folder"


def test_missing_data_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        prepare(_settings(tmp_path, tmp_path / "nowhere"))


def test_storage_uris():
    assert SweepSettings(storage="s3://bucket/runs", name="x").experiment_path() == "s3://bucket/runs/x"
    assert SweepSettings(storage="s3://bucket/runs").remote_storage
    local = SweepSettings(storage="file:///tmp/runs", name="x")
    assert not local.remote_storage and local.experiment_path() == "/tmp/runs/x"


def test_resume_refuses_new_point_settings(tmp_path, tiny_dataset_dir):
    settings = _settings(tmp_path, tiny_dataset_dir, resume=True, name="x",
                         point_settings=["*:epochs=2"])
    with pytest.raises(SweepError, match="drop --point-set"):
        prepare(settings)


def test_point_settings_are_validated_with_the_trial_config(tmp_path, tiny_dataset_dir):
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir,
                                        point_settings=["unet/*:crops_per_image=3"]))
    unet = [p for label, p in prepared.grid.by_label().items() if label.startswith("unet/")]
    assert unet and all(p["crops_per_image"] == 3 for p in unet)
    with pytest.raises(SweepError, match="crops_per_image must be > 0"):
        prepare(_settings(tmp_path, tiny_dataset_dir,
                                 point_settings=["unet/*:crops_per_image=0"]))


def test_optuna_refuses_points_that_fix_what_it_searches(tmp_path, tiny_dataset_dir):
    settings = _settings(tmp_path, tiny_dataset_dir, search="optuna",
                         point_settings=["unet/*:lr=0.003"])
    with pytest.raises(SweepError, match="optuna proposes itself"):
        prepare(settings)


def test_prepare_leaves_its_input_as_given(tmp_path, tiny_dataset_dir):
    settings = _settings(tmp_path, tiny_dataset_dir)
    prepared = prepare(settings)
    assert settings.name is None and settings.scheduler is None
    assert prepared.settings.name == "smoke" and prepared.settings.scheduler == "fifo"


def _grid_file(tmp_path, scheduler=None):
    path = tmp_path / "mine.yaml"
    text = "axes:\n  model: [unet]\n  augment: [false, true]\n"
    path.write_text(text + (f"scheduler: {scheduler}\n" if scheduler else ""))
    return str(path)


@pytest.mark.parametrize("kw, scheduler, why", [
    ({}, "fifo", "every point trains its full epochs"),  # a named grid
    ({"grid": "homework"}, "fifo", "every point trains its full epochs"),
    ({"grid": "yaml"}, "fifo", "every point trains its full epochs"),
    ({"grid": "yaml-asha"}, "asha", "set by"),
    ({"search": "optuna"}, "asha", "default for --search optuna"),
    ({"scheduler": "asha"}, "asha", "--scheduler asha given"),
    ({"search": "optuna", "scheduler": "fifo"}, "fifo", "--scheduler fifo given"),
    ({"grid": "yaml-asha", "scheduler": "fifo"}, "fifo", "--scheduler fifo given"),
])
def test_the_scheduler_each_kind_of_sweep_runs(tmp_path, tiny_dataset_dir, kw, scheduler, why):
    # Comparisons train every point its full epochs; a search stops unpromising samples.
    grid = kw.pop("grid", "smoke")
    if grid.startswith("yaml"):
        grid = _grid_file(tmp_path, "asha" if grid == "yaml-asha" else None)
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, grid=grid, **kw))
    assert prepared.settings.scheduler == scheduler
    assert why in prepared.scheduler_reason


def test_resume_keeps_the_sweeps_own_scheduler(tmp_path, tiny_dataset_dir):
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, scheduler="asha"))
    _record(prepared)
    resumed = prepare(_settings(tmp_path, tiny_dataset_dir, resume=True))
    assert resumed.settings.scheduler == "asha" and "--scheduler asha given" in \
        resumed.scheduler_reason
    with pytest.raises(SweepError, match="its own scheduler \\(asha\\); drop --scheduler fifo"):
        prepare(_settings(tmp_path, tiny_dataset_dir, resume=True, scheduler="fifo"))


def test_resume_of_a_sweep_recorded_before_fifo_became_the_default(tmp_path, tiny_dataset_dir):
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir))
    _record(prepared)
    record_file = tmp_path / "runs" / "smoke" / SWEEP_FILE
    record = json.loads(record_file.read_text())
    record["settings"]["scheduler"] = "asha"  # the old default, recorded as such
    del record["scheduler_reason"]
    record_file.write_text(json.dumps(record))
    resumed = prepare(_settings(tmp_path, tiny_dataset_dir, resume=True))
    assert resumed.settings.scheduler == "asha"


def test_a_grid_file_with_an_unknown_scheduler_is_refused(tmp_path, tiny_dataset_dir):
    with pytest.raises(GridError, match="scheduler = 'hyperband' is not valid.*asha, fifo"):
        prepare(_settings(tmp_path, tiny_dataset_dir,
                                 grid=_grid_file(tmp_path, "hyperband")))


@pytest.mark.parametrize("storage, remote", [
    ("./runs", False), ("/abs/runs", False), ("file:///tmp/runs", False),
    ("FILE:///tmp/runs", False), ("s3://bucket/runs", True), ("gs://b/r", True),
])
def test_one_answer_to_is_the_storage_remote(storage, remote):
    # The settings (where files are written) and the cluster warning (whether to warn about a
    # node-local path) must not disagree.
    from sweeps.cluster_checks import storage_warning

    nodes = [{"Alive": True}, {"Alive": True}]
    assert SweepSettings(storage=storage).remote_storage is remote
    assert (storage_warning(storage, nodes) is None) is remote


def test_resume_keeps_the_sweeps_own_number_of_samples(tmp_path, tiny_dataset_dir):
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, search="optuna",
                                        num_samples=3))
    _record(prepared)
    resumed = prepare(_settings(tmp_path, tiny_dataset_dir, resume=True))
    assert resumed.settings.num_samples == 3 and resumed.settings.search == "optuna"
    with pytest.raises(SweepError, match="its own --num-samples 3; drop --num-samples 20"):
        prepare(_settings(tmp_path, tiny_dataset_dir, resume=True, num_samples=20))


def test_a_resume_that_is_refused_repairs_nothing(tmp_path, tiny_dataset_dir, monkeypatch):
    # Repairs rewrite the sweep's files: only a resume that passed every check may run them.
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir))
    _record(prepared)
    from segmodels.data import DatasetError

    repaired = []
    monkeypatch.setattr(preparation, "_repair_stored_files", repaired.append)
    load_data = preparation._load_data

    def unreadable(settings):
        raise DatasetError("data/train/image: cannot be read: permission denied")

    monkeypatch.setattr(preparation, "_load_data", unreadable)
    with pytest.raises(DatasetError):
        prepare(_settings(tmp_path, tiny_dataset_dir, resume=True))
    assert not repaired
    monkeypatch.setattr(preparation, "_load_data", load_data)
    prepare(_settings(tmp_path, tiny_dataset_dir, resume=True))
    assert len(repaired) == 1


def test_a_sweep_name_taken_on_object_storage_is_refused(tmp_path, tiny_dataset_dir,
                                                         monkeypatch):
    # No folder to look at on s3://: the sweep's record says the name is taken.
    monkeypatch.setattr(preparation, "read_sweep_record", lambda settings: {"grid": "smoke"})
    settings = _settings(tmp_path, tiny_dataset_dir)
    settings.storage = "s3://bucket/runs"
    with pytest.raises(SweepError, match="'smoke' already exists in s3://bucket/runs"):
        prepare(settings)


def test_seeds_train_every_point_once_per_seed_each_its_own_trial(tmp_path, tiny_dataset_dir):
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, grid="homework", seeds=3,
                                 overrides={"crop_size": 64, "seed": 5}))
    labels = prepared.grid.labels
    assert len(labels) == 18 and len(set(labels)) == 18
    assert labels[:6] == [f"{label}/seed=5" for label in
                          prepare(_settings(tmp_path, tiny_dataset_dir, grid="homework",
                                            overrides={"crop_size": 64}, name="one")).grid.labels]
    assert sorted({prepared.trial_config(label).seed for label in labels}) == [5, 6, 7]
    assert prepared.settings.seeds == 3  # stored with the sweep: a resume keeps them


def test_a_grid_file_sets_its_own_seeds_and_refuses_a_bad_count(tmp_path, tiny_dataset_dir):
    grid = tmp_path / "g.yaml"
    grid.write_text("seeds: 2\naxes:\n  model: [unet]\n  augment: [false, true]\n")
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid)))
    assert prepared.grid.labels == ["unet/no-aug/seed=0", "unet/aug/seed=0",
                                    "unet/no-aug/seed=1", "unet/aug/seed=1"]
    grid.write_text("seeds: 0\naxes:\n  model: [unet]\n")
    with pytest.raises(GridError, match="seeds = 0 must be a whole number >= 1"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid)))
    grid.write_text("axes:\n  model: [unet]\n  seed: [0, 1]\n")
    with pytest.raises(GridError, match="already set seed"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid), seeds=2))


def test_seeds_with_a_search_are_refused_before_anything_runs(tmp_path, tiny_dataset_dir):
    with pytest.raises(SweepError, match="--seeds 2 with --search optuna: the searcher would "
                                         "learn from single-seed scores"):
        prepare(_settings(tmp_path, tiny_dataset_dir, search="optuna", seeds=2))
    with pytest.raises(SweepError, match="--seeds must be >= 1"):
        prepare(_settings(tmp_path, tiny_dataset_dir, seeds=0))
    assert not (tmp_path / "runs").exists()


def test_a_resumed_sweep_keeps_its_seeds(tmp_path, tiny_dataset_dir):
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, seeds=2))
    _record(prepared)
    resumed = prepare(_settings(tmp_path, tiny_dataset_dir, resume=True))
    assert resumed.settings.seeds == 2 and resumed.grid.labels == prepared.grid.labels
    with pytest.raises(SweepError, match="with its own --seeds 2; drop --seeds 3"):
        prepare(_settings(tmp_path, tiny_dataset_dir, resume=True, seeds=3))


def test_a_sweep_stopped_before_its_first_save_starts_afresh_and_has_nothing_to_resume(
        tmp_path, tiny_dataset_dir):
    """Ctrl-C in the first seconds, a tracker that failed to set up: the record is written,
    Tune's state is not. The name is not bricked: the same command starts it again."""
    _record(prepare(_settings(tmp_path, tiny_dataset_dir)), saved=False)
    with pytest.raises(SweepError, match="stopped before its first save .* nothing to resume; "
                                         "run the same command without --resume"):
        prepare(_settings(tmp_path, tiny_dataset_dir, resume=True))
    again = prepare(_settings(tmp_path, tiny_dataset_dir))
    assert any("stopped before its first save (nothing trained): started afresh" in note
               for note in again.notes)
    assert again.settings.overwrite  # its own record is replaced, nothing else is touched


@pytest.fixture
def own_data(tmp_path):
    """A small dataset of this test's own, free to change."""
    from segmodels.data import synthetic

    return synthetic.generate(tmp_path / "data", n_train=6, n_test=2, seed=3, height=96,
                              width=128)


@pytest.mark.parametrize("change, named", [
    ("add", "train: added: train/image/extra.jpg"),
    ("remove", "val: removed: test/image/"),
    ("edit", "(size "),
])
def test_resume_refuses_a_dataset_that_changed_naming_what(tmp_path, own_data, change, named):
    import os
    import shutil

    prepared = prepare(_settings(tmp_path, own_data))
    _record(prepared)
    first_train = sorted((own_data / "train" / "image").iterdir())[0]
    if change == "add":
        shutil.copy(first_train, own_data / "train" / "image" / "extra.jpg")
        shutil.copy(own_data / "train" / "mask" / f"{first_train.stem}.png",
                    own_data / "train" / "mask" / "extra.png")
    elif change == "remove":
        victim = sorted((own_data / "test" / "image").iterdir())[0]
        victim.unlink()
        (own_data / "test" / "mask" / f"{victim.stem}.png").unlink()
    else:
        stat = first_train.stat()
        first_train.write_bytes(first_train.read_bytes() + b"\0")
        os.utime(first_train, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # cp -p keeps the time
    with pytest.raises(SweepError, match="changed since sweep 'smoke' started") as error:
        prepare(_settings(tmp_path, own_data, resume=True))
    assert named in str(error.value) and "\n" not in str(error.value)


def test_the_dataset_is_recorded_by_its_resolved_path(tmp_path, own_data, monkeypatch):
    monkeypatch.chdir(own_data.parent)
    prepared = prepare(_settings(tmp_path, "data"))
    assert prepared.data.root == str(own_data.resolve())
    _record(prepared)
    record = json.loads((tmp_path / "runs" / "smoke" / SWEEP_FILE).read_text())
    assert record["data"]["root"] == str(own_data.resolve())


def test_a_grid_points_own_crop_size_is_checked_like_the_flag(tmp_path, own_data):
    grid = tmp_path / "crops.yaml"
    grid.write_text("axes:\n  model: [unet]\n  crop_size: [64, 500]\n")
    with pytest.raises(SweepError, match=r"grid point .*crop_size=500.*: crop_size 500 is larger "
                                         r"than the smallest training image side \(96 px, "
                                         r"train image \S+ in "):
        prepare(_settings(tmp_path, own_data, grid=str(grid)))


def test_an_image_too_small_to_train_on_is_named_not_answered_with_a_crop_of_one(tmp_path,
                                                                                  own_data):
    from PIL import Image

    image = sorted((own_data / "train" / "image").iterdir())[0]
    Image.new("RGB", (1, 1)).save(image)
    Image.new("L", (1, 1)).save(own_data / "train" / "mask" / f"{image.stem}.png")
    with pytest.raises(SweepError, match=rf"train image {image.stem} in .* is 1x1 px, too small "
                                         "to train on .*remove it with its mask") as error:
        prepare(_settings(tmp_path, own_data))
    assert "crop-size <= 1" not in str(error.value)


@pytest.mark.parametrize("flag", [{"lr": 0.01}, {"optimizer": "sgd"}, {"loss": "dice"},
                                  {"seed": 7}])
def test_resume_refuses_a_setting_the_sweep_took_from_the_defaults(tmp_path, tiny_dataset_dir,
                                                                   flag):
    """--lr and the like were ignored by a resume when the sweep had used the default."""
    _record(prepare(_settings(tmp_path, tiny_dataset_dir)))
    key, value = next(iter(flag.items()))
    with pytest.raises(SweepError, match=rf"drop --{key} {value} \(sweep has "):
        prepare(_settings(tmp_path, tiny_dataset_dir, resume=True, overrides=flag))


def test_resumed_trials_use_the_defaults_the_sweep_started_with(tmp_path, tiny_dataset_dir):
    """A default changed in the code since the start applies to no resumed epoch."""
    _record(prepare(_settings(tmp_path, tiny_dataset_dir)))
    path = tmp_path / "runs" / "smoke" / SWEEP_FILE
    record = json.loads(path.read_text())
    record["trial_defaults"]["weight_decay"] = 0.25  # as if the code's default were 0.25 then
    record["trial_defaults"]["a_field_removed_since"] = 1
    path.write_text(json.dumps(record))
    resumed = prepare(_settings(tmp_path, tiny_dataset_dir, resume=True))
    assert all(resumed.trial_config(label).weight_decay == 0.25 for label in resumed.grid.labels)


def test_a_grid_over_a_thousand_trials_needs_confirming_and_checks_in_linear_time(
        tmp_path, tiny_dataset_dir, monkeypatch):
    """10,000 points over lr x weight decay: one network to build, not 10,000 (the checks
    took minutes and grew with the square of the grid). Its 20,000 checkpoints of the course's
    UNet (104 MB each) need 2 TB: refused on a 1 TB disk, checked on a 100 TB one."""
    import shutil
    import time

    import yaml

    import sweeps.storage_space as space

    usage = shutil.disk_usage(tmp_path)
    disk = {"free": 10**12}
    monkeypatch.setattr(space.shutil, "disk_usage", lambda path: usage._replace(**disk))

    grid = tmp_path / "big.yaml"
    grid.write_text(yaml.safe_dump({"axes": {
        "model": ["unet"], "lr": [round(1e-4 * (1 + i), 6) for i in range(1000)],
        "weight_decay": [i * 1e-5 for i in range(10)]}}))
    with pytest.raises(SweepError, match="has 10,000 trials .* pass --large-grid to confirm"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid)))
    with pytest.raises(SweepError, match=r"1000.0 GB free, but this sweep's checkpoints need "
                                         r"at least 207\d\.\d GB \(10,000 trial\(s\), each keeping "
                                         r"its best and latest checkpoint of 103.7 MB:"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid), large_grid=True,
                          overrides={"crop_size": 64, "batch_size": 4}))
    disk["free"] = 10**14
    start = time.perf_counter()
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid), large_grid=True,
                                 overrides={"crop_size": 64, "batch_size": 4}))
    configs = {label: prepared.trial_config(label) for label in prepared.grid.labels}
    assert len(configs) == 10_000 and time.perf_counter() - start < 30


def test_several_objectives_run_fifo_and_refuse_asha(tmp_path, tiny_dataset_dir):
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, search="optuna",
                                 objectives=["miou", "cpu_ms"]))
    assert prepared.settings.scheduler == "fifo"
    assert "ASHA ranks trials by one metric" in prepared.scheduler_reason
    with pytest.raises(SweepError, match="--scheduler asha with objectives miou, size_mb: "
                                         "ASHA ranks trials by one metric"):
        prepare(_settings(tmp_path, tiny_dataset_dir, search="optuna", scheduler="asha",
                          objectives=["miou", "size_mb"], name="other"))


def test_gpu_latency_without_a_gpu_is_refused_before_anything_runs(tmp_path, tiny_dataset_dir,
                                                                    monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for flags in ({"objectives": ["miou", "gpu_ms"]}, {"budgets": {"gpu_ms": 5.0}}):
        with pytest.raises(SweepError, match="no CUDA GPU to time the architectures on"):
            prepare(_settings(tmp_path, tiny_dataset_dir, **flags))
    assert not (tmp_path / "runs").exists()


def test_a_grid_file_sets_objectives_budget_and_search_ranges(tmp_path, tiny_dataset_dir):
    grid = tmp_path / "g.yaml"
    grid.write_text("objectives: [miou, size_mb]\nbudget: {size_mb: 20}\n"
                    "search:\n  weight_decay: [1.0e-6, 1.0e-2, log]\n"
                    "axes:\n  model: [unet, deeplab]\n  backbone: [mobilenet_v3_small]\n")
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid), search="optuna",
                                 budgets={"size_mb": 30.0}))
    assert prepared.settings.objectives == ["miou", "size_mb"]
    assert prepared.settings.budgets == {"size_mb": 30.0}  # the flag wins
    assert set(prepared.space.ranges) == {"weight_decay"}
    assert prepared.space.axes == {"model": ["unet", "deeplab"]}
    with pytest.raises(SweepError, match="search: names ranges for --search optuna"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid), name="grid-search"))
    grid.write_text("objectives: [size_mb]\naxes:\n  model: [unet]\n")
    with pytest.raises(GridError, match="objectives: size_mb: add miou to it"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid), name="other"))
    grid.write_text("budget: {miou: 0.5}\naxes:\n  model: [unet]\n")
    with pytest.raises(GridError, match="budget: 'miou': budgets exist for"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid=str(grid), name="other"))


def test_a_resumed_search_keeps_its_objectives_and_proposable_models(tmp_path,
                                                                     tiny_dataset_dir):
    prepared = prepare(_settings(tmp_path, tiny_dataset_dir, grid="homework", search="optuna",
                                 objectives=["miou", "cpu_ms"], budgets={"cpu_ms": 30.0}))
    _record(prepared)
    resumed = prepare(_settings(tmp_path, tiny_dataset_dir, grid="homework", resume=True))
    assert resumed.settings.objectives == ["miou", "cpu_ms"]
    assert resumed.settings.budgets == {"cpu_ms": 30.0}
    assert resumed.points.keys() == prepared.points.keys()
    with pytest.raises(SweepError, match="with its own objectives \\(miou, cpu_ms\\); drop"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid="homework", resume=True,
                          objectives=["miou"]))
    with pytest.raises(SweepError, match="with its own budgets"):
        prepare(_settings(tmp_path, tiny_dataset_dir, grid="homework", resume=True,
                          budgets={"cpu_ms": 10.0}))
