"""Bad input through the CLI: one clear message, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tune_app


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _first(root: Path, split: str, kind: str) -> Path:
    return sorted((root / split / kind).iterdir())[0]


def _corrupt_jpeg(root):
    _first(root, "train", "image").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return _first(root, "train", "image").name, "cannot decode image"


def _missing_mask(root):
    path = _first(root, "train", "mask")
    path.unlink()
    return path.stem, "image has no mask"


def _orphan_mask(root):
    path = _first(root, "train", "image")
    path.unlink()
    return path.stem, "mask has no image"


def _wrong_size_mask(root):
    path = _first(root, "test", "mask")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(path)
    return path.name, "mask is 10x10"


def _label_42(root):
    path = _first(root, "train", "mask")
    mask = np.array(Image.open(path))
    mask[0, 0] = 42
    Image.fromarray(mask).save(path)
    return path.name, "42"


def _colour_mask(root):
    path = _first(root, "train", "mask")
    mask = np.array(Image.open(path))
    rgb = np.stack([mask * 30, mask * 10, mask], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path.name, "colour-coded"


def _empty_split(root):
    for path in (root / "test" / "image").iterdir():
        path.unlink()
    for path in (root / "test" / "mask").iterdir():
        path.unlink()
    return "test", "no images"


def _jpeg_mask_named_png(root):
    path = _first(root, "train", "mask")
    Image.open(path).copy().save(path, format="JPEG", quality=90)
    return path.name, "really a JPEG"


def _same_name_twice(root):
    path = _first(root, "train", "image")
    Image.open(path).save(path.with_suffix(".png"))
    return path.stem, "same name"


def _semi_transparent_mask(root):
    path = _first(root, "train", "mask")
    ids = np.array(Image.open(path))
    alpha = np.full(ids.shape, 255, np.uint8)
    alpha[0, 0] = 100
    Image.fromarray(np.dstack([ids, ids, ids, alpha]), "RGBA").save(path)
    return path.name, "semi-transparent"


def _exif_turns_image_sideways(root):
    path = _first(root, "test", "image")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(path).copy().save(path, exif=exif)
    return path.name, "EXIF orientation"


def _git_lfs_pointer(root):
    path = _first(root, "train", "image")
    path.write_text("version https://git-lfs.github.com/spec/v1\nsize 12345\n")
    return path.name, "git lfs pull"


def _dangling_link(root):
    path = _first(root, "train", "mask")
    path.unlink()
    path.symlink_to(root / "gone.png")
    return path.name, "broken symbolic link"


def _val_instead_of_test(root):
    (root / "test").rename(root / "val")
    return "val", "rename it to test"


def _ignore_value_254(root):
    path = _first(root, "train", "mask")
    mask = np.array(Image.open(path))
    mask[0, 0], mask[0, 1] = 255, 254  # 255 is unlabelled; 254 is not
    Image.fromarray(mask).save(path)
    return path.name, "254"


DATA_CASES = {
    "corrupt-jpeg": _corrupt_jpeg, "missing-mask": _missing_mask, "orphan-mask": _orphan_mask,
    "mask-size": _wrong_size_mask, "label-42": _label_42, "colour-mask": _colour_mask,
    "empty-split": _empty_split,
    # what used to train silently, or fail with the wrong words
    "jpeg-mask-named-png": _jpeg_mask_named_png, "same-name-twice": _same_name_twice,
    "semi-transparent-mask": _semi_transparent_mask,
    "exif-turns-image-sideways": _exif_turns_image_sideways,
    "git-lfs-pointer": _git_lfs_pointer, "dangling-link": _dangling_link,
    "val-instead-of-test": _val_instead_of_test, "ignore-value-254": _ignore_value_254,
}


def _run(capsys, *args):
    code = tune_app.main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_broken_dataset_is_refused_naming_the_file(case, tmp_path, tiny_dataset_dir, capsys):
    data = _copy(tiny_dataset_dir, tmp_path / "data")
    name, problem = DATA_CASES[case](data)
    storage = tmp_path / "runs"
    code, output = _run(capsys, "--grid", "smoke", "--data", str(data), "--crop-size", "64",
                        "--storage", str(storage))
    assert code == 2
    assert name in output and problem in output
    assert "Traceback" not in output
    assert not storage.exists()


@pytest.mark.parametrize("what", ["folder", "file"])
def test_a_dataset_the_system_will_not_let_us_read_is_one_line(what, monkeypatch, tmp_path,
                                                               tiny_dataset_dir, capsys):
    # As root, chmod does not bite: the listing or the read is made to fail instead.
    import os

    data = _copy(tiny_dataset_dir, tmp_path / "data")
    locked = data / "train" / "mask" if what == "folder" else _first(data, "test", "image")
    real_scandir, real_read = os.scandir, Path.read_bytes

    def scandir(path="."):
        if isinstance(path, (str, os.PathLike)) and Path(path) == locked:  # not a folder's fd
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def read_bytes(self):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    storage = tmp_path / "runs"
    code, output = _run(capsys, "--grid", "smoke", "--data", str(data), "--crop-size", "64",
                        "--storage", str(storage))
    assert code == 2 and f"{locked}: " in output and "permission denied" in output, output
    assert "Traceback" not in output and not storage.exists()


@pytest.mark.parametrize("args, message", [
    (["--data", "/nonexistent/data"], "does not exist"),
    (["--epochs", "0"], "epochs must be > 0"),
    (["--batch-size", "-1"], "batch_size must be > 0"),
    (["--crops-per-image", "0"], "crops_per_image must be > 0"),
    (["--lr", "0"], "lr must be a finite number > 0"),
    (["--crop-size", "4096"], "larger than the smallest training image side"),
    (["--grid", "no-such-grid"], "unknown grid 'no-such-grid'"),
    (["--resume", "--name", "never-ran"], "no sweep named 'never-ran'"),
    (["--point-set", "nothing/*:epochs=2"], "matches no point of grid 'smoke'"),
    (["--point-set", "*:epochs=two"], "wrong type; expected int"),
    (["--point-set", "epochs=2"], "expected PATTERN:KEY=VALUE"),
])
def test_bad_flags_are_refused_before_any_work(args, message, tmp_path, tiny_dataset_dir,
                                                capsys):
    storage = tmp_path / "runs"
    base = ["--grid", "smoke", "--data", str(tiny_dataset_dir), "--crop-size", "64",
            "--storage", str(storage)]
    code, output = _run(capsys, *base, *args)
    assert code == 2 and message in output and "Traceback" not in output
    assert not storage.exists()


def test_data_that_is_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "data.zip"
    path.write_bytes(b"zip")
    code, output = _run(capsys, "--data", str(path), "--storage", str(tmp_path / "runs"))
    assert code == 2 and "is a file, not a dataset folder" in output


def test_debug_shows_the_traceback(tmp_path, capsys):
    code, output = _run(capsys, "--data", str(tmp_path / "none"), "--debug",
                        "--storage", str(tmp_path / "runs"))
    assert code == 2 and "Traceback" in output


def test_greyscale_image_is_accepted_with_a_note(tmp_path, tiny_dataset_dir):
    import segmodels

    data = _copy(tiny_dataset_dir, tmp_path / "data")
    path = _first(data, "train", "image")
    Image.open(path).convert("L").save(path)
    with pytest.warns(UserWarning, match=f"{path.name}.*converted to RGB"):
        loaded = segmodels.load_dataset(data)
    assert loaded.train.images[0].shape[-1] == 3


def test_list_grids(capsys):
    assert tune_app.main(["--list-grids"]) == 0
    assert "homework" in capsys.readouterr().out


def test_a_sweep_whose_trials_failed_exits_1_naming_them_and_how_to_resume(
        monkeypatch, tmp_path, tiny_dataset_dir, capsys):
    # Scripts and CI read the exit code: a sweep with trials that used up their retries is
    # not a finished sweep (its ranking and report are still printed and written first).
    from ray.tune import Result

    from sweeps import runner

    def fake_results(prepared):
        return [Result(metrics={"point": point, "best_val_miou": 0.3}, checkpoint=None,
                       error=RuntimeError("boom") if point == "unet/aug" else None,
                       path=str(tmp_path / point), metrics_dataframe=None)
                for point in ("unet/aug", "unet/no-aug")]

    monkeypatch.setattr(runner, "run", fake_results)
    code, output = _run(capsys, "--grid", "smoke", "--data", str(tiny_dataset_dir),
                        "--crop-size", "64", "--storage", str(tmp_path / "runs"), "--no-report",
                        "--name", "failing")
    assert code == 1
    assert "1 of 2 trial(s) failed after their retries: unet/aug" in output
    assert "error.txt" in output
    assert f"python tune_app.py --name failing --storage {tmp_path / 'runs'} --resume" in output


def test_cli_choices_are_the_registries_keys():
    # One list per choice: a new optimizer, schedule, search or scheduler reaches the CLI alone.
    from segmodels.training.optim import LR_SCHEDULERS, OPTIMIZERS
    from sweeps.search import SCHEDULERS, SEARCHES

    choices = {a.dest: a.choices for a in tune_app.build_parser()._actions}
    assert choices["optimizer"] == list(OPTIMIZERS)
    assert choices["lr_scheduler"] == list(LR_SCHEDULERS)
    assert choices["search"] == list(SEARCHES)
    assert choices["scheduler"] == list(SCHEDULERS)


def test_an_internal_error_keeps_its_traceback(monkeypatch, tmp_path, tiny_dataset_dir):
    # A bug (here a numpy-style ValueError deep inside) is not a user mistake: it must not be
    # turned into a one-line "error:" that hides where it happened.
    import sweeps.prepare as preparation

    def broken(settings):
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")

    monkeypatch.setattr(preparation, "prepare", broken)
    with pytest.raises(ValueError, match="could not be broadcast"):
        tune_app.main(["--grid", "smoke", "--data", str(tiny_dataset_dir),
                       "--storage", str(tmp_path / "runs")])


def test_a_user_mistake_deep_in_the_model_registry_is_one_line(tmp_path, tiny_dataset_dir,
                                                                capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text("axes:\n  model: [unet]\nfixed:\n  model_kwargs: {num_down_blocks: 0}\n")
    code, output = _run(capsys, "--grid", str(grid), "--data", str(tiny_dataset_dir),
                        "--crop-size", "64", "--storage", str(tmp_path / "runs"))
    assert code == 2 and "num_down_blocks must be >= 1" in output
    assert "Traceback" not in output and not (tmp_path / "runs").exists()


def test_inference_size_sets_the_timed_frame_and_a_bad_one_is_one_line(tmp_path, capsys):
    args = tune_app.build_parser().parse_args(["--inference-size", "1920x1080"])
    overrides = tune_app.settings_from_args(args).overrides
    assert (overrides["inference_width"], overrides["inference_height"]) == (1920, 1080)
    code, output = _run(capsys, "--inference-size", "1920", "--storage", str(tmp_path))
    assert code == 2 and "--inference-size '1920': expected WIDTHxHEIGHT" in output


def test_the_cli_says_what_it_loaded_from_data(monkeypatch, tmp_path, capsys):
    from data_helpers import make_tiny

    from sweeps import runner

    data = make_tiny(tmp_path / "mine")
    monkeypatch.setattr(runner, "run", lambda prepared: [])
    code, output = _run(capsys, "--grid", "smoke", "--data", str(data), "--crop-size", "32",
                        "--batch-size", "2", "--storage", str(tmp_path / "runs"), "--no-report")
    assert code == 0, output
    assert f"data: tiny-floodnet data at {data.resolve()}: 3 train / 2 val images" in output


def test_every_flag_has_help_and_the_epilog_gives_the_exit_codes():
    parser = tune_app.build_parser()
    silent = [a.option_strings for a in parser._actions if not a.help]
    assert not silent, f"flags without help: {silent}"
    text = parser.format_help()
    for code in ("0 ", "1 ", "2 ", "130"):
        assert f"\n  {code}" in text, code


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as done:
        tune_app.build_parser().parse_args(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("segsweep ")


def test_hints_name_the_command_the_user_ran(monkeypatch):
    args = tune_app.build_parser().parse_args(["--name", "hw"])
    monkeypatch.setattr(sys, "argv", ["/home/me/.venv/bin/segsweep"])
    assert tune_app._resume_command(args, "hw") == "segsweep --name hw --resume"
    assert tune_app.build_parser().prog == "segsweep"
    monkeypatch.setattr(sys, "argv", ["tune_app.py"])
    assert tune_app._resume_command(args, "hw") == "python tune_app.py --name hw --resume"


def test_a_trial_is_named_by_its_label_not_rays_run_trial_id():
    from types import SimpleNamespace

    from sweeps.runner import _trial_name

    grid = SimpleNamespace(config={"point": "deeplab/resnet18/aspp/aug"}, trial_id="a1b2c_00003")
    searched = SimpleNamespace(config={"point": "unet/aug", "lr": 0.0031, "crop_size": 64},
                               trial_id="a1b2c_00004")
    assert _trial_name(grid) == "deeplab/resnet18/aspp/aug"
    assert _trial_name(searched) == "unet/aug lr=0.0031 crop=64"


def test_help_and_a_bad_flag_answer_without_importing_torch_or_ray():
    # The parser is built from light modules (the registries' names, TrialConfig's defaults):
    # torch and Ray load only once a sweep starts.
    import subprocess
    import time

    app = Path(__file__).resolve().parents[1] / "tune_app.py"
    for args, code in ((["--help"], 0), (["--epochs", "two"], 2)):
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-X", "importtime", str(app), *args],
                              capture_output=True, text=True, timeout=60)
        seconds = time.monotonic() - started
        assert done.returncode == code, done.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                    for line in done.stderr.splitlines() if line.startswith("import time:")}
        assert "argparse" in imported
        assert not imported & {"torch", "ray", "pytorch_lightning"}, args
        assert seconds < 5, f"{args}: {seconds:.1f} s"


def test_quiet_prints_the_ranking_and_errors_only(monkeypatch, tmp_path, capsys):
    from data_helpers import make_tiny

    from sweeps import runner

    def chatty_run(prepared):
        print("a progress line")
        return []

    data = make_tiny(tmp_path / "mine")
    monkeypatch.setattr(runner, "run", chatty_run)
    code, output = _run(capsys, "--grid", "smoke", "--data", str(data), "--crop-size", "32",
                        "--batch-size", "2", "--storage", str(tmp_path / "runs"), "--no-report",
                        "--quiet")
    assert code == 0, output
    assert "Ranking" in output and "Constant-prediction baseline" in output
    for chatter in ("a progress line", "data:", "SYNTHETIC", "TensorBoard:"):
        assert chatter not in output
