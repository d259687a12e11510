"""Which searched parameters mattered for each objective of an Optuna search: PED-ANOVA
importances (Optuna's ``PedAnovaImportanceEvaluator``, what optuna-dashboard shows), read from
the sweep's stored study.

PED-ANOVA asks how differently a parameter is spread among the best trials ("top") than among
all completed trials. The top here is the best ``TOP_FRACTION`` (Optuna's default, 10%) but at
least ``TOP_TRIALS`` trials, the fewest Optuna's documentation advises; a study with fewer than
``MIN_TRIALS`` completed trials is not assessed. Importances are normalised to sum to 1 per
objective.

With tens of trials the top is a handful, and PED-ANOVA then scores a continuous parameter's
sampling noise higher than a categorical parameter's real effect (a learning rate that does
nothing can outrank the architecture that decides everything). So each importance comes with a
permutation p: how often the parameter scored at least as high when the objective's values
were shuffled among the same trials (``PERMUTATIONS`` shuffles, the parameter's own null, so
its type's bias cancels). Above 0.05 an importance is within what chance gives.

Assessed are the trials that trained to the end: Optuna's COMPLETE trials less those rejected
over a budget (the searcher tells them COMPLETE with mIoU 0 so the sampler learns to avoid them;
they never trained). Trials a scheduler stopped early (PRUNED) and failed ones are left out.

Conditional parameters (``backbone`` only in DeepLab trials): Optuna's PED-ANOVA assesses every
parameter set in at least one completed trial; the trials without it form their own regime,
which scores nothing, and a regime of fewer than two trials is left out. The table says in how
many of the completed trials each parameter was set.

The study is read from a copy (SQLite's backup API): a report never writes to, nor holds a
lock on, the study of a sweep that is still running.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.loading import Experiment
from analysis.pareto import sweep_objectives
from sweeps.objectives import OBJECTIVES
from sweeps.objectives import REJECTED as WHY
from sweeps.settings import SweepSettings
from sweeps.storage import STUDY_FILE, is_remote_storage

if TYPE_CHECKING:  # Optuna loads only when a study is read
    from optuna import Study

TOP_FRACTION = 0.1
TOP_TRIALS = 5
MIN_TRIALS = 2 * TOP_TRIALS  # the top is then at most half the trials
PERMUTATIONS = 99  # shuffles per objective: p resolves to 0.01
SEED = 0  # the shuffles are the same every time the report is written
COLUMNS = ("objective", "parameter", "importance", "p", "set_in", "trials")


@dataclass
class Importance:
    """``frame``: one row per objective x parameter (``COLUMNS``: its importance, its
    permutation p, the number of completed trials that set the parameter, of ``trials``), most
    important first within each objective; ``notes``: what was not assessed and why."""

    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def is_search_sweep(meta: dict) -> bool:
    return (meta.get("settings") or {}).get("search") == "optuna"


def study_file(exp: Experiment) -> Path:
    """Where the sweep's study is: its experiment folder, or for a sweep on object storage the
    folder of the user's cache it was kept in (``SweepSettings.local_store_path``)."""
    settings = exp.meta.get("settings") or {}
    own = exp.path / STUDY_FILE
    storage = settings.get("storage")
    if own.is_file() or not (isinstance(storage, str) and is_remote_storage(storage)):
        return own
    return SweepSettings(storage=storage, name=settings.get("name") or exp.name
                         ).local_store_path() / STUDY_FILE


def sweep_importance(exp: Experiment) -> Importance:
    """Each objective's parameter importances from the sweep's study; an empty frame and a note
    saying why for a sweep without a readable study or with too few completed trials."""
    path = study_file(exp)
    if not path.is_file():
        return Importance(_frame([]), [f"no Optuna study at {path}: no importances"])
    name = (exp.meta.get("settings") or {}).get("name") or exp.name
    try:
        study, assessed = read_study(path, name)
    except Exception as exc:  # an old schema, a damaged file: the rest of the report stands
        return Importance(_frame([]), [f"the Optuna study in {path} could not be read "
                                       f"({type(exc).__name__}: {exc}): no importances"])
    result = param_importances(study, _objective_names(study, exp.meta))
    result.notes.insert(0, assessed)
    return result


def read_study(path: Path, name: str) -> tuple[Study, str]:
    """The study ``name`` in the SQLite file ``path`` (its only study when none has that name),
    as an in-memory study holding the trials that trained to the end (the module says which),
    and a sentence saying how many of the study's trials those are."""
    import optuna

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / STUDY_FILE
        source = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        storage = optuna.storages.RDBStorage(f"sqlite:///{copy}")
        try:
            names = [s.study_name for s in storage.get_all_studies()]
            if name not in names and len(names) == 1:
                name = names[0]
            stored = optuna.load_study(study_name=name, storage=storage)
            directions, metric_names = stored.directions, stored.metric_names
            every = stored.get_trials(deepcopy=False)
        finally:
            storage.engine.dispose()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line
    try:
        study = optuna.create_study(directions=directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    complete = optuna.trial.TrialState.COMPLETE
    trials = [t for t in every if t.state == complete and not t.user_attrs.get(WHY)]
    study.add_trials(trials)
    left = {"rejected over a budget": sum(t.state == complete and bool(t.user_attrs.get(WHY))
                                          for t in every)}
    for state in optuna.trial.TrialState:
        if state != complete:
            left[state.name] = sum(t.state == state for t in every)
    left_out = ", ".join(f"{n} {what}" for what, n in left.items() if n)
    assessed = (f"assessed over the {len(trials)} of the study's {len(every)} trials that "
                "trained to the end" + (f"; left out: {left_out}" if left_out else ""))
    if metric_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(metric_names))
    return study, assessed


def _objective_names(study: Study, meta: dict) -> list[str]:
    """The study's metric names where the sweep set them; else the sweep's objectives when
    they match the study's directions; else mIoU for a single objective."""
    if study.metric_names and all(n in OBJECTIVES for n in study.metric_names):
        return list(study.metric_names)
    objectives = sweep_objectives(meta)
    if len(objectives) == len(study.directions):
        return objectives
    return [f"objective {i}" for i in range(len(study.directions))]


def param_importances(study: Study, objectives: list[str],
                      permutations: int = PERMUTATIONS) -> Importance:
    """PED-ANOVA importance of every parameter for each objective (``objectives``: the name of
    each of the study's values, in order), the top chosen as the module says, each with its
    permutation p over ``permutations`` shuffles."""
    from optuna.trial import TrialState

    rows, notes = [], []
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for i, (name, direction) in enumerate(zip(objectives, study.directions)):
        used = [t for t in complete if math.isfinite(t.values[i])]
        if len(used) < MIN_TRIALS:
            notes.append(f"{name}: not enough completed trials to assess importance "
                         f"({len(used)}; at least {MIN_TRIALS} needed)")
            continue
        sign = -1.0 if direction.name == "MAXIMIZE" else 1.0  # PED-ANOVA minimises
        numbers = [t.number for t in used]
        losses = np.array([sign * t.values[i] for t in used])
        quantile = max(TOP_FRACTION, TOP_TRIALS / len(used))
        raw = _ped_anova(study, dict(zip(numbers, losses)), quantile)
        rng = np.random.default_rng(SEED)
        as_high = dict.fromkeys(raw, 0)
        for _ in range(permutations):
            null = _ped_anova(study, dict(zip(numbers, rng.permutation(losses))), quantile)
            for parameter, value in raw.items():
                as_high[parameter] += null.get(parameter, 0.0) >= value
        total = sum(raw.values())
        if total == 0:
            notes.append(f"{name}: no parameter sets its best trials apart from the rest "
                         "(every importance 0)")
        for parameter, value in raw.items():
            rows.append({"objective": name, "parameter": parameter,
                         "importance": value / total if total > 0 else 0.0,
                         "p": (1 + as_high[parameter]) / (1 + permutations),
                         "set_in": sum(parameter in t.params for t in used),
                         "trials": len(used)})
    return Importance(_frame(rows), notes)


def _ped_anova(study: Study, losses: dict[int, float], quantile: float) -> dict[str, float]:
    """Unnormalised PED-ANOVA importances of the trials scored by ``losses`` (trial number ->
    value, lower is better; trials not in it are left out)."""
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    with warnings.catch_warnings():  # its notes on the target, tiny regimes, normalize=False
        warnings.simplefilter("ignore")
        return get_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator(target_quantile=quantile),
            normalize=False, target=lambda t: losses.get(t.number, math.nan))


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if frame.empty:
        return frame
    order = {name: i for i, name in enumerate(dict.fromkeys(frame["objective"]))}
    return (frame.assign(_order=frame["objective"].map(order))
            .sort_values(["_order", "importance", "parameter"], ascending=[True, False, True],
                         kind="stable")
            .drop(columns="_order").reset_index(drop=True))


def assessed_lines(importance: Importance) -> list[str]:
    """Which parameters were assessed, and in how many trials each was set: a conditional one
    (set in some trials only) is scored over the trials that set it."""
    frame = importance.frame
    if frame.empty:
        return []
    lines = []
    for parameter, rows in frame.groupby("parameter", sort=False):
        counts = sorted({(int(r.set_in), int(r.trials)) for r in rows.itertuples()})
        sets = ", ".join(f"{k} of {n}" for k, n in counts)
        conditional = any(k < n for k, n in counts)
        lines.append(f"{parameter}: set in {sets} completed trials"
                     + (" (conditional: the trials without it form their own regime, which "
                        "scores nothing)" if conditional else ""))
    return lines


__all__ = ["COLUMNS", "MIN_TRIALS", "PERMUTATIONS", "TOP_FRACTION", "TOP_TRIALS", "Importance",
           "assessed_lines", "is_search_sweep", "param_importances", "read_study",
           "study_file", "sweep_importance"]
