import pytest
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


def test_optuna_is_seeded_with_every_grid_point_at_the_defaults():
    from sweeps.grids import load_grid
    from sweeps.search_space import build_space

    grid = load_grid("homework")
    space = build_space(grid, [128, 256])
    seeds = [space.seed(label, {"lr": 1e-3, "crop_size": 256}) for label in grid.labels]
    searcher = search.optuna_searcher(space, seeds, objectives=["miou"], budgets={}, costs={})
    assert searcher._points_to_evaluate == seeds
    assert seeds[0] == {"model": "unet", "augment": False, "lr": 1e-3, "crop_size": 256}
    assert searcher.metric == "best_val_miou" and searcher.mode == "max"


def test_several_objectives_are_a_list_of_metrics_and_modes():
    from sweeps.grids import load_grid
    from sweeps.search_space import build_space

    space = build_space(load_grid("homework"), [128])
    searcher = search.optuna_searcher(space, [], objectives=["miou", "cpu_ms", "size_mb"],
                                      budgets={}, costs={})
    assert searcher.metric == ["best_val_miou", "inference_ms_cpu", "size_mb"]
    assert searcher.mode == ["max", "min", "min"]


def test_several_objectives_default_to_fifo():
    scheduler, why = search.resolve_scheduler("optuna", None, None, multi_objective=True)
    assert scheduler == "fifo" and "ASHA ranks trials by one metric" in why
    assert search.resolve_scheduler("optuna", None, None)[0] == "asha"


def test_the_label_leaves_out_the_axes_it_names():
    config = {"point": "deeplab/resnet18/aspp/aug", "model": "deeplab", "backbone": "resnet18",
              "aspp": True, "augment": True, "lr": 0.0031, "crop_size": 64}
    assert search.trial_label(config) == "deeplab/resnet18/aspp/aug lr=0.0031 crop=64"
    assert search.split_tune_config(config)[1] == {"lr": 0.0031, "crop_size": 64}


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
