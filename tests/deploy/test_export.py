"""``segsweep export`` on a stored sweep (the shared homework --seeds 3 sweep): each homework
model exports and passes its check, the card says what a deployment needs, a broken export
fails loudly, and the predictor runs it with torch unimportable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deploy.export as export_module
import tune_app
from deploy import FORMATS, export_run
from deploy.formats import Format, export_onnx, run_onnx
from deploy.model_card import CARD_FILE
from sweeps.storage import MODEL_FILE

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
NO_TORCH = ROOT / "tests" / "no_torch"


@pytest.fixture(scope="module")
def exported(homework_seeds):
    """The default export, where it goes by default (RUN/export/NAME): the best point's best
    trial, checked on 3 images."""
    before = set((homework_seeds.exp / "export").glob("*"))
    code = tune_app.main(["export", str(homework_seeds.exp), "--check-images", "3",
                          "--repeats", "1"])
    assert code == 0
    (out,) = set((homework_seeds.exp / "export").glob("*")) - before
    return out


def test_the_default_export_is_the_reports_best_checked_and_carded(exported, homework_seeds):
    card = json.loads((exported / MODEL_FILE).read_text())
    assert card["passed_check"] and (exported / card["model_file"]).is_file()
    assert card["check"]["agreement"] >= 0.999 and card["check"]["images"] == 3
    assert abs(card["check"]["miou_exported"] - card["check"]["miou_pytorch"]) <= 1e-3
    assert card["trained"]["chosen"].startswith("the best point by the report's ranking")
    assert card["scores"]["point_over_seeds"]["seeds"] == 3
    assert set(card["latency_ms_per_frame"]) == {"onnxruntime", "pytorch"}
    assert [c["name"] for c in card["classes"]][:3] == ["background", "building", "road"]
    text = (exported / CARD_FILE).read_text()
    for needed in ("SYNTHETIC", "mean [0.485, 0.456, 0.406]", "classes agree on",
                   "python -m segsweep_predict", "Trained from scratch"):
        assert needed in text, needed


def test_the_report_names_the_export_command_and_shows_each_exports_latency(
        exported, homework_seeds, tmp_path):
    from analysis import build_report

    page = build_report(homework_seeds.exp, out_dir=tmp_path / "report").read_text()
    deploy = page[page.index("<h2>Deploy</h2>"):]
    assert f"python tune_app.py export {homework_seeds.exp}" in deploy
    assert "Exported so far" in deploy and str(exported) in deploy
    assert "passed (" in deploy and "PyTorch / exported" in deploy
    assert "<th>ort ms (exported)</th>" in page


def test_every_homework_model_exports_from_the_sweep_and_passes(homework_seeds, tmp_path):
    from analysis.loading import load_experiment

    trials = load_experiment(homework_seeds.exp).trials
    first_seed = trials[trials["seed"] == trials["seed"].min()]
    assert len(first_seed) == 6
    for name in first_seed["name"]:
        result = export_run(homework_seeds.exp, trial=str(name), out=tmp_path / "x",
                            check_images=2, repeats=1)
        assert result.check.passed, (name, result.check)
    last = export_run(homework_seeds.exp, trial=str(name), checkpoint="last",
                      fmt="torchscript", out=tmp_path / "ts", check_images=2, repeats=1)
    assert last.check.passed and last.model_file.name == "model.ts"
    assert last.checkpoint.parent.name == max(
        p.name for p in Path(first_seed[first_seed["name"] == name]["trial_dir"].iloc[0])
        .glob("checkpoint_*"))


def test_a_broken_export_fails_its_check_with_exit_1_and_is_kept_as_failed(
        homework_seeds, tmp_path, monkeypatch, capsys):
    """A test double whose exported graph differs from the model: here, another network's."""
    from segmodels.models import create_model

    def write_another(model, path):
        return export_onnx(create_model("unet", min_channels=4, max_channels=8), path)

    monkeypatch.setitem(export_module.FORMATS, "onnx",
                        Format("model.onnx", write_another, run_onnx, "onnxruntime"))
    out = tmp_path / "broken"
    code = tune_app.main(["export", str(homework_seeds.exp), "--out", str(out),
                          "--check-images", "2", "--repeats", "1"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "model.FAILED.onnx: the export does not match PyTorch on 2 validation" in err
    assert "kept for inspection, not for use" in err
    assert (out / "model.FAILED.onnx").is_file() and not (out / "model.onnx").exists()
    card = json.loads((out / MODEL_FILE).read_text())
    assert not card["passed_check"]
    assert "FAILED ITS CHECK" in (out / CARD_FILE).read_text()
    predicted = _predict(out, [_image(tmp_path / "a.png", 40, 50)], tmp_path / "p")
    assert predicted.returncode == 2 and "failed its check" in predicted.stderr


@pytest.mark.parametrize("args, message", [
    (["--trial", "nope"], "--trial 'nope': no such trial"),
    (["--check-images", "0"], "--check-images must be >= 1"),
])
def test_a_bad_request_is_one_line_and_exit_2(homework_seeds, tmp_path, capsys, args, message):
    code = tune_app.main(["export", str(homework_seeds.exp), "--out", str(tmp_path / "o"),
                          *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_a_folder_that_is_no_sweep_is_refused(tmp_path, capsys):
    assert tune_app.main(["export", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err


def _image(path: Path, height: int, width: int) -> Path:
    rng = np.random.default_rng(height * width)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def _predict(model: Path, images: list[Path], out: Path) -> subprocess.CompletedProcess:
    """The predictor as a deployment runs it: torch, Lightning and Ray unimportable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(NO_TORCH), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "segsweep_predict", str(model),
                           *map(str, images), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def test_the_predictor_runs_without_torch_and_gives_pytorchs_classes(exported, tmp_path):
    import torch

    from deploy.formats import Deployable, pixels
    from segmodels.training import model_from_checkpoint

    images = [_image(tmp_path / f"{h}x{w}.png", h, w) for h, w in ((48, 64), (75, 131),
                                                                     (120, 88))]
    done = _predict(exported, images, tmp_path / "pred")
    assert done.returncode == 0, done.stderr
    assert "No module named" not in done.stderr
    card = json.loads((exported / MODEL_FILE).read_text())
    model, _ = model_from_checkpoint(card["trained"]["checkpoint"])
    for path in images:
        classes = np.asarray(Image.open(tmp_path / "pred" / f"{path.stem}.classes.png"))
        with torch.no_grad():
            logits = Deployable(model)(torch.from_numpy(pixels(np.asarray(Image.open(path)))))
        expected = logits[0].argmax(0).numpy()
        assert classes.shape == expected.shape
        assert (classes == expected).mean() >= 0.999, path.name
        overlay = np.asarray(Image.open(tmp_path / "pred" / f"{path.stem}.overlay.png"))
        assert overlay.shape == (*expected.shape, 3)
    assert FORMATS["onnx"].runtime == "onnxruntime"
