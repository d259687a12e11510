"""The sweep's own files in its experiment folder (local or object storage): the record of
how it was started (``segsweep.json``) and later additions such as the CPU timings."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segmodels.config import TrialConfig
from sweeps.resources import hardware_summary
from sweeps.settings import SWEEP_FILE, SweepSettings

if TYPE_CHECKING:
    from sweeps.runner import PreparedSweep


def read_sweep_record(settings: SweepSettings) -> dict[str, Any] | None:
    uri = f"{settings.experiment_path()}/{SWEEP_FILE}"
    if settings.remote_storage:
        import pyarrow.fs

        fs, path = pyarrow.fs.FileSystem.from_uri(uri)
        if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
            return None
        with fs.open_input_stream(path) as f:
            return json.loads(f.read().decode())
    path = Path(uri)
    return json.loads(path.read_text()) if path.is_file() else None


def write_sweep_record(prepared: PreparedSweep, resources: dict[str, float],
                      cluster: dict[str, float]) -> None:
    settings = prepared.settings
    record = {
        "settings": settings.to_dict(), "grid": prepared.grid.name,
        "grid_source": prepared.grid.source,
        "points": prepared.grid.by_label(), "fixed": prepared.fixed,
        "trial_defaults": TrialConfig().to_dict(),
        "data": {"root": prepared.data.root, "layout": prepared.data.layout,
                 "synthetic": prepared.data.synthetic, "train": len(prepared.data.train),
                 "val": len(prepared.data.val), "description": prepared.data.describe()},
        "resources_per_trial": resources, "hardware": hardware_summary(cluster),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    exp = Path(settings.experiment_path())
    if not settings.remote_storage and settings.overwrite and not settings.resume and exp.exists():
        shutil.rmtree(exp)
    write_experiment_file(settings, SWEEP_FILE, json.dumps(record, indent=2, default=str))


def write_experiment_file(settings: SweepSettings, name: str, text: str) -> None:
    """A file of ours in the experiment folder, local or in object storage."""
    if settings.remote_storage:
        import pyarrow.fs

        fs, path = pyarrow.fs.FileSystem.from_uri(settings.experiment_path())
        fs.create_dir(path, recursive=True)
        with fs.open_output_stream(f"{path}/{name}") as f:
            f.write(text.encode())
        return
    exp = Path(settings.experiment_path())
    exp.mkdir(parents=True, exist_ok=True)
    (exp / name).write_text(text)
