"""The sweep's own files in its experiment folder (local or object storage): the record of
how it was started (``segsweep.json``) and later additions such as the CPU timings."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from segmodels.data import SegmentationData
from segmodels.training import TrialConfig
from sweeps.grids import Grid
from sweeps.resources import hardware_summary
from sweeps.settings import SweepError, SweepSettings
from sweeps.storage import DATA_FILES, SWEEP_FILE


def read_sweep_record(settings: SweepSettings) -> dict[str, Any] | None:
    """The sweep's record, None if there is none; SweepError if it cannot be read."""
    text = read_experiment_file(settings, SWEEP_FILE)
    try:
        return None if text is None else json.loads(text)
    except ValueError as exc:
        raise SweepError(f"{settings.experiment_path()}/{SWEEP_FILE}: the sweep's record is "
                         f"damaged ({exc}); restore it from a copy or start a new sweep") from None


def read_experiment_file(settings: SweepSettings, name: str) -> str | None:
    """A file of ours in the experiment folder (local or object storage), None if absent;
    SweepError when the storage refuses it."""
    uri = f"{settings.experiment_path()}/{name}"
    try:
        if settings.remote_storage:
            import pyarrow.fs

            fs, path = pyarrow.fs.FileSystem.from_uri(uri)
            if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
                return None
            with fs.open_input_stream(path) as f:
                return f.read().decode()
        path = Path(uri)
        return path.read_text() if path.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:  # no access, no credentials
        raise SweepError(f"{uri}: cannot be read ({type(exc).__name__}: {exc}); check "
                         "--storage, --name and your access to them") from None


def write_sweep_record(settings: SweepSettings, grid: Grid, fixed: dict[str, Any],
                       data: SegmentationData, *, scheduler_reason: str,
                       resources: dict[str, float], cluster: dict[str, float],
                       search_points: dict[str, dict[str, Any]] | None = None) -> None:
    """``segsweep.json``: what a resume and the report need to see the sweep as started
    (``settings`` resolved: its name and scheduler filled in; ``search_points``: the models
    a search may propose beyond the grid, by label)."""
    record = {
        "settings": settings.to_dict(), "scheduler_reason": scheduler_reason,
        "grid": grid.name, "grid_source": grid.source,
        "points": grid.by_label(), "search_points": search_points or {}, "fixed": fixed,
        "trial_defaults": TrialConfig().to_dict(),
        "data": {"root": data.root, "layout": data.layout, "synthetic": data.synthetic,
                 "train": len(data.train), "val": len(data.val),
                 "description": data.describe(), "notes": data.notes,
                 "image_size": data.image_size},
        "resources_per_trial": resources, "hardware": hardware_summary(cluster),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    exp = Path(settings.experiment_path())
    if (not settings.remote_storage and settings.overwrite and not settings.resume
            and (exp / SWEEP_FILE).is_file()):  # only ever a sweep's own folder (prepare checks)
        shutil.rmtree(exp)
    write_experiment_file(settings, SWEEP_FILE, json.dumps(record, indent=2, default=str))
    write_experiment_file(settings, DATA_FILES, json.dumps(data.files))


def write_experiment_file(settings: SweepSettings, name: str, text: str) -> None:
    """A file of ours in the experiment folder, local or in object storage; SweepError names
    the place when the storage refuses it."""
    try:
        _write(settings, name, text)
    except OSError as exc:
        raise SweepError(f"{settings.experiment_path()}/{name}: cannot be written "
                         f"({type(exc).__name__}: {exc}); check --storage and its free "
                         "space and permissions") from exc


def _write(settings: SweepSettings, name: str, text: str) -> None:
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
