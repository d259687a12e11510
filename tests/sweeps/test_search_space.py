"""The conditional search space: Optuna proposes models from a grid's axes, never one that
mixes the axes of two models, and resolves every proposal to a labelled point."""

from __future__ import annotations

import optuna
import pytest

from segmodels.errors import ConfigError
from segmodels.models import NAMED_BY
from sweeps.grids import Grid, expand, load_grid, point_label
from sweeps.search import LABELLED_AXES
from sweeps.search_space import (
    SHARED_AXES,
    NumericRange,
    build_space,
    parse_ranges,
    within_budget,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

# A grid whose axes give every model its own axes: DeepLab's backbone and ASPP, smp's arch and
# encoder, UNet none; plus the shared ones.
MIXED = Grid("mixed", expand({
    "model": ["unet", "deeplab", "smp"], "backbone": ["resnet18", "mobilenet_v3_small"],
    "aspp": [False, True], "arch": ["unet", "fpn"], "encoder": ["resnet18", "resnet34"],
    "augment": [False, True], "loss": ["ce", "dice"]}))


def test_every_model_axis_is_labelled():
    named = {axis for axes in NAMED_BY.values() for axis in axes}
    assert {"model", *named, *SHARED_AXES} == set(LABELLED_AXES)


@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler(seed=0),
                                     optuna.samplers.TPESampler(seed=0, n_startup_trials=20)])
def test_proposals_never_mix_the_axes_of_two_models(sampler):
    space = build_space(MIXED, [64, 128], {"weight_decay": NumericRange(1e-6, 1e-2, log=True)})
    study = optuna.create_study(sampler=sampler, direction="maximize")
    seen = set()
    for i in range(600):
        trial = study.ask()
        label = space(trial)["point"]
        params = trial.params
        model = params["model"]
        others = {a for axes in NAMED_BY.values() for a in axes} - set(NAMED_BY[model])
        assert not others & set(params), (model, params)  # no backbone for UNet, ...
        assert set(NAMED_BY[model]) <= set(params)
        assert label in space.points
        point = space.points[label]
        assert point_label(point) == label and point["model"] == model
        for axis in (*NAMED_BY[model], *SHARED_AXES):  # the label is what was drawn
            if axis in space.axes:
                assert point[axis] == params[axis], (axis, point, params)
        assert params["crop_size"] in (64, 128) and 1e-6 <= params["weight_decay"] <= 1e-2
        seen.add(label)
        study.tell(trial, float(i % 7))
    if isinstance(sampler, optuna.samplers.RandomSampler):
        assert seen == set(space.points)  # and the space reaches every combination


def test_the_space_spans_the_grid_axes_and_keeps_the_grids_own_points():
    grid = load_grid("homework")
    grid.points[5] = {**grid.points[5], "crops_per_image": 4}  # as --point-set gives it
    space = build_space(grid, [128])
    # 1 UNet architecture x 2 augment + 3 backbones x 2 ASPP x 2 augment
    assert len(space.points) == 2 + 12
    assert set(point_label(p) for p in grid.points) <= set(space.points)
    assert "deeplab/mobilenet_v3_small/aspp/aug/crops_per_image=4" in space.points
    assert "deeplab/mobilenet_v3_small/aspp/aug" not in space.points
    assert "deeplab/vgg11_bn/no-aspp/no-aug" in space.points  # not a grid point, proposable


def test_a_seed_makes_optuna_propose_its_grid_point():
    grid = load_grid("homework")
    space = build_space(grid, [64, 128])
    study = optuna.create_study(direction="maximize")
    for label in grid.labels:
        study.enqueue_trial(space.seed(label, {"lr": 1e-3, "crop_size": 64}))
    for point in grid.points:
        trial = study.ask()
        assert space(trial)["point"] == point_label(point)
        assert trial.params["lr"] == 1e-3 and trial.params["crop_size"] == 64
        study.tell(trial, 0.5)


def test_an_axis_with_one_value_is_not_asked():
    space = build_space(Grid("g", expand({"model": ["unet"], "augment": [False]})), [64])
    study = optuna.create_study()
    trial = study.ask()
    assert space(trial) == {"point": "unet/no-aug"}
    assert set(trial.params) == {"lr", "crop_size"}


def test_within_budget_drops_values_only_rejected_models_use():
    space = build_space(load_grid("homework"), [64])
    rejected = {label for label in space.points
                if label.startswith(("unet", "deeplab/vgg11_bn")) or "/aspp/" in label
                and "resnet18" in label}
    narrowed = within_budget(space, rejected)
    assert "model" not in narrowed.axes and narrowed.fixed_axes["model"] == "deeplab"
    assert narrowed.axes["backbone"] == ["resnet18", "mobilenet_v3_small"]
    assert narrowed.axes["aspp"] == [False, True]  # MobileNet with ASPP fits
    # ResNet18 with ASPP is still proposable (its trial is rejected, never trained)
    assert "deeplab/resnet18/aspp/aug" in narrowed.points
    with pytest.raises(ConfigError, match="every model"):
        within_budget(space, set(space.points))


@pytest.mark.parametrize("raw, message", [
    ({"lr": [1e-4, 1e-2]}, "searched already"),
    ({"optimizer": [1, 2]}, "not a number"),
    ({"weight_decay": [1e-2, 1e-6]}, "low < high"),
    ({"weight_decay": [0, 1e-2, "log"]}, "log range needs low > 0"),
    ({"weight_decay": [1e-6]}, r"\[low, high\]"),
    ({"weight_decay": [1e-6, 1e-2, "linear"]}, r"\[low, high, log\]"),
    ({"no_such": [1, 2]}, "not a numeric setting"),
])
def test_bad_search_ranges_are_refused_naming_the_key(raw, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_ranges(raw, "grid.yaml")
    assert str(info.value).startswith(f"grid.yaml: search.{next(iter(raw))}")


def test_search_ranges_take_the_settings_type():
    ranges = parse_ranges({"weight_decay": [1e-6, 1e-2, "log"], "epochs": [2, 8]}, "g.yaml")
    assert ranges["weight_decay"] == NumericRange(1e-6, 1e-2, log=True, integer=False)
    assert ranges["epochs"] == NumericRange(2, 8, log=False, integer=True)


def test_with_pretrained_the_models_with_weights_keep_them_and_the_others_train_from_scratch():
    from sweeps.grids import scratch_point

    fixed = {"pretrained": True}
    grid = load_grid("homework")
    space = build_space(grid, [64], fixed=fixed, adjust=lambda p: scratch_point(p, fixed))
    assert "pretrained" not in space.axes  # one value: the sweep's
    assert "unet/no-aug/pretrained=False" in space.points  # UNet has no ImageNet weights
    assert "deeplab/resnet18/aspp/aug" in space.points  # DeepLab keeps its weights
    assert not any(label.startswith("deeplab") and "pretrained" in label
                   for label in space.points)
    study = optuna.create_study()
    for _ in range(30):
        assert space(study.ask())["point"] in space.points


def test_a_loss_set_on_some_points_is_an_axis_with_the_sweeps_loss_beside_it():
    grid = load_grid("homework")
    grid.points = [{**p, "loss": "dice"} if p["model"] == "unet" else p for p in grid.points]
    space = build_space(grid, [64])
    assert space.axes["loss"] == ["dice", "ce"]
    assert "deeplab/resnet18/aspp/aug/loss=dice" in space.points
    assert "deeplab/resnet18/aspp/aug" in space.points  # the sweep's loss: the grid's label


def test_grid_points_the_space_cannot_tell_apart_are_refused():
    grid = Grid("g", [{"model": "unet", "augment": False, "optimizer": "adam"},
                      {"model": "unet", "augment": False, "optimizer": "sgd"}])
    with pytest.raises(ConfigError, match="differ only in settings --search optuna does not "
                                          "propose"):
        build_space(grid, [64])


def test_a_seed_keeps_a_searched_setting_at_the_sweeps_value_within_its_range():
    space = build_space(load_grid("homework"), [64],
                        {"weight_decay": NumericRange(1e-6, 1e-2, log=True),
                         "epochs": NumericRange(2, 8, integer=True)})
    seed = space.seed("unet/aug", {"lr": 1e-3, "crop_size": 64, "weight_decay": 0.0,
                                   "epochs": 5})
    assert seed["weight_decay"] == 1e-6 and seed["epochs"] == 5  # 0 clamped into the range
    assert space.longest_epochs(4) == 8
