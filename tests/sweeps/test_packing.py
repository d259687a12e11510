"""sweeps.packing and --gpus-per-trial auto: how many trials share a GPU, and their CPUs."""

from __future__ import annotations

import pickle

import pytest

from segmodels.models.registry import model_configs
from segmodels.training.config import TrialConfig, trial_settings
from sweeps import packing
from sweeps.grids import load_grid
from sweeps.resources import (
    concurrent_slots,
    describe_resources,
    resources_per_trial,
    trial_request,
)
from sweeps.settings import SweepSettings

MBV3 = "deeplab/mobilenet_v3_small/aspp"
# The module docstring's shares of the homework grid's architectures.
DOCUMENTED = {"unet": 1.0, "deeplab/resnet18/no-aspp": 1.0, "deeplab/resnet18/aspp": 1.0,
              "deeplab/vgg11_bn/aspp": 1.0, MBV3: 0.5}


def homework_configs() -> dict[str, TrialConfig]:
    return {label: TrialConfig.from_dict(trial_settings({}, point))
            for label, point in load_grid("homework").by_label().items()}


@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_each_homework_architecture_gets_its_documented_share_and_cpus(gpus):
    node = {"CPU": 32.0, "GPU": float(gpus)}
    configs = homework_configs()
    assert {c.architecture for c in configs.values()} == set(DOCUMENTED)
    for cfg in configs.values():
        share = DOCUMENTED[cfg.architecture]
        assert packing.trial_resources(cfg, 32, gpus) == {"cpu": 32 / gpus * share, "gpu": share}
    requests = resources_per_trial(SweepSettings(), len(configs), node, configs)
    assert requests["by_point"] == {
        label: packing.trial_resources(cfg, 32, gpus) for label, cfg in configs.items()}
    assert (requests["cpu"], requests["gpu"]) == (32 / gpus, 1.0)  # the largest


def test_cpus_follow_the_share_but_never_drop_below_one():
    # 8 GPUs, 8 CPUs: a half-GPU trial still gets a core to launch its kernels.
    assert packing.cpus_for_share(0.5, node_cpus=8, node_gpus=8) == 1.0
    assert packing.cpus_for_share(0.5, node_cpus=16, node_gpus=1) == 8.0
    assert packing.cpus_for_share(2.0, node_cpus=16, node_gpus=4) == 8.0


def test_the_rule_is_the_fewest_trials_per_gpu_within_ten_percent_of_the_best():
    assert packing.share_from_rates(packing.MEASURED[MBV3]) == 0.5  # 1,366 is 93% of 1,463
    assert packing.share_from_rates(packing.MEASURED["deeplab/resnet18/aspp"]) == 1.0  # 90.2%
    assert packing.share_from_rates({1: 100.0, 2: 200.0, 4: 400.0}) == 0.25
    assert packing.share_from_rates({1: 100.0, 2: 112.0}) == 0.5  # alone is 89%


@pytest.mark.parametrize("config", model_configs(), ids=lambda c: "/".join(map(str, c.values())))
def test_every_course_architecture_has_a_measured_or_judged_share(config):
    label = TrialConfig.from_dict(config).architecture
    assert (label in packing.MEASURED) != (label in packing.JUDGED), label


def test_smp_models_get_a_whole_gpu():
    cfg = TrialConfig.from_dict({"model": "smp", "arch": "unet", "encoder": "resnet34"})
    assert packing.gpu_share(cfg) == 1.0


@pytest.mark.parametrize("cluster, flags, expected", [
    ({"CPU": 16, "GPU": 2}, {"gpus_per_trial": 0.5}, {"cpu": 4, "gpu": 0.5}),  # as given
    ({"CPU": 2}, {}, {"cpu": 1, "gpu": 0}),  # no GPUs: an even share of the CPUs
    ({"CPU": 16, "GPU": 2}, {"gpus_per_trial": 0}, {"cpu": 2, "gpu": 0}),
])
def test_explicit_numbers_and_cpu_only_clusters_keep_one_request(cluster, flags, expected):
    assert resources_per_trial(SweepSettings(**flags), 6, cluster, homework_configs()) == expected


def test_cpus_per_trial_holds_while_the_gpu_share_follows_the_architecture():
    requests = resources_per_trial(SweepSettings(cpus_per_trial=3), 6, {"CPU": 16, "GPU": 1},
                                   homework_configs())
    assert requests["by_point"]["deeplab/mobilenet_v3_small/aspp/aug"] == {"cpu": 3, "gpu": 0.5}
    assert requests["by_point"]["unet/aug"] == {"cpu": 3, "gpu": 1.0}


def test_tune_gets_each_points_request_and_the_start_line_names_the_shares():
    configs = homework_configs()
    requests = resources_per_trial(SweepSettings(), 6, {"CPU": 16, "GPU": 1}, configs)
    request = pickle.loads(pickle.dumps(trial_request(requests)))  # Ray ships it to trials
    searched = {"point": "deeplab/mobilenet_v3_small/aspp/aug", "lr": 1e-3, "crop_size": 128}
    assert request(searched) == {"cpu": 8, "gpu": 0.5}
    assert request({"point": "unet/aug"}) == {"cpu": 16, "gpu": 1.0}
    line = describe_resources(requests, configs)
    assert f"0.5 GPU / 8 CPU for {MBV3}; 1 GPU / 16 CPU for unet, " in line
    assert describe_resources({"cpu": 1, "gpu": 0}, configs) == "1 CPU / 0 GPU each"
    # Slots count the points' mean request (5 whole GPUs and a half): 8 GPUs run 8 at once.
    assert concurrent_slots(requests, {"CPU": 16, "GPU": 1}) == 1
    eight = {"CPU": 64, "GPU": 8}
    assert concurrent_slots(resources_per_trial(SweepSettings(), 6, eight, configs), eight) == 8


def test_the_cli_flag_takes_auto_or_a_number():
    from tune_app import build_parser

    parser = build_parser()
    assert parser.parse_args([]).gpus_per_trial == "auto"
    assert parser.parse_args(["--gpus-per-trial", "0.5"]).gpus_per_trial == 0.5
    with pytest.raises(SystemExit):
        parser.parse_args(["--gpus-per-trial", "half"])
