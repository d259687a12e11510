"""A stored search sweep with objectives and budgets, written file by file (no training): what
the sweep side leaves for the analysis (segsweep.json's objectives and budgets, costs.json, the
trials' rows, a REJECTED trial's one row, the Optuna study in optuna.db)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

# label -> (grid point, costs.json's entry); budget cpu_ms 30: vgg11_bn is over it
ARCHITECTURES = {
    "unet/aug": ({"model": "unet", "augment": True},
                 {"cpu_ms": 20.0, "gpu_ms": None, "size_mb": 7.5, "params": 1_900_000}),
    "deeplab/mobilenet_v3_small/aspp/aug": (
        {"model": "deeplab", "backbone": "mobilenet_v3_small", "aspp": True},
        {"cpu_ms": 8.0, "gpu_ms": None, "size_mb": 4.5, "params": 1_100_000}),
    "deeplab/resnet18/aspp/aug": (
        {"model": "deeplab", "backbone": "resnet18", "aspp": True},
        {"cpu_ms": 28.0, "gpu_ms": None, "size_mb": 60.0, "params": 15_900_000}),
    "deeplab/vgg11_bn/aspp/aug": (
        {"model": "deeplab", "backbone": "vgg11_bn", "aspp": True},
        {"cpu_ms": 45.0, "gpu_ms": None, "size_mb": 80.0, "params": 20_000_000}),
}
BUDGETS = {"cpu_ms": 30.0}
REJECTED_LABEL = "deeplab/vgg11_bn/aspp/aug"
REASON = "cpu_ms 45ms > budget 30ms"
EPOCHS = 2
# (label, lr, best val mIoU; None: rejected, never trained)
TRIALS = [
    ("unet/aug", 1e-3, 0.40),
    ("deeplab/mobilenet_v3_small/aspp/aug", 1e-3, 0.30),
    ("deeplab/resnet18/aspp/aug", 1e-3, 0.45),
    (REJECTED_LABEL, 1e-3, None),
    ("unet/aug", 3e-3, 0.42),
    ("deeplab/mobilenet_v3_small/aspp/aug", 3e-3, 0.28),
    (REJECTED_LABEL, 3e-3, None),
]
# on the front of (mIoU, cpu_ms) within the budget, best mIoU first; trial ids are t{index}
FRONT = ["t2", "t4", "t1"]
# hand-computed: the (cpu_ms, mIoU) area the front dominates in [0, 30 ms] x [0, 1], over 30
HYPERVOLUME = ((30 - 8) * 0.30 + (30 - 20) * (0.42 - 0.30) + (30 - 28) * (0.45 - 0.42)) / 30


def write_search_sweep(path: Path, objectives: list[str] | None = ("miou", "cpu_ms"),
                       budgets: dict[str, float] | None = None, trials=TRIALS,
                       costs: bool = True, study: bool = True, name: str = "search") -> Path:
    """segsweep.json, Ray's state (the JSON keys sweeps/ray_state.py reads), each trial's
    params.json + result.json, costs.json and the Optuna study. ``objectives`` None: a sweep
    recorded before objectives existed (no key)."""
    from segmodels.training.config import TrialConfig

    budgets = BUDGETS if budgets is None else budgets
    path.mkdir(parents=True)
    defaults = {**TrialConfig().to_dict(), "epochs": EPOCHS, "inference_height": 64,
                "inference_width": 96}
    settings = {"search": "optuna", "scheduler": "fifo", "name": name}
    if objectives is not None:
        settings |= {"objectives": list(objectives), "budgets": budgets}
    meta = {"grid": "homework", "points": {k: v[0] for k, v in ARCHITECTURES.items()},
            "fixed": {}, "trial_defaults": defaults, "settings": settings, "data": {},
            "hardware": {}}
    (path / "segsweep.json").write_text(json.dumps(meta))
    if costs:
        (path / "costs.json").write_text(json.dumps(
            {label: {**c, "rejected": REASON if label == REJECTED_LABEL else None}
             for label, (_, c) in ARCHITECTURES.items()}))
    states = []
    for i, (label, lr, miou) in enumerate(trials):
        trial_id, config = f"t{i}", {"point": label, "lr": lr}
        folder = f"{trial_id}_{label.replace('/', '_')}"
        (path / folder).mkdir()
        (path / folder / "params.json").write_text(json.dumps(config))
        rows = [_rejected_row(label, trial_id)] if miou is None else [
            _row(label, trial_id, epoch, miou * epoch / EPOCHS) for epoch in (1, 2)]
        (path / folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        states.append([json.dumps({"trial_id": trial_id, "status": "TERMINATED",
                                   "config": config, "relative_logdir": folder}),
                       json.dumps({"num_failures": 0})])
    (path / "experiment_state-2026-01-01_00-00-00.json").write_text(
        json.dumps({"trial_data": states}))
    if study:
        write_study(path / "optuna.db", name, objectives or ["miou"], trials)
    return path


def _costs(label: str) -> dict:
    c = ARCHITECTURES[label][1]
    return {"inference_ms_cpu": c["cpu_ms"], "inference_ms_gpu": float("nan"),
            "size_mb": c["size_mb"], "params": c["params"]}


def _row(label: str, trial_id: str, epoch: int, miou: float) -> dict:
    return {"trial_id": trial_id, "point": label, "epoch": epoch, "epochs_planned": EPOCHS,
            "train_loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "val_miou": miou,
            "val_accuracy": 0.5 + miou, "val_mean_class_recall": miou + 0.1,
            "train_minutes": 0.1 * epoch, "best_val_miou": miou, "best_epoch": epoch,
            "hostname": "node", **_costs(label)}


def _rejected_row(label: str, trial_id: str) -> dict:
    """What a trial proposed for an architecture over a budget reports: why, and its costs."""
    return {"trial_id": trial_id, "point": label, "epoch": 0, "rejected": REASON,
            "best_val_miou": float("nan"), "hostname": "node", **_costs(label)}


def write_study(file: Path, name: str, objectives: list[str], trials) -> None:
    """The study as sweeps/optuna_searcher.py leaves it: one trial per Tune trial; a rejected
    one COMPLETE with mIoU 0, its real costs and why (user attribute ``rejected``)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from sweeps.objectives import OBJECTIVES

    directions = ["maximize" if OBJECTIVES[n].mode == "max" else "minimize" for n in objectives]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = quick_storage(file)
    study = optuna.create_study(storage=storage, study_name=name, directions=directions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(objectives))
    point = CategoricalDistribution(list(ARCHITECTURES))
    lr = FloatDistribution(1e-4, 1e-2, log=True)
    for label, rate, miou in trials:
        figures = {"miou": 0.0 if miou is None else miou, **ARCHITECTURES[label][1]}
        study.add_trial(optuna.trial.create_trial(
            params={"point": label, "lr": rate}, distributions={"point": point, "lr": lr},
            values=[figures[n] for n in objectives],
            user_attrs={"label": label} | ({"rejected": REASON} if miou is None else {})))
    storage.engine.dispose()


def quick_storage(file: Path):
    """Optuna's SQLite storage in ``file``, without an fsync per write: a test's throwaway
    study is written in well under a second."""
    import optuna
    from sqlalchemy import event

    storage = optuna.storages.RDBStorage(f"sqlite:///{file}")
    event.listen(storage.engine, "connect",
                 lambda connection, _: connection.execute("PRAGMA synchronous=OFF"))
    storage.engine.dispose()  # the connections opened so far lack the setting
    return storage


def many_trials(n: int, seed: int = 0) -> list[tuple[str, float, float | None]]:
    """``n`` trials whose mIoU depends on the architecture alone (lr does nothing): every
    sixth a rejected proposal."""
    import random

    rng = random.Random(seed)
    base = {"unet/aug": 0.40, "deeplab/mobilenet_v3_small/aspp/aug": 0.28,
            "deeplab/resnet18/aspp/aug": 0.45}
    out = []
    for i in range(n):
        if i % 6 == 5:
            out.append((REJECTED_LABEL, 10 ** rng.uniform(-4, -2), None))
            continue
        label = list(base)[i % 3]
        out.append((label, 10 ** rng.uniform(-4, -2),
                    round(base[label] + rng.uniform(-0.005, 0.005), 4)))
    return out

