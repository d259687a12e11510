"""What an export made: where, from which trial and checkpoint, and its check and latency."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deploy.check import CheckResult
from deploy.latency import Latency


@dataclass
class ExportResult:
    folder: Path
    model_file: Path
    trial_id: str
    name: str  # the trial's label with its searched values
    checkpoint: Path
    check: CheckResult
    latency: dict[str, Latency]
    notes: list[str] = field(default_factory=list)
