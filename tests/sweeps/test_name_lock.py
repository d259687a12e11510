"""One sweep per name at a time: the claim a sweep takes when its checks begin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeps import name_lock
from sweeps.prepare import prepare
from sweeps.settings import SweepError, SweepSettings

ROOT = Path(__file__).resolve().parents[2]


def _settings(tmp_path, data, **kw) -> SweepSettings:
    return SweepSettings(grid="smoke", data=str(data), overrides={"crop_size": 64},
                         storage=str(tmp_path / "runs"), **kw)


def _holder(settings: SweepSettings) -> subprocess.Popen:
    """Another process that claims the name and keeps it until killed."""
    code = ("import sys, time\nfrom sweeps import name_lock\nfrom sweeps.settings import "
            f"SweepSettings\nname_lock.claim(SweepSettings(storage={settings.storage!r}, "
            f"name={settings.name!r}))\nprint('claimed', flush=True)\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "claimed"
    return proc


def test_a_second_sweep_of_a_running_name_is_refused_naming_the_first(tmp_path,
                                                                      tiny_dataset_dir):
    settings = _settings(tmp_path, tiny_dataset_dir, name="twin")
    holder = _holder(settings)
    try:
        with pytest.raises(SweepError, match=rf"'twin' is running .*process {holder.pid} on "):
            prepare(settings)
        assert not (tmp_path / "runs" / "twin").exists()  # refused before anything was written
    finally:
        holder.kill()
        holder.wait()


def test_the_claim_of_a_process_that_died_is_taken_over_with_a_note(tmp_path, tiny_dataset_dir):
    settings = _settings(tmp_path, tiny_dataset_dir, name="orphan")
    holder = _holder(settings)
    holder.kill()
    holder.wait()  # SIGKILL: no chance to release
    lock = name_lock.lock_path(settings)
    assert json.loads(lock.read_text())["pid"] == holder.pid
    prepared = prepare(settings)
    assert any(f"claimed by process {holder.pid}, which has ended" in n for n in prepared.notes)
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    name_lock.release(lock)
    assert not lock.exists()


def test_a_process_releases_only_its_own_claim(tmp_path):
    settings = SweepSettings(storage=str(tmp_path), name="mine")
    assert name_lock.claim(settings) is None and name_lock.claim(settings) is None  # re-entrant
    lock = name_lock.lock_path(settings)
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "now"}))
    name_lock.release(lock)
    assert lock.exists()  # someone else's claim now: not ours to delete


def test_a_claim_of_another_host_is_never_taken_over(tmp_path):
    settings = SweepSettings(storage=str(tmp_path), name="shared")
    lock = name_lock.lock_path(settings)
    lock.write_text(json.dumps({"pid": 1, "host": "node-7", "started": "2026-12-06 04:00:00"}))
    with pytest.raises(SweepError, match="process 1 on node-7, started 2026-12-06 04:00:00"):
        name_lock.claim(settings)


def test_the_cli_releases_its_claim_when_it_exits(tmp_path):
    storage = tmp_path / "runs"
    done = subprocess.run([sys.executable, str(ROOT / "tune_app.py"), "--grid", "smoke",
                           "--name", "gone", "--storage", str(storage), "--epochs", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "epochs must be > 0" in done.stderr
    time.sleep(0.1)
    assert not (storage / f".gone{name_lock.SUFFIX}").exists()
