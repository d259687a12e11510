"""Load a stored segsweep experiment into two tidy tables: ``trials`` and ``history``.

Only JSON files are read (``segsweep.json``, Ray's ``experiment_state-*.json`` through
``sweeps.ray_state``, each trial's ``params.json`` and ``result.json``, the architectures'
``costs.json``): no Ray import, no unpickling of ``tuner.pkl``, so loading is fast, safe, and
works while the sweep still runs. A broken trial (missing or truncated file, deleted folder)
never stops the load: it is left out and named in ``Experiment.skipped``.

Trials are found by what Ray records (each trial's id and folder) and by their own files, never
by the shape of a folder's name: Ray's ids differ by searcher (``1a2b3_00004`` on a grid, 8 hex
digits under Optuna) and Ray renames a folder whose name is taken.

A trial's configuration is resolved exactly as ``sweeps.trainable`` builds it:
``trial_defaults <- fixed <- grid point <- searched values`` (later wins).

A trial a search proposed for an architecture over a budget never trains: it reports one row
naming why (``rejected``) and its architecture's costs, and loads as ``REJECTED`` with no epoch,
so nothing that picks a winner (``Experiment.finished``) ever sees it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.timing import missing_timing_note
from segmodels.errors import SegsweepError
from segmodels.training import TrialConfig, load_image_confusions, trial_settings
from sweeps import objectives, ray_state
from sweeps.equal_work import PROJECTED, projected_trial_minutes
from sweeps.ray_state import RayTrial
from sweeps.resume_repair import best_checkpoint
from sweeps.search import split_tune_config, trial_label
from sweeps.settings import prefer_quiet_ms, quiet_ms_range
from sweeps.storage import (
    CHECKPOINT_FILE,
    COSTS_FILE,
    ERROR_FILE,
    IMAGE_CONFUSIONS_FILE,
    INFERENCE_FILE,
    INFERENCE_GPU_FILE,
    PARAMS_FILE,
    RESULT_FILE,
    SWEEP_FILE,
)
from sweeps.summary import REJECTED

CONFIG_COLUMNS = ("model", "backbone", "aspp", "arch", "encoder", "augment", "pretrained",
                  "loss", "lr", "crop_size", "batch_size", "optimizer", "seed")
LAST_ROW_COLUMNS = ("best_val_miou", "best_epoch", "train_minutes", "inference_ms_cpu",
                    "inference_ms_gpu", "size_mb", "params", "hostname", "node_id")
# inference_ms_cpu: the quiet after-sweep timing where it exists (inference_cpu.json), else
# the trial's own; inference_ms_cpu_in_trial: always the trial's own; RANGE_COLUMNS: the quiet
# timing's fastest and slowest run (nan without one).
RANGE_COLUMNS = ("inference_ms_cpu_low", "inference_ms_cpu_high", "inference_ms_gpu_low",
                 "inference_ms_gpu_high")
TRIAL_COLUMNS = ("trial_id", "label", "name", *CONFIG_COLUMNS, "epochs_planned", "status",
                 "stopped_early", "epochs_done", "final_val_miou", *LAST_ROW_COLUMNS,
                 "inference_ms_cpu_in_trial", *RANGE_COLUMNS,
                 PROJECTED,  # train_minutes for the planned epochs
                 "failures", "error", "trial_dir", "best_checkpoint", "best_checkpoint_epoch")
INTEGER_COLUMNS = ("epochs_planned", "epochs_done", "best_epoch", "params", "failures",
                   "best_checkpoint_epoch")
# costs.json, one row per architecture label: its measured costs (sweeps.objectives names) and
# why it was rejected (None: it fits every budget)
COST_COLUMNS = (*(n for n in objectives.OBJECTIVES if n != objectives.LEARNED),
                objectives.REJECTED)


class ExperimentError(SegsweepError, ValueError):
    """The folder is not a readable segsweep experiment; the message names it and the fix."""


@dataclass
class Experiment:
    """A loaded sweep. ``trials``: one row per trial; ``history``: one row per trial x epoch."""

    path: Path
    meta: dict[str, Any]
    trials: pd.DataFrame
    history: pd.DataFrame
    configs: dict[str, dict[str, Any]]  # trial_id -> resolved TrialConfig dict
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _confusions: dict[tuple[str, int], np.ndarray] = field(default_factory=dict, repr=False)
    _image_confusions: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)
    # costs.json: architecture label -> COST_COLUMNS; empty for a sweep without one
    costs: pd.DataFrame = field(default_factory=lambda: _costs_frame({}))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def finished(self) -> pd.DataFrame:
        """Trials that reported at least one epoch (the ones plots and rankings can use); a
        REJECTED trial never trained, so it is never among them."""
        done = self.trials["epochs_done"] > 0
        if "status" in self.trials:
            done &= self.trials["status"].ne(REJECTED)
        return self.trials[done]

    @property
    def trained_configs(self) -> dict[str, dict[str, Any]]:
        """``configs`` without the REJECTED trials: the ones a comparison can pair."""
        rejected = set(self.trials.loc[self.trials["status"].eq(REJECTED), "trial_id"]
                       if "status" in self.trials else ())
        return {t: c for t, c in self.configs.items() if t not in rejected}

    def trial(self, trial_id: str) -> pd.Series:
        return self.trials.set_index("trial_id").loc[trial_id]

    def curves(self, trial_id: str) -> pd.DataFrame:
        """This trial's epochs in order."""
        return self.history[self.history["trial_id"] == trial_id].sort_values("epoch")

    def image_confusions(self, trial_id: str) -> np.ndarray | None:
        """(N, K, K) per-image validation counts of the trial's best kept checkpoint (the epoch
        its best val mIoU comes from), in the validation split's image order; None for a trial
        without them (a sweep stored before trials kept them, or no checkpoint): its intervals
        are then unavailable."""
        row = self.trial(trial_id)
        checkpoint, epoch = row.get("best_checkpoint"), row.get("best_checkpoint_epoch")
        best_epoch = row.get("best_epoch")
        if (not isinstance(checkpoint, str) or pd.isna(epoch) or pd.isna(best_epoch)
                or int(epoch) != int(best_epoch)):
            return None
        if trial_id not in self._image_confusions:
            self._image_confusions[trial_id] = load_image_confusions(
                Path(checkpoint).parent / IMAGE_CONFUSIONS_FILE)
        return self._image_confusions[trial_id]

    def confusion(self, trial_id: str, epoch: int | None = None) -> np.ndarray:
        """(K, K) validation confusion counts, rows = target. ``epoch=None``: the best epoch,
        i.e. the model the best checkpoint holds."""
        if epoch is None:
            epoch = int(self.trial(trial_id)["best_epoch"])
        try:
            return self._confusions[(trial_id, int(epoch))]
        except KeyError:
            message = f"trial {trial_id} logged no confusion matrix for epoch {epoch}"
            raise KeyError(message) from None


def load_experiment(path: str | Path) -> Experiment:
    """Read ``STORAGE/NAME``; raises ``ExperimentError`` if it is not a segsweep experiment."""
    path = Path(path).expanduser()
    meta = read_sweep_meta(path)
    skipped: list[str] = []
    notes: list[str] = []
    ray = _ray_trials(path, notes)
    rows, history, configs, confusions, names = [], [], {}, {}, {}
    for trial, folder in _find_trials(path, ray):
        try:
            loaded = _load_trial(trial, folder, meta, skipped)
        except _Skip as exc:
            where = folder.name if folder else f"{trial.trial_id} ({trial.config.get('point')})"
            skipped.append(f"{where}: {exc}")
            continue
        trial_id = loaded.row["trial_id"]
        if trial_id in names:  # a copy of a trial's folder: the one Ray's state names wins
            skipped.append(f"{folder.name}: a copy of trial {trial_id}'s folder; left out")
            continue
        rows.append(loaded.row)
        history.extend(loaded.history)
        configs[trial_id] = loaded.config
        names[trial_id] = loaded.name
        confusions.update({(trial_id, e): cm for e, cm in loaded.confusions.items()})
    rows.sort(key=lambda row: row["trial_id"])
    trials = pd.DataFrame(rows, columns=list(TRIAL_COLUMNS))
    for column in INTEGER_COLUMNS:  # nullable ints: "7", not "7.0", while a trial is pending
        trials[column] = pd.to_numeric(trials[column]).round().astype("Int64")
    trials["name"] = _display_names(trials["trial_id"], names)
    trials[PROJECTED] = projected_trial_minutes(trials)  # beside the raw train_minutes
    _prefer_quiet_inference_times(path, trials, notes)
    history = _history_frame(history, trials)
    costs = read_costs(path, notes)
    labels = set(trials["label"]) | {t.config.get("point") for t in ray.values()}
    rejected = set(costs.index[costs[objectives.REJECTED].notna()])
    for label in meta.get("points", {}):
        if label not in labels and label not in rejected:  # over a budget: never a trial
            skipped.append(f"grid point {label}: no trial folder and no Ray record "
                           "(not started yet, or its folder was deleted)")
    return Experiment(path, meta, trials, history, configs, skipped, notes, confusions,
                      costs=costs)


def read_costs(path: Path, notes: list[str] | None = None) -> pd.DataFrame:
    """The sweep's ``costs.json`` (architecture label -> measured costs and why it was
    rejected), one row per label; empty when the sweep has none. An unreadable file is named
    in ``notes`` and read as empty: the report then lacks the rejected architectures' figures,
    nothing else."""
    file = path / COSTS_FILE
    if not file.is_file():
        return _costs_frame({})
    try:
        costs = json.loads(file.read_text())
        if not isinstance(costs, dict) or not all(isinstance(v, dict) for v in costs.values()):
            raise ValueError("expected {label: {cost: figure, 'rejected': reason or null}}")
    except (OSError, ValueError) as exc:
        if notes is not None:
            notes.append(f"{file.name} unreadable ({exc}); the rejected architectures' figures "
                         "are left out")
        return _costs_frame({})
    return _costs_frame(costs)


def _costs_frame(costs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(costs, orient="index").reindex(columns=list(COST_COLUMNS))
    frame.index.name = "label"
    for column in COST_COLUMNS[:-1]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    why = objectives.REJECTED
    frame[why] = frame[why].astype(object).where(frame[why].notna(), None)
    return frame


def _prefer_quiet_inference_times(path: Path, trials: pd.DataFrame, notes: list[str]) -> None:
    """Use the sweep's after-the-fact, one-model-at-a-time CPU timings where they exist; a
    trial's own figure was taken while other trials trained on the same cores."""
    trials["inference_ms_cpu_in_trial"] = trials["inference_ms_cpu"]
    for column in RANGE_COLUMNS:  # the quiet timing's fastest and slowest run, where kept
        trials[column] = np.nan
    file = path / INFERENCE_FILE
    if not file.is_file():
        notes.append(missing_timing_note(path))
        return
    try:
        quiet = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        notes.append(f"{file.name} unreadable ({exc}); using the trials' own CPU timings")
        return
    trials["inference_ms_cpu"] = prefer_quiet_ms(trials["label"], trials["inference_ms_cpu"],
                                                 quiet)
    trials["inference_ms_cpu_low"], trials["inference_ms_cpu_high"] = quiet_ms_range(
        trials["label"], quiet)
    gpu_file = path / INFERENCE_GPU_FILE  # GPU timings, when the sweep's trials used GPUs
    try:
        gpu = json.loads(gpu_file.read_text()) if gpu_file.is_file() else {}
    except (OSError, json.JSONDecodeError) as exc:
        notes.append(f"{gpu_file.name} unreadable ({exc}); using the trials' own GPU timings")
        gpu = {}
    if gpu:
        trials["inference_ms_gpu"] = prefer_quiet_ms(trials["label"], trials["inference_ms_gpu"],
                                                     gpu)
        trials["inference_ms_gpu_low"], trials["inference_ms_gpu_high"] = quiet_ms_range(
            trials["label"], gpu)


class _Skip(Exception):
    """A trial that cannot be loaded; the message says why."""


@dataclass
class _Loaded:
    row: dict[str, Any]
    history: list[dict[str, Any]]
    config: dict[str, Any]
    confusions: dict[int, np.ndarray]
    name: str  # its label plus searched values (sweeps.search.trial_label)


def read_sweep_meta(path: Path) -> dict[str, Any]:
    """The sweep's record (segsweep.json); ExperimentError names the folder and the fix."""
    if not path.is_dir():
        raise ExperimentError(f"{path}: no such folder; pass an experiment folder STORAGE/NAME "
                              f"(the one holding {SWEEP_FILE})")
    sweep_file = path / SWEEP_FILE
    if not sweep_file.is_file():
        inside = sorted(p.parent.name for p in path.glob(f"*/{SWEEP_FILE}"))
        hint = (f"; experiments inside it: {', '.join(inside)}" if inside
                else "; pass the folder tune_app.py wrote (STORAGE/NAME)")
        raise ExperimentError(f"{path} is not a segsweep experiment (no {SWEEP_FILE}){hint}")
    try:
        meta = json.loads(sweep_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExperimentError(f"{sweep_file}: unreadable ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("points"), dict):
        raise ExperimentError(f"{sweep_file}: not a segsweep sweep record (no 'points' mapping)")
    return meta


def _ray_trials(path: Path, notes: list[str]) -> dict[str, RayTrial]:
    """trial_id -> the trial as Ray's newest saved experiment state records it."""
    if ray_state.newest_state_file(path) is None:
        notes.append("no Ray experiment state saved yet: trial status inferred from trial files")
        return {}
    try:
        return {t.trial_id: t for t in ray_state.read_trials(path)}
    except ray_state.RayStateError as exc:
        notes.append(f"{exc}; trial status inferred from trial files")
        return {}


_Found = tuple[RayTrial | None, Path | None]  # (Ray's record, trial folder)


def _find_trials(path: Path, ray: dict[str, RayTrial]) -> list[_Found]:
    """Every trial: first those Ray's state records, in the folder it names (None if that is
    gone or the trial has not started); then every other folder that holds a trial's own
    files (a trial started after Ray last saved its state, or a sweep whose state is lost)."""
    found: list[_Found] = []
    for trial in ray.values():
        folder = path / trial.folder if trial.folder else None
        found.append((trial, folder if folder is not None and folder.is_dir() else None))
    named = {path / t.folder for t in ray.values() if t.folder}
    for folder in sorted(p for p in path.iterdir() if p.is_dir() and p not in named):
        if (folder / PARAMS_FILE).is_file() or (folder / RESULT_FILE).is_file():
            found.append((None, folder))
    return found


def _read_results(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Complete JSON lines of result.json; a partial last line (sweep still writing, or a
    truncated copy) is reported and left out."""
    rows, problems = [], []
    if not path.is_file():
        return rows, problems
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"result.json line {number} is not complete JSON (truncated?); "
                            "that epoch is left out")
            continue
        if isinstance(row, dict):
            rows.append(row)
    by_epoch = {int(r.get("epoch", r.get("training_iteration", i + 1))): r
                for i, r in enumerate(rows)}  # a resumed trial may repeat an epoch: last wins
    return [by_epoch[e] | {"epoch": e} for e in sorted(by_epoch)], problems


def _resolve_config(meta: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    label, searched = split_tune_config(params)
    point = meta["points"].get(label) or (meta.get("search_points") or {}).get(label)
    if point is None:
        raise _Skip(f"grid point {label!r} from params.json is not in {SWEEP_FILE}")
    # records written before trial_defaults existed: today's defaults
    defaults = meta.get("trial_defaults") or TrialConfig().to_dict()
    return trial_settings(meta.get("fixed", {}), point, searched, defaults=defaults)


def _status(ray_status: str | None, has_error: bool, diverged: bool, done: int,
            planned: int, rejected: bool = False) -> str:
    if rejected:
        return REJECTED  # Tune ends such a trial TERMINATED, but it never trained
    if diverged:
        return "DIVERGED"  # Tune ends such a trial TERMINATED, but it did not finish
    if ray_status in ("RUNNING", "PENDING") and done >= planned:
        return "TERMINATED"  # Ray's state file lags the trial's own last report
    if ray_status:
        return ray_status
    if has_error:
        return "ERROR"
    return "TERMINATED" if done >= planned else "STOPPED"


def _load_trial(trial: RayTrial | None, folder: Path | None, meta: dict[str, Any],
                skipped: list[str]) -> _Loaded:
    """One trial from its folder, or from Ray's record alone while it is PENDING. ``trial``
    None: a folder Ray's state does not name."""
    ray_status = trial.status if trial else None
    if folder is None or not any(folder.iterdir()):
        if ray_status != "PENDING":
            raise _Skip("trial folder missing or empty (deleted, or never started)"
                        + (f"; Ray's status: {ray_status}" if ray_status else ""))
        params, folder = trial.config, None
    else:
        params_file = folder / PARAMS_FILE
        if not params_file.is_file():
            raise _Skip("params.json missing: which grid point and searched values it ran "
                        "is unknown")
        try:
            params = json.loads(params_file.read_text())
        except (OSError, ValueError) as exc:
            raise _Skip(f"params.json unreadable ({exc})") from None
    config = _resolve_config(meta, params)
    results, error, checkpoint, checkpoint_epoch = [], None, None, None
    if folder is not None:
        results, problems = _read_results(folder / RESULT_FILE)
        skipped.extend(f"{folder.name}: {p}" for p in problems)
        error_file = folder / ERROR_FILE
        error = _last_line(error_file) if error_file.is_file() else None
    # sweeps.trainable ends a diverged trial with a marker row (no metrics): not an epoch
    diverged = [r for r in results if r.get("diverged")]
    # a trial proposed for an architecture over a budget reports one row, its costs: no epoch
    rejected = [r for r in results if r.get(objectives.REJECTED)]
    results = [r for r in results if not r.get("diverged") and not r.get(objectives.REJECTED)]
    if diverged:
        error = str(diverged[-1].get("failure") or "training diverged")
    rejected = rejected if not results else []  # one that trained after all was not rejected
    if rejected:
        error = str(rejected[-1][objectives.REJECTED])  # why it never trained: its budget
    last = results[-1] if results else (rejected[-1] if rejected else {})
    # Ray's id; for a folder its state does not name, the id Ray wrote in its rows
    trial_id = trial.trial_id if trial else str(last.get("trial_id") or folder.name)
    done, planned = (last["epoch"] if results else 0), int(config["epochs"])
    status = _status(ray_status, error is not None, bool(diverged), done, planned,
                     bool(rejected))
    if folder is not None:
        checkpoint, checkpoint_epoch = _best_checkpoint(folder, results, last.get("best_epoch"))
    row = {
        "trial_id": trial_id, "label": params.get("point"),
        **{k: config.get(k) for k in CONFIG_COLUMNS},
        "epochs_planned": planned, "status": status,
        "stopped_early": status == "TERMINATED" and 0 < done < planned,
        "epochs_done": done, "final_val_miou": last.get("val_miou"),
        **{k: last.get(k) for k in LAST_ROW_COLUMNS},
        "failures": trial.num_failures if trial else 0, "error": error,
        "trial_dir": str(folder) if folder else None,
        "best_checkpoint": str(checkpoint) if checkpoint else None,
        "best_checkpoint_epoch": checkpoint_epoch,
    }
    history = [{"trial_id": trial_id, **{k: v for k, v in r.items() if _is_scalar(v)}}
               for r in results]
    confusions = {r["epoch"]: np.asarray(r["val_confusion"], dtype=np.int64)
                  for r in results if isinstance(r.get("val_confusion"), list)}
    return _Loaded(row, history, config, confusions, trial_label(params))


def _best_checkpoint(folder: Path, results: list[dict[str, Any]],
                     best_epoch: int | None) -> tuple[Path | None, int | None]:
    """The kept checkpoint file of the best epoch, and its epoch (sweeps.resume_repair)."""
    best = best_checkpoint(folder, best_epoch, results)
    return (None, None) if best is None else (best.folder / CHECKPOINT_FILE, best.epoch)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _last_line(path: Path) -> str:
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "error.txt is empty"


def _display_names(trial_ids: pd.Series, names: dict[str, str]) -> list[str]:
    """Each trial's label plus the values searched for it (Optuna's lr and crop size), with
    its id where two trials would otherwise share a name."""
    shown = [names[t] for t in trial_ids]
    return [f"{name} [{t}]" if shown.count(name) > 1 else name
            for t, name in zip(trial_ids, shown)]


def _history_frame(rows: list[dict[str, Any]], trials: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["trial_id", "label", "name", "epoch"])
    names = trials.set_index("trial_id")[["label", "name"]]
    frame = frame.drop(columns=[c for c in ("label", "name") if c in frame]).join(
        names, on="trial_id")
    first = ["trial_id", "label", "name", "epoch"]
    return frame[first + [c for c in frame.columns if c not in first]].reset_index(drop=True)
