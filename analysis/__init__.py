"""analysis: read a stored segsweep experiment and report on it (``python -m analysis RUN``).

``load_experiment`` gives tidy tables; ``build_report`` writes plots, rankings, per-class
examples and one self-contained report.html answering the course's questions.

The face loads its names on first use: the CLI reads a sweep's intervals (``analysis.loading``,
``analysis.replicates``) after every sweep without paying for matplotlib, which only the report
draws with.
"""

from __future__ import annotations

import importlib
from typing import Any

_LOADED_ON_USE = {
    "Experiment": "analysis.loading",
    "ExperimentError": "analysis.loading",
    "load_experiment": "analysis.loading",
    "build_report": "analysis.report",
}


def __getattr__(name: str) -> Any:
    if name in _LOADED_ON_USE:
        return getattr(importlib.import_module(_LOADED_ON_USE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Experiment", "ExperimentError", "build_report", "load_experiment"]
