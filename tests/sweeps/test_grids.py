import pytest

from sweeps.grids import NAMED_GRIDS, GridError, load_grid


def test_homework_grid_is_the_courses_six_experiments():
    labels = load_grid("homework").labels
    assert labels == [
        "unet/no-aug", "unet/aug", "deeplab/resnet18/no-aspp/aug", "deeplab/resnet18/aspp/aug",
        "deeplab/vgg11_bn/aspp/aug", "deeplab/mobilenet_v3_small/aspp/aug",
    ]


def test_full_grid_has_fourteen_points_and_unet_has_no_backbone_axis():
    grid = load_grid("full")
    assert len(grid.points) == 14 == len(set(grid.labels))
    unets = [p for p in grid.points if p["model"] == "unet"]
    assert len(unets) == 2 and all("backbone" not in p and "aspp" not in p for p in unets)


@pytest.mark.parametrize("name", list(NAMED_GRIDS))
def test_named_grids_have_unique_labels(name):
    grid = load_grid(name)
    assert len(set(grid.labels)) == len(grid.points) > 0


def _write(tmp_path, text):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return str(path)


def test_user_yaml_grid_expands_axes_and_keeps_fixed_values(tmp_path):
    grid = load_grid(_write(tmp_path, """
axes:
  model: [unet, deeplab]
  backbone: [resnet18, mobilenet_v3_small]
  aspp: [true]
  augment: [false, true]
fixed:
  epochs: 3
  lr: 0.01
"""))
    assert len(grid.points) == 2 + 2 * 2  # unet x aug; deeplab x backbone x aug
    assert grid.fixed == {"epochs": 3, "lr": 0.01}
    assert grid.name == "grid"


@pytest.mark.parametrize("text, expected", [
    ("axes: [unclosed", "not valid YAML"),
    ("axes:\n  model: [unet]\ncolour: red\n", "unknown top-level key.*colour.*axes, fixed"),
    ("axes:\n  modle: [unet]\n", "unknown key 'axes.modle'.*valid keys:.*model"),
    ("axes:\n  model: [segformer]\n",
     "axes.model = 'segformer'.*valid values: deeplab, smp, unet"),
    ("axes:\n  model: [smp]\n  encoder: [resnet35]\n",
     "axes.encoder = 'resnet35'.*mit_b0.*resnet34.*or any timm model as tu-NAME"),
    ("axes:\n  model: [smp]\n  arch: [unet3]\n", "axes.arch = 'unet3'.*deeplabv3plus"),
    ("axes:\n  loss: [iou]\n", "axes.loss = 'iou'.*ce, weighted_ce, dice"),
    ("axes:\n  backbone: [resnet50]\n",
     "axes.backbone = 'resnet50'.*mobilenet_v3_small, resnet18, vgg11_bn"),
    ("axes:\n  model: [unet]\nfixed:\n  epochs: ten\n", "fixed.epochs = 'ten'.*expected int"),
    ("axes:\n  aspp: [maybe]\n", "axes.aspp = 'maybe'.*wrong type"),
    ("axes:\n  model: [unet]\nfixed:\n  model: deeplab\n", "both an axis and fixed"),
    ("- just a list\n", "must be a mapping"),
    ("axes:\n  model: [unet]\n  lr: []\n", "axes.lr is an empty list"),
    ("axes:\n  lr: [0.01]\n  augment: [true]\n  lr: [0.1]\n",
     "key 'lr' appears twice \\(lines 2 and 4\\); keep one"),
])
def test_bad_yaml_grid_is_one_clear_error_naming_file_and_key(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(GridError, match=expected) as err:
        load_grid(path)
    assert path in str(err.value)
    assert "\n" not in str(err.value)


def test_numbers_in_a_grid_file_are_read_as_yaml_1_2_reads_them(tmp_path):
    """PyYAML alone reads 1e-3 as text (YAML 1.1 floats need a dot)."""
    grid = load_grid(_write(tmp_path, "axes:\n  model: [unet]\n  lr: [1e-3, 3E-4]\n"
                                      "fixed:\n  weight_decay: 1e-5\n"))
    assert sorted(p["lr"] for p in grid.points) == [3e-4, 1e-3]
    assert grid.fixed["weight_decay"] == 1e-5


def test_unknown_grid_name_lists_named_grids():
    with pytest.raises(GridError, match="homework, full, smoke"):
        load_grid("homewrk")


def test_dict_and_optional_values_type_check(tmp_path):
    grid = load_grid(_write(tmp_path, "axes:\n  model: [unet]\nfixed:\n"
                            "  model_kwargs: {min_channels: 4}\n  num_workers: null\n"))
    assert grid.fixed["model_kwargs"] == {"min_channels": 4}
    with pytest.raises(GridError, match="fixed.model_kwargs = 3 has the wrong type"):
        load_grid(_write(tmp_path, "axes:\n  model: [unet]\nfixed:\n  model_kwargs: 3\n"))


def _yaml_grid(tmp_path, fixed: str):
    text = "axes:\n  model: [unet, deeplab]\n" + (f"fixed:\n{fixed}" if fixed else "")
    return load_grid(_write(tmp_path, text))


def test_fixed_model_setting_is_in_every_point_and_label(tmp_path):
    # fixed `augment: false` once lost to the points' default augment=True: labels said
    # "aug" and the trials (point over fixed) trained with augmentation.
    grid = _yaml_grid(tmp_path, "  augment: false\n  epochs: 3\n")
    assert grid.labels == ["unet/no-aug", "deeplab/resnet18/aspp/no-aug"]
    for point in grid.points:
        assert {**grid.fixed, **point}["augment"] is False  # what runner and trainable merge
    assert grid.fixed == {"epochs": 3}  # model settings live in the points


def test_grids_differing_only_in_a_fixed_model_setting_have_different_labels(tmp_path):
    plain = _yaml_grid(tmp_path, "").labels
    assert plain == ["unet/aug", "deeplab/resnet18/aspp/aug"]
    assert _yaml_grid(tmp_path, "  augment: true\n").labels == plain
    assert _yaml_grid(tmp_path, "  aspp: false\n  backbone: vgg11_bn\n").labels == [
        "unet/aug", "deeplab/vgg11_bn/no-aspp/aug"]


def test_fixed_model_without_a_model_axis_is_the_grids_model(tmp_path):
    grid = load_grid(_write(tmp_path, "axes:\n  augment: [false, true]\nfixed:\n  model: unet\n"))
    assert grid.labels == ["unet/no-aug", "unet/aug"]


def test_point_settings_reach_only_the_matching_points_and_show_in_their_labels():
    from sweeps.grids import apply_point_settings

    grid = apply_point_settings(load_grid("homework"),
                                ["deeplab/mobilenet_v3_small/*:crops_per_image=8",
                                 "unet/*:lr=3e-3", "*/no-aug:pretrained=false"])
    by_label = grid.by_label()
    mobilenet = by_label["deeplab/mobilenet_v3_small/aspp/aug/crops_per_image=8"]
    assert mobilenet["crops_per_image"] == 8 and isinstance(mobilenet["crops_per_image"], int)
    assert by_label["unet/aug/lr=0.003"]["lr"] == 0.003
    assert by_label["unet/no-aug/lr=0.003/pretrained=False"]["pretrained"] is False
    assert "crops_per_image" not in by_label["deeplab/resnet18/aspp/aug"]
    assert len(grid.points) == 6


def test_point_settings_may_not_change_the_model_itself():
    from sweeps.grids import apply_point_settings

    with pytest.raises(GridError, match="names the model itself"):
        apply_point_settings(load_grid("homework"), ["unet/*:augment=true"])


def test_point_set_values_take_the_fields_type():
    from sweeps.grids import parse_point_setting

    assert parse_point_setting("*:precision=32") == ("*", "precision", "32")  # a str field
    assert parse_point_setting("*:lr=1e-3") == ("*", "lr", 0.001)
    assert parse_point_setting("*:pretrained=true") == ("*", "pretrained", True)
    assert parse_point_setting("*:num_workers=none") == ("*", "num_workers", None)


def test_point_set_that_would_merge_two_points_is_refused(tmp_path):
    from sweeps.grids import apply_point_settings

    path = tmp_path / "lrs.yaml"
    path.write_text("axes:\n  model: [unet]\n  lr: [0.001, 0.003]\n")
    with pytest.raises(GridError, match="would become the same"):
        apply_point_settings(load_grid(str(path)), ["*:lr=0.001"])


def test_a_fixed_backbone_does_not_reach_unet(tmp_path):
    from segmodels.models.registry import create_model
    from segmodels.training.config import TrialConfig

    path = tmp_path / "vgg.yaml"
    path.write_text("axes:\n  model: [unet, deeplab]\nfixed:\n  backbone: vgg11_bn\n"
                    "  aspp: false\n  epochs: 3\n")
    grid = load_grid(str(path))
    assert grid.fixed == {"epochs": 3}
    for point in grid.points:
        cfg = TrialConfig.from_dict({**grid.fixed, **point})
        create_model(cfg.model, **cfg.model_args())  # UNet refused backbone/aspp before


def test_zoo_grid_is_the_courses_four_models_and_four_of_smps():
    grid = load_grid("zoo")
    assert grid.labels == [
        "unet/aug", "deeplab/resnet18/aspp/aug", "deeplab/vgg11_bn/aspp/aug",
        "deeplab/mobilenet_v3_small/aspp/aug", "smp/unet/resnet34/aug",
        "smp/deeplabv3plus/resnet34/aug", "smp/fpn/resnet34/aug", "smp/segformer/mit_b0/aug",
    ]
    assert grid.scheduler == "fifo"  # a comparison of models: every point its full epochs


def test_losses_grid_compares_every_loss_on_one_architecture():
    from segmodels.training.losses import list_losses

    grid = load_grid("losses")
    assert [p["loss"] for p in grid.points] == list_losses()
    assert {(p["model"], p["arch"], p["encoder"]) for p in grid.points} == {
        ("smp", "unet", "resnet34")}
    assert grid.labels[1] == "smp/unet/resnet34/aug/loss=weighted_ce"
    assert grid.scheduler == "fifo"


def test_each_model_keeps_only_its_own_axes_with_its_defaults(tmp_path):
    grid = load_grid(_write(tmp_path, """
axes:
  model: [unet, deeplab, smp]
  encoder: [resnet34, tu-resnet18]
fixed:
  backbone: vgg11_bn
"""))
    assert grid.labels == ["unet/aug", "deeplab/vgg11_bn/aspp/aug", "smp/unet/resnet34/aug",
                           "smp/unet/tu-resnet18/aug"]
    smp = grid.by_label()["smp/unet/resnet34/aug"]
    assert "backbone" not in smp and "aspp" not in smp  # DeepLab's axes never reach smp


def test_pretrained_applies_to_the_models_that_have_weights_and_labels_say_the_others_do_not():
    from sweeps.grids import scratch_where_no_weights

    grid, scratch = scratch_where_no_weights(load_grid("homework"), {"pretrained": True})
    assert scratch == ["unet/no-aug/pretrained=False", "unet/aug/pretrained=False"]
    assert grid.labels[:2] == scratch and len(grid.points) == 6
    assert all("pretrained" not in p for p in grid.points if p["model"] == "deeplab")
    unchanged, none = scratch_where_no_weights(load_grid("homework"), {})
    assert none == [] and unchanged.labels == load_grid("homework").labels


def test_a_pretrained_axis_keeps_one_unet_point(tmp_path):
    from sweeps.grids import scratch_where_no_weights

    grid = load_grid(_write(tmp_path, "axes:\n  model: [unet, deeplab]\n"
                                      "  pretrained: [false, true]\n"))
    resolved, scratch = scratch_where_no_weights(grid, {})
    assert resolved.labels == ["unet/aug/pretrained=False", "deeplab/resnet18/aspp/aug/"
                               "pretrained=False", "deeplab/resnet18/aspp/aug/pretrained=True"]
    assert scratch == ["unet/aug/pretrained=False"]
