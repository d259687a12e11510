"""analysis: read a stored segsweep experiment and report on it (``python -m analysis RUN``).

``load_experiment`` gives tidy tables; ``build_report`` writes plots, rankings, per-class
examples and one self-contained report.html answering the course's questions.
"""

from analysis.loading import Experiment, ExperimentError, load_experiment
from analysis.report import build_report

__all__ = ["Experiment", "ExperimentError", "build_report", "load_experiment"]
