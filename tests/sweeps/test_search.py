import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from sweeps import search
from sweeps.resources import resources_per_trial
from sweeps.settings import SweepError, SweepSettings


def test_schedulers_by_name():
    asha = search.make_scheduler("asha", epochs=20, grace_period=None, reduction_factor=2)
    assert isinstance(asha, ASHAScheduler)
    assert isinstance(search.make_scheduler("fifo", epochs=20), FIFOScheduler)
    with pytest.raises(ValueError, match="asha, fifo"):
        search.make_scheduler("hyperband", epochs=20)


def test_optuna_space_is_categorical_point_not_grid_search():
    space = search.optuna_space(["a", "b"], [128, 256])
    assert isinstance(space["point"], tune.search.sample.Categorical)
    assert isinstance(space["lr"], tune.search.sample.Float)
    assert space["crop_size"].categories == [128, 256]


def test_optuna_is_seeded_with_every_grid_point_at_the_defaults():
    searcher = search.optuna_searcher(["a", "b", "c"], default_lr=1e-3, default_crop=256)
    assert searcher._points_to_evaluate == [
        {"point": label, "lr": 1e-3, "crop_size": 256} for label in ("a", "b", "c")]


def test_crop_choices_fit_the_smallest_image():
    assert search.crop_choices(96, smallest_side=200) == [96, 128, 192]


@pytest.mark.parametrize("cluster, n_trials, flags, expected", [
    ({"CPU": 2}, 6, {}, {"cpu": 1, "gpu": 0}),              # CPU share, 2 concurrent
    ({"CPU": 32}, 6, {}, {"cpu": 5, "gpu": 0}),             # 6 trials spread over 32 CPUs
    ({"CPU": 16, "GPU": 4}, 6, {}, {"cpu": 4, "gpu": 1}),   # whole GPU per trial
    ({"CPU": 16, "GPU": 4}, 6, {"gpus_per_trial": 0.5}, {"cpu": 2, "gpu": 0.5}),
    ({"CPU": 2}, 6, {"cpus_per_trial": 2}, {"cpu": 2, "gpu": 0}),
])
def test_resources_per_trial(cluster, n_trials, flags, expected):
    assert resources_per_trial(SweepSettings(**flags), n_trials, cluster) == expected


@pytest.mark.parametrize("flags, message", [
    ({"cpus_per_trial": 4}, "cpus-per-trial 4 is more than the cluster has"),
    ({"gpus_per_trial": 1}, "gpus-per-trial 1 is more than the cluster has"),
])
def test_resources_beyond_the_cluster_are_refused(flags, message):
    with pytest.raises(SweepError, match=message):
        resources_per_trial(SweepSettings(**flags), 2, {"CPU": 2})
