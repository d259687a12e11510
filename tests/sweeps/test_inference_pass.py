import json
import statistics

import pandas as pd

from analysis.loading import _prefer_quiet_inference_times
from sweeps.inference_pass import time_architectures
from sweeps.storage import INFERENCE_FILE

TINY = {"model_kwargs": {"min_channels": 4, "max_channels": 8}, "inference_height": 32,
        "inference_width": 48, "inference_repeats": 1}


def test_each_architecture_is_timed_once_and_shared_by_its_points():
    points = {"unet/no-aug": {"model": "unet", "augment": False},
              "unet/aug": {"model": "unet", "augment": True}}
    timings = time_architectures(points, TINY, threads=1)
    assert set(timings) == set(points)
    assert timings["unet/aug"] is timings["unet/no-aug"]  # augmentation: same network
    assert timings["unet/aug"]["ms"] > 0 and timings["unet/aug"]["threads"] == 1
    assert (timings["unet/aug"]["height"], timings["unet/aug"]["width"]) == (32, 48)


def test_every_timed_run_is_kept_beside_their_median():
    timings = time_architectures({"unet/aug": {"model": "unet", "augment": True}},
                                 {**TINY, "inference_repeats": 3}, threads=1)["unet/aug"]
    assert len(timings["runs_ms"]) == 3 and min(timings["runs_ms"]) > 0
    assert timings["ms"] == statistics.median(timings["runs_ms"])


def test_analysis_prefers_the_quiet_timings_and_keeps_the_trials_own(tmp_path):
    (tmp_path / INFERENCE_FILE).write_text(json.dumps({"a": {"ms": 10.0}}))
    trials = pd.DataFrame({"label": ["a", "b"], "inference_ms_cpu": [30.0, 40.0]})
    _prefer_quiet_inference_times(tmp_path, trials, [])
    assert trials["inference_ms_cpu"].tolist() == [10.0, 40.0]
    assert trials["inference_ms_cpu_in_trial"].tolist() == [30.0, 40.0]
    assert trials["inference_ms_cpu_low"].isna().all()  # a file from before runs were kept


def test_analysis_gives_each_quiet_timing_its_fastest_and_slowest_run(tmp_path):
    (tmp_path / INFERENCE_FILE).write_text(json.dumps(
        {"a": {"ms": 10.0, "runs_ms": [9.0, 10.0, 14.0]}}))
    trials = pd.DataFrame({"label": ["a", "b"], "inference_ms_cpu": [30.0, 40.0]})
    _prefer_quiet_inference_times(tmp_path, trials, [])
    assert trials["inference_ms_cpu_low"].tolist()[0] == 9.0
    assert trials["inference_ms_cpu_high"].tolist()[0] == 14.0
    assert pd.isna(trials["inference_ms_cpu_low"].tolist()[1])  # no quiet timing: no range


def _time_after_sweep(prepared, threads: int, on_gpu: bool):
    from sweeps.inference_pass import time_after_sweep

    return time_after_sweep(prepared.settings, prepared.grid.by_label(), prepared.fixed,
                            threads=threads, on_gpu=on_gpu)


def _prepared(tmp_path):
    from sweeps.grids import Grid
    from sweeps.prepare import PreparedSweep
    from sweeps.settings import SweepSettings

    points = [{"model": "unet", "augment": False}, {"model": "unet", "augment": True}]
    settings = SweepSettings(storage=str(tmp_path), name="done")
    return PreparedSweep(settings, Grid("g", points), TINY, data=None)


def test_a_resumed_sweep_that_finished_its_timing_pass_times_nothing(tmp_path, monkeypatch):
    # `--resume` of a finished sweep timed every architecture again (84 s on 2 cores for a
    # resume with nothing to do).
    from sweeps import inference_pass

    prepared = _prepared(tmp_path)
    stored = {label: {"ms": 12.0} for label in prepared.grid.labels}
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / INFERENCE_FILE).write_text(json.dumps(stored))

    def no_timing(*args, **kwargs):
        raise AssertionError("timed again")

    monkeypatch.setattr(inference_pass, "time_architectures", no_timing)
    cpu, gpu = _time_after_sweep(prepared, threads=1, on_gpu=False)
    assert cpu == stored and gpu == {}


def test_only_the_architectures_without_a_timing_are_timed(tmp_path, monkeypatch):
    from sweeps import inference_pass

    prepared = _prepared(tmp_path)
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / INFERENCE_FILE).write_text(json.dumps({"unet/aug": {"ms": 12.0}}))
    asked = []
    monkeypatch.setattr(inference_pass, "time_architectures",
                        lambda todo, fixed, threads: asked.append(set(todo)) or
                        {label: {"ms": 5.0} for label in todo})
    cpu, _ = _time_after_sweep(prepared, threads=1, on_gpu=False)
    assert asked == [{"unet/no-aug"}]
    assert json.loads((tmp_path / "done" / INFERENCE_FILE).read_text()) == cpu == {
        "unet/aug": {"ms": 12.0}, "unet/no-aug": {"ms": 5.0}}


def test_gpu_timing_asks_ray_for_a_whole_gpu_when_the_trials_used_gpus(tmp_path, monkeypatch):
    # A cluster's head node (where the driver runs) has no GPU: the pass runs as a Ray task.
    import ray

    from sweeps import inference_pass
    from sweeps.storage import INFERENCE_GPU_FILE

    requests = []

    class FakeTask:
        def remote(self, points, fixed):
            return {label: {"ms": 1.5, "device": "a GPU"} for label in points}

    def fake_remote(**options):
        requests.append(options)
        return lambda function: FakeTask()

    monkeypatch.setattr(ray, "remote", fake_remote)
    monkeypatch.setattr(ray, "get", lambda ref: ref)
    monkeypatch.setattr(inference_pass, "time_architectures",
                        lambda todo, fixed, threads: {label: {"ms": 9.0} for label in todo})
    prepared = _prepared(tmp_path)
    cpu, gpu = _time_after_sweep(prepared, threads=1, on_gpu=True)
    assert requests and requests[0]["num_gpus"] == 1
    assert set(gpu) == set(prepared.grid.labels) and gpu["unet/aug"]["ms"] == 1.5
    assert json.loads((tmp_path / "done" / INFERENCE_GPU_FILE).read_text()) == gpu
    requests.clear()
    _time_after_sweep(prepared, threads=1, on_gpu=False)
    assert not requests  # CPU-only trials: no GPU asked for
    assert inference_pass.missing(prepared.grid.by_label(), gpu) == {}


def test_analysis_prefers_the_quiet_gpu_timings(tmp_path):
    from sweeps.storage import INFERENCE_GPU_FILE

    (tmp_path / INFERENCE_FILE).write_text(json.dumps({}))
    (tmp_path / INFERENCE_GPU_FILE).write_text(json.dumps({"a": {"ms": 2.0}}))
    trials = pd.DataFrame({"label": ["a", "b"], "inference_ms_cpu": [30.0, 40.0],
                           "inference_ms_gpu": [5.0, 6.0]})
    _prefer_quiet_inference_times(tmp_path, trials, [])
    assert trials["inference_ms_gpu"].tolist() == [2.0, 6.0]


def test_a_failed_timing_pass_keeps_the_sweeps_results(tmp_path, monkeypatch, capsys):
    # A preempted GPU node or a CUDA error in the pass must not cost the ranking and report of
    # a sweep that finished; --resume retries the pass.
    from sweeps import inference_pass

    def preempted(todo, fixed):
        raise RuntimeError("node preempted")

    monkeypatch.setattr(inference_pass, "time_architectures",
                        lambda todo, fixed, threads: {label: {"ms": 9.0} for label in todo})
    monkeypatch.setattr(inference_pass, "time_architectures_on_a_gpu", preempted)
    cpu, gpu = _time_after_sweep(_prepared(tmp_path), threads=1, on_gpu=True)
    assert len(cpu) == 2 and gpu == {}
    assert "GPU timing pass failed (RuntimeError: node preempted)" in capsys.readouterr().err
