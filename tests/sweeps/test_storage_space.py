"""A sweep's disk: the checkpoint estimate against real checkpoints, the refusal before Ray,
and what a storage that fills up mid-sweep leaves (errno found, Tune's state put back)."""

import errno
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from ray_state_helpers import saved_by_tune

import sweeps.storage_space as space
from segmodels.models import create_model
from segmodels.training import checkpoint_bytes, save_checkpoint
from segmodels.training.optim import OPTIMIZERS
from sweeps.prepare import prepare
from sweeps.ray_state import RayStateError, check_readable
from sweeps.settings import SweepError, SweepSettings
from sweeps.storage import ERROR_FILE


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_the_estimate_matches_a_real_checkpoint_after_a_step(tmp_path, optimizer):
    model = create_model("unet", min_channels=4, max_channels=16)
    built = OPTIMIZERS[optimizer](model.parameters(), 1e-3, 0.0)
    model(torch.rand(2, 3, 32, 32)).mean().backward()
    built.step()
    path = save_checkpoint(tmp_path / "c.pt", {"model": model.state_dict(),
                                                "optimizer": built.state_dict()})
    with torch.device("meta"):
        estimated = checkpoint_bytes(create_model("unet", min_channels=4, max_channels=16),
                                     optimizer)
    actual = path.stat().st_size
    assert abs(estimated - actual) < 0.02 * actual, (estimated, actual)


def test_a_sweep_keeps_two_checkpoints_per_trial_and_writes_one_more():
    assert space.sweep_bytes([10, 30]) == 2 * 40 + 30
    assert space.sweep_bytes([]) == 0
    assert space.human_bytes(1.5e9) == "1.5 GB" and space.human_bytes(2e5) == "200.0 kB"


def _free(monkeypatch, free: int) -> None:
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(space.shutil, "disk_usage",
                        lambda path: usage._replace(free=free))


def test_a_sweep_that_cannot_fit_is_refused_before_ray_and_writes_nothing(
        tmp_path, tiny_dataset_dir, monkeypatch):
    import ray

    _free(monkeypatch, 20 * 1024 * 1024)
    settings = SweepSettings(grid="smoke", data=str(tiny_dataset_dir),
                             overrides={"crop_size": 64}, storage=str(tmp_path / "runs"))
    with pytest.raises(SweepError, match=r"--storage .*runs: 21.0 MB free, but this sweep's "
                                         r"checkpoints need at least .* \(2 trial\(s\)"):
        prepare(settings)
    assert not ray.is_initialized()
    assert not (tmp_path / "runs").exists()


def test_what_the_sweeps_folder_holds_counts_as_room_for_resume_and_overwrite(tmp_path,
                                                                               monkeypatch):
    settings = SweepSettings(grid="smoke", storage=str(tmp_path), name="s")
    folder = Path(settings.experiment_path())
    folder.mkdir()
    (folder / "old.pt").write_bytes(b"\0" * 4096)
    need = space.sweep_bytes([1000]) + space.RESERVE_BYTES
    _free(monkeypatch, need - 1000)
    with pytest.raises(SweepError, match="free"):
        space.check_space(settings, [1000])
    space.check_space(SweepSettings(grid="smoke", storage=str(tmp_path), name="s",
                                    resume=True), [1000])
    space.check_space(SweepSettings(grid="smoke", storage=str(tmp_path), name="s",
                                    overwrite=True), [1000])


def test_object_storage_is_not_checked(monkeypatch):
    _free(monkeypatch, 0)
    space.check_space(SweepSettings(storage="s3://bucket/runs", name="x"), [10**12])


def test_a_storage_errno_anywhere_in_the_exception_chain_is_found(tmp_path):
    settings = SweepSettings(storage=str(tmp_path), name="s")
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("Tune's wrapper") from inner
    except RuntimeError as exc:
        problem = space.storage_problem(settings, exc)
    assert problem == space.StorageProblem(str(tmp_path), errno.ENOSPC)
    assert problem.line() == f"storage {tmp_path}: [Errno 28] No space left on device (ENOSPC)"


def test_a_trial_error_of_this_run_naming_a_quota_is_found_an_older_one_is_not(tmp_path):
    settings = SweepSettings(storage=str(tmp_path), name="s")
    trial = Path(settings.experiment_path()) / "t1"
    trial.mkdir(parents=True)
    (trial / ERROR_FILE).write_text("OSError: [Errno 122] Disk quota exceeded: 'x'\n")
    assert space.storage_problem(settings, since=time.time() + 60) is None
    assert space.storage_problem(settings, since=time.time() - 60).errno == errno.EDQUOT


def test_a_failure_of_another_kind_on_a_storage_with_room_is_not_a_storage_problem(tmp_path):
    settings = SweepSettings(storage=str(tmp_path), name="s")
    Path(settings.experiment_path()).mkdir()
    assert space.storage_problem(settings, ValueError("a bug"), checkpoint=1 << 20) is None
    assert not list(Path(settings.experiment_path()).iterdir())  # the probe is gone


def test_a_write_that_fails_now_names_its_errno(tmp_path, monkeypatch):
    settings = SweepSettings(storage=str(tmp_path), name="s")
    Path(settings.experiment_path()).mkdir()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(space.os, "fsync", full)
    assert space.storage_problem(settings, EOFError("Ran out of input")).errno == errno.ENOSPC


def test_the_reserve_is_held_while_a_sweep_runs_and_let_go_for_the_repair(tmp_path):
    settings = SweepSettings(storage=str(tmp_path), name="s")
    experiment = Path(settings.experiment_path())
    experiment.mkdir()
    space.hold_reserve(settings)
    assert (experiment / space.RESERVE_FILE).stat().st_size == space.RESERVE_BYTES
    # Tune's driver staged whole files; the copies in storage were cut short by the full disk.
    staging = tmp_path / "staging"
    (staging / "t1").mkdir(parents=True)
    state = {"trial_data": [], "runner_data": {}}
    (staging / "experiment_state-x.json").write_text(json.dumps(state))
    (staging / "t1" / "error.pkl").write_bytes(b"pickled error")
    (staging / "t1" / "result.json").write_text('{"epoch": 1}\n')
    (experiment / "experiment_state-x.json").write_text(json.dumps(state)[:9])
    (experiment / "t1").mkdir()
    (experiment / "t1" / "error.pkl").write_bytes(b"")
    (experiment / "t1" / "result.json").write_text('{"epoch": 2}\n')  # same size: kept
    with pytest.raises(RayStateError, match="damaged"):
        check_readable(experiment)
    assert space.put_back_staged_state(settings, staging) == []
    assert not (experiment / space.RESERVE_FILE).exists()
    check_readable(experiment)
    assert (experiment / "t1" / "error.pkl").read_bytes() == b"pickled error"
    assert (experiment / "t1" / "result.json").read_text() == '{"epoch": 2}\n'


def test_resume_from_a_damaged_tune_state_is_refused_before_ray(tmp_path, tiny_dataset_dir):
    import ray

    settings = SweepSettings(grid="smoke", data=str(tiny_dataset_dir), storage=str(tmp_path),
                             overrides={"crop_size": 64, "epochs": 1}, name="cut")
    prepared = prepare(settings)
    from sweeps.record import write_sweep_record

    write_sweep_record(prepared.settings, prepared.grid, prepared.fixed, prepared.data,
                       scheduler_reason="", resources={"cpu": 1, "gpu": 0}, cluster={"CPU": 2})
    experiment = Path(prepared.settings.experiment_path())
    saved_by_tune(experiment)
    (state,) = experiment.glob("experiment_state-*.json")
    state.write_text(state.read_text()[:20])
    before = sorted((p.name, p.stat().st_size) for p in experiment.rglob("*"))
    with pytest.raises(SweepError, match=r"--resume: .*experiment_state-.*: Ray Tune's saved "
                                         r"state is damaged .*start every trial .*--overwrite"):
        prepare(SweepSettings(storage=str(tmp_path), name="cut", resume=True))
    assert not ray.is_initialized()
    assert sorted((p.name, p.stat().st_size) for p in experiment.rglob("*")) == before
