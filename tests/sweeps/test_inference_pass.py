import json

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


def test_analysis_prefers_the_quiet_timings_and_keeps_the_trials_own(tmp_path):
    (tmp_path / INFERENCE_FILE).write_text(json.dumps({"a": {"ms": 10.0}}))
    trials = pd.DataFrame({"label": ["a", "b"], "inference_ms_cpu": [30.0, 40.0]})
    _prefer_quiet_inference_times(tmp_path, trials, [])
    assert trials["inference_ms_cpu"].tolist() == [10.0, 40.0]
    assert trials["inference_ms_cpu_in_trial"].tolist() == [30.0, 40.0]
