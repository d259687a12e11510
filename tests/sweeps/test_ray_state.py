"""sweeps.ray_state: what it reads of Ray's private experiment state is still what the installed
Ray writes. Each failure names the module to update after a Ray upgrade."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import ray
from ray_state_helpers import StateTrial, write_state

from sweeps import ray_state

ROOT = Path(__file__).resolve().parents[2]
MODULE = "sweeps/ray_state.py"


@contextmanager
def _reads(what: str) -> Iterator[None]:
    """Turn any failure into one that says what changed and which module to update."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - an upgrade may break it in any way
        pytest.fail(f"{what} is not what {MODULE} expects under Ray {ray.__version__} "
                    f"({type(exc).__name__}: {exc}); update {MODULE} (it reads Ray's private "
                    f"experiment state) and its pin, RAY_VERSION")


def _pin(path: Path) -> str:
    match = re.search(r"ray\[default,tune\]==([0-9][0-9.]*)", path.read_text())
    assert match, f"{path.name} does not pin ray[default,tune]==VERSION"
    return match.group(1)


def test_the_installed_ray_is_the_one_ray_state_was_checked_against():
    pins = {"installed": ray.__version__, f"{MODULE} RAY_VERSION": ray_state.RAY_VERSION,
            "pyproject.toml": _pin(ROOT / "pyproject.toml"),
            "cluster.yaml": _pin(ROOT / "cluster.yaml")}
    assert len(set(pins.values())) == 1, (
        f"Ray versions differ: {pins}; check what {MODULE} reads against the installed Ray "
        "(this file's tests), then pin one version in all three places")


def test_rays_private_names_still_import():
    with _reads("Ray's experiment-state names"):
        from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint
        from ray.tune.execution.tune_controller import TuneController
        from ray.tune.trainable.metadata import _TrainingRunMetadata

        assert TuneController.CKPT_FILE_TMPL.format("*") == ray_state.STATE_PATTERN
        assert callable(_find_newest_experiment_checkpoint)
        assert callable(_TrainingRunMetadata.from_json_state)


def test_mlflows_run_per_trial_is_where_ray_state_reads_it(tmp_path):
    # A resumed sweep hands each trial its own MLflow run back through this private dict.
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    with _reads("MLflowLoggerCallback._trial_runs"):
        callback = MLflowLoggerCallback(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                        experiment_name="check")
        callback.setup()
        assert ray_state.mlflow_trial_runs(callback) is callback._trial_runs


def test_a_state_written_by_this_ray_parses_into_every_field(tmp_path):
    from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint

    write_state(tmp_path, [StateTrial("0badc0de", "old", "TERMINATED")],
                session="2026-11-24_23-59-59")
    searched = {"point": "unet/aug", "lr": 0.0031, "crop_size": 64}
    write_state(tmp_path, [
        StateTrial("30f12c97", "30f12c97_unet_aug", "ERROR", searched,
                   [("checkpoint_000000", 3), ("checkpoint_000001", 1),
                    ("checkpoint_000002", 2)], num_failures=2),
        StateTrial("a1b2c_00001", None, "PENDING", {"point": "unet/no-aug"}),
    ])
    with _reads("The newest experiment_state file"):
        newest = ray_state.newest_state_file(tmp_path)
        assert str(newest) == _find_newest_experiment_checkpoint(str(tmp_path))
    with _reads("A trial's JSON in experiment_state's trial_data"):
        searched_trial, pending = ray_state.read_trials(tmp_path)
        assert (searched_trial.trial_id, searched_trial.status, searched_trial.config,
                searched_trial.folder, searched_trial.num_failures) == (
            "30f12c97", "ERROR", searched, "30f12c97_unet_aug", 2)
        assert (pending.trial_id, pending.status, pending.folder, pending.num_failures) == (
            "a1b2c_00001", "PENDING", None, 0)
    with _reads("The checkpoint manager in a trial's run metadata"):
        # no num_to_keep: every folder registered is tracked; the latest is the last one
        assert ray_state.checkpoint_folders(searched_trial) == (
            "checkpoint_000002", {"checkpoint_000000", "checkpoint_000001",
                                  "checkpoint_000002"})
        assert ray_state.checkpoint_folders(pending) == (None, set())


def test_no_state_is_no_trials_and_a_broken_one_is_named(tmp_path):
    assert ray_state.read_trials(tmp_path) == [] and ray_state.newest_state_file(tmp_path) is None
    broken = tmp_path / "experiment_state-2026-11-25_01-00-00.json"
    broken.write_text('{"trial_data": [["{}", "{}"]]}')  # a trial without its id
    with pytest.raises(ray_state.RayStateError, match=re.escape(str(broken))):
        ray_state.read_trials(tmp_path)


def test_reading_trials_imports_no_ray(tmp_path):
    # The analysis loader reads a sweep's state without Ray (fast, and no unpickling).
    write_state(tmp_path, [StateTrial("30f12c97", "30f12c97_unet", "RUNNING")])
    code = ("import sys; from pathlib import Path; from sweeps import ray_state; "
            f"(t,) = ray_state.read_trials(Path({str(tmp_path)!r})); "
            "assert t.status == 'RUNNING', t; "
            "assert 'ray' not in sys.modules, 'ray imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_asha_is_replayed_through_rays_own_bracket():
    # bench/asha.py replays recorded curves through the decisions Ray's ASHA makes.
    from sweeps.search import make_scheduler

    with _reads("ASHA's _Bracket and ASHAScheduler._brackets"):
        assert ray_state.asha_rungs(make_scheduler("asha", 8, 2, 2)) == [2.0, 4.0, 8.0]
        bracket = ray_state.asha_bracket(2, 8, 2)
        assert callable(bracket.on_result) and ray_state.asha_rungs(
            type("Scheduler", (), {"_brackets": [bracket]})) == [2.0, 4.0, 8.0]


def test_the_drivers_staging_folder_is_where_ray_stages_a_sweeps_state(tmp_path, monkeypatch):
    """After a full disk cut Tune's copy short, the sweep puts back the driver's staged one
    (sweeps/storage_space.py); ``driver_staging_folder`` finds it where Ray puts it."""
    with _reads("Ray's driver staging path (StorageContext.experiment_driver_staging_path)"):
        import ray.train._internal.storage as storage
        import ray.train.constants as constants

        session = str(tmp_path / "session" / "artifacts")
        monkeypatch.setattr(storage, "_get_ray_train_session_dir", lambda: session)
        monkeypatch.setattr(constants, "_get_ray_train_session_dir", lambda: session)
        monkeypatch.setattr(ray, "is_initialized", lambda: True)
        staged = Path(storage.StorageContext(
            storage_path=str(tmp_path / "runs"), experiment_dir_name="my[sweep]"
        ).experiment_driver_staging_path)
        staged.mkdir(parents=True)
        assert ray_state.driver_staging_folder("my[sweep]") == staged
        assert ray_state.driver_staging_folder("other") is None
