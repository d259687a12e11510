"""Sweep settings: what the CLI collects, validated before Ray starts."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segmodels.data import cache_root
from segmodels.errors import SegsweepError
from sweeps.storage import DEFAULT_STORAGE, is_remote_storage

CACHE_DIR = cache_root()  # $SEGSWEEP_CACHE, default ~/.cache/segsweep
LARGE_GRID = 1000  # trials: a grid above it needs --large-grid (a typo can multiply a grid)
AUTO = "auto"  # --gpus-per-trial: each architecture's share (sweeps/packing.py)


def prefer_quiet_ms(labels, own_ms, timings: dict[str, dict[str, Any]]):
    """Per trial (pandas Series of grid labels and of the trials' own ms/frame): the after-sweep
    timing of its architecture (``{label: {"ms": ...}}``, from storage.INFERENCE_FILE or
    INFERENCE_GPU_FILE) where it exists, else the trial's own. Shared by the CLI ranking and the
    analysis tables."""
    quiet = labels.map(lambda label: (timings.get(label) or {}).get("ms", float("nan")))
    return quiet.astype(float).fillna(own_ms)


def quiet_ms_range(labels, timings: dict[str, dict[str, Any]]):
    """Per trial (a pandas Series of grid labels): the fastest and the slowest timed run of its
    architecture's after-sweep timing (``"runs_ms"``), nan where there is none (no quiet
    timing, or a sweep stored before the runs were kept): the spread over the repeats."""
    runs = labels.map(lambda label: (timings.get(label) or {}).get("runs_ms") or [])
    low = runs.map(lambda r: min(r) if r else float("nan")).astype(float)
    high = runs.map(lambda r: max(r) if r else float("nan")).astype(float)
    return low, high


class SweepError(SegsweepError, ValueError):
    """A sweep that cannot start; the message says what to change."""


@dataclass
class SweepSettings:
    grid: str = "homework"
    data: str | None = None  # None: the generated synthetic dataset
    image_size: tuple[int, int] | None = None  # --image-size (W, H): shrink to fit on load
    overrides: dict[str, Any] = field(default_factory=dict)  # TrialConfig keys from the CLI
    point_settings: list[str] = field(default_factory=list)  # --point-set PATTERN:KEY=VALUE
    search: str = "grid"
    seeds: int | None = None  # training runs per grid point; None: the grid file's, else 1
    num_samples: int | None = None  # extra Optuna trials beyond one per grid point; None: 0,
    # or the sweep's own on --resume
    scheduler: str | None = None  # None: the grid file's, else the search's default
    grace_period: int | None = None
    reduction_factor: float = 3
    cpus_per_trial: float | None = None
    gpus_per_trial: float | str = AUTO  # a number, or AUTO
    storage: str = DEFAULT_STORAGE
    name: str | None = None
    resume: bool = False
    overwrite: bool = False
    large_grid: bool = False  # --large-grid: a grid of more than LARGE_GRID points, confirmed
    max_failures: int = 2
    address: str | None = None
    num_cpus: int | None = None  # local Ray only
    dashboard: bool = True  # local Ray only: its web dashboard on 127.0.0.1
    report: bool = True
    trackers: list[str] = field(default_factory=list)  # --tracker: sweeps.tracking.TRACKERS keys
    tracker_artifacts: bool = True  # each trial's best checkpoint to its tracker runs
    # --objective: sweeps.objectives.OBJECTIVES keys; None: the grid file's, else mIoU alone
    objectives: list[str] | None = None
    budgets: dict[str, float] = field(default_factory=dict)  # --max-*: objective -> limit

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def remote_storage(self) -> bool:
        """Object storage (s3://, gs://, ...); ``file://`` is a local folder."""
        return is_remote_storage(self.storage)

    def storage_path(self) -> str:
        if self.remote_storage:
            return self.storage
        local = re.sub("^file://", "", self.storage, flags=re.IGNORECASE)
        return str(Path(local).expanduser().resolve())

    def experiment_path(self) -> str:
        return f"{self.storage_path().rstrip('/')}/{self.name}"

    def local_store_path(self) -> Path:
        """Where the sweep's SQLite stores (MLflow, Optuna) live: its experiment folder when
        that is local, else a folder of the user's cache ($SEGSWEEP_CACHE) named by storage
        URI and sweep, since SQLite needs a local disk (its locking is unsafe on network
        filesystems: keep --storage off NFS when using them)."""
        if not self.remote_storage:
            return Path(self.experiment_path())
        where = re.sub(r"[^A-Za-z0-9._-]+", "_", self.storage.rstrip("/"))
        return CACHE_DIR.expanduser() / "stores" / where / str(self.name)
