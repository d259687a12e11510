"""Shared pieces of the benchmarks, one module per job: ``table`` (the result table and the
command line), ``timing``, ``data`` (synthetic datasets, grids, work folders), ``runs`` (sweeps
run as a user runs them), ``processes`` (CPU time, memory, sampling). Benchmarks use this face:
``import _common as C``.

Every benchmark prints one table row per figure::

    | what | value | target | pass/fail |

``pass/fail`` is PASS or FAIL for a figure with a target and ``info`` for context figures. A
benchmark exits 0 whether its targets pass or fail (the table says which); it exits non-zero
only when it crashes. ``--json PATH`` also writes the rows for ``bench/run_all.py``.

The machine may be shared, so absolute times are noisy: every benchmark measures the things it
compares side by side in one run and reports ratios.
"""

from __future__ import annotations

import os
import sys

from .paths import OUT, ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("PYTHONUNBUFFERED", "1")

from .data import (  # noqa: E402 - after the path set-up above
    HOMEWORK_MODELS,
    counting_decodes,
    homework_cpus_per_trial,
    synthetic_data,
    workdir,
    write_grid,
)
from .processes import (  # noqa: E402 - after the path set-up above
    Sampler,
    cpu_seconds,
    descendants,
    is_trial_process,
    run_script,
    smaps_rollup,
)
from .runs import (  # noqa: E402 - after the path set-up above
    CliRun,
    SweepRun,
    one_ray_session,
    read_trials,
    run_cli,
    run_sweep,
    tensorboard_epoch_times,
)
from .table import (  # noqa: E402 - after the path set-up above
    Row,
    check,
    emit,
    format_table,
    info,
    parse,
    parser,
)
from .timing import (  # noqa: E402 - after the path set-up above
    Timer,
    mean,
    median,
)

__all__ = [
    "HOMEWORK_MODELS",
    "CliRun",
    "OUT",
    "ROOT",
    "Row",
    "Sampler",
    "SweepRun",
    "Timer",
    "check",
    "counting_decodes",
    "cpu_seconds",
    "descendants",
    "emit",
    "format_table",
    "homework_cpus_per_trial",
    "info",
    "is_trial_process",
    "mean",
    "median",
    "one_ray_session",
    "parse",
    "parser",
    "read_trials",
    "run_cli",
    "run_script",
    "run_sweep",
    "smaps_rollup",
    "synthetic_data",
    "tensorboard_epoch_times",
    "workdir",
    "write_grid",
]
