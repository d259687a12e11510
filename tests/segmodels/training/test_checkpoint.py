"""segmodels.training.checkpoint: atomic save, safe load (never unpickles code), model rebuild."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import segmodels
from segmodels.training.checkpoint import (
    CHECKPOINT_FILE,
    FORMAT,
    CheckpointError,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from segmodels.training.config import TrialConfig

SIDE_EFFECTS: list[str] = []


def _side_effect(marker: str) -> str:
    """What a malicious pickle would run on load; records that it ran."""
    SIDE_EFFECTS.append(marker)
    Path(marker).write_text("pwned")
    return marker


class Evil:
    """Unpickling this calls _side_effect: loading must refuse it, never run it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (_side_effect, (self.marker,))


def test_round_trip_tensors_and_plain_values(tmp_path):
    state = {
        "model": {"w": torch.randn(3, 4), "b": torch.arange(5)},
        "optimizer": {"step": torch.tensor(7)},
        "epoch": 3,
        "val_miou": 0.625,
        "name": "trial_0001",
        "history": [0.1, 0.2, 0.3],
        "flags": {"augment": True, "backbone": None},
        "shape": (64, 64),
    }
    path = save_checkpoint(tmp_path / "run" / "checkpoint.pt", state)  # makes the parent dir
    assert path == tmp_path / "run" / "checkpoint.pt" and path.is_file()
    loaded = load_checkpoint(path)
    assert loaded["format"] == FORMAT and "version" in loaded
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert torch.equal(loaded["model"]["b"], state["model"]["b"])
    assert loaded["model"]["b"].dtype == torch.int64
    assert torch.equal(loaded["optimizer"]["step"], torch.tensor(7))
    for key in ("epoch", "val_miou", "name", "history", "flags"):
        assert loaded[key] == state[key]
    assert tuple(loaded["shape"]) == (64, 64)
    # a trial directory is accepted in place of the file
    assert load_checkpoint(tmp_path / "run")["epoch"] == 3
    assert CHECKPOINT_FILE == "checkpoint.pt"


def test_atomic_write_leaves_no_tmp_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.zeros(2)})
    save_checkpoint(path, {"epoch": 2, "w": torch.ones(2)})  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert not list(tmp_path.rglob("*.tmp"))
    assert load_checkpoint(path)["epoch"] == 2


def _missing(path: Path) -> Path:
    return path


def _truncated(path: Path) -> Path:
    save_checkpoint(path, {"model": {"w": torch.randn(64, 64)}, "epoch": 1})
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _random_bytes(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _torch_dict_without_marker(path: Path) -> Path:
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 1}, path)
    return path


def _torch_non_dict(path: Path) -> Path:
    torch.save([FORMAT, torch.zeros(2)], path)
    return path


BAD_FILES = {
    "missing": (_missing, "not found"),
    "truncated": (_truncated, "not a readable segsweep checkpoint"),
    "random-bytes": (_random_bytes, "not a readable segsweep checkpoint"),
    "empty-file": (_empty_file, "not a readable segsweep checkpoint"),
    "torch-dict-without-marker": (_torch_dict_without_marker, "marker"),
    "torch-list": (_torch_non_dict, "not a segsweep checkpoint"),
}


@pytest.mark.parametrize("make, problem", list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_bad_checkpoint_raises_naming_file(tmp_path, make, problem):
    path = make(tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert str(path) in msg, msg
    assert problem in msg, msg
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_arbitrary_pickle_is_refused_and_never_unpickled(tmp_path, writer):
    marker = tmp_path / "side_effect_ran"
    path = tmp_path / "checkpoint.pt"
    payload = {"format": FORMAT, "version": 1, "evil": Evil(str(marker))}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    # sanity: a plain unpickle of this file would run the side effect
    assert not marker.exists()
    SIDE_EFFECTS.clear()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)
    assert SIDE_EFFECTS == []
    assert not marker.exists()


def test_side_effect_fixture_really_runs_under_plain_pickle(tmp_path):
    """Guards the test above: the payload is dangerous when unpickled without protection."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Evil(str(marker))))
    assert marker.exists()
    SIDE_EFFECTS.clear()


def test_model_from_checkpoint_rebuilds_same_model(tmp_path):
    torch.manual_seed(0)
    model = segmodels.create_model("deeplab", backbone="mobilenet_v3_small", aspp=False)
    # move BatchNorm running stats off their defaults so eval-mode equality is meaningful
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    model.eval()
    cfg = TrialConfig(model="deeplab", backbone="mobilenet_v3_small", aspp=False)
    path = save_checkpoint(tmp_path / "checkpoint.pt", {
        "config": cfg.to_dict(), "num_classes": 8, "model": model.state_dict(),
    })
    rebuilt, state = model_from_checkpoint(path)
    assert not rebuilt.training
    assert all(not m.training for m in rebuilt.modules())
    assert type(rebuilt) is type(model)
    assert state["num_classes"] == 8 and state["config"]["backbone"] == "mobilenet_v3_small"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, actual = model(x), rebuilt(x)
    assert actual.shape == (1, 8, 64, 64)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)


def test_model_from_checkpoint_refuses_non_checkpoint(tmp_path):
    path = _torch_dict_without_marker(tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="marker"):
        model_from_checkpoint(path)
