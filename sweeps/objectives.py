"""What a search optimises and within which budget: the ``--objective`` choices (``OBJECTIVES``)
and the ``--max-*`` budgets.

mIoU is the only objective a trial learns; the others are costs of its architecture (inference
time, size, parameters), fixed by the network and the frame size. They are measured once per
architecture before training (sweeps/costs.py), so an architecture over a budget is never trained
and every trial of one architecture reports the same figures.

Each objective's ``column`` is the metric the trials report and the analysis tables hold, so
Optuna's values, the CLI's front and the report's front read one name. Cheap to import: the CLI
reads the registry for its choices.
"""

from __future__ import annotations

from dataclasses import dataclass

from segmodels.errors import ConfigError


@dataclass(frozen=True)
class Objective:
    column: str  # the trials' reported metric and the analysis tables' column
    mode: str  # "max" or "min"
    description: str
    unit: str = ""
    budget_flag: str | None = None  # the CLI flag of its budget, None where it has none


OBJECTIVES: dict[str, Objective] = {
    "miou": Objective("best_val_miou", "max", "best validation mIoU of the trial (maximised)"),
    "cpu_ms": Objective("inference_ms_cpu", "min", "CPU inference ms per frame, the "
                        "architecture timed alone at the trial's thread count", "ms",
                        "--max-cpu-ms"),
    "gpu_ms": Objective("inference_ms_gpu", "min", "GPU inference ms per frame, timed alone "
                        "on a whole GPU (needs one)", "ms", "--max-gpu-ms"),
    "size_mb": Objective("size_mb", "min", "model size in MB", "MB", "--max-size-mb"),
    "params": Objective("params", "min", "trainable parameters"),
}
REJECTED = "rejected"  # costs.json's key and a trial's metric: why its architecture never trained
DEFAULT_OBJECTIVES = ("miou",)
LEARNED = "miou"  # the one objective a trial's training decides; the rest are costs
BUDGETED = tuple(name for name, o in OBJECTIVES.items() if o.budget_flag)


def check_objectives(names: list[str] | tuple[str, ...], source: str = "--objective") -> None:
    """Known names, each once, mIoU among them (a search that ignores accuracy would crown
    the smallest untrained network)."""
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise ConfigError(f"{source} {unknown[0]!r}: choose from {', '.join(OBJECTIVES)}")
    twice = sorted({n for n in names if list(names).count(n) > 1})
    if twice:
        raise ConfigError(f"{source} {twice[0]!r} is given twice; give each objective once")
    if LEARNED not in names:
        fix = f"add --objective {LEARNED}" if source.startswith("--") else f"add {LEARNED} to it"
        raise ConfigError(f"{source} {', '.join(names)}: {fix}; costs alone would crown the "
                          "smallest untrained network")


def check_budgets(budgets: dict[str, float], source: str = "budget") -> None:
    """Budgets on cost objectives only, each a positive finite number."""
    for name, limit in budgets.items():
        if name not in BUDGETED:
            raise ConfigError(f"{source} {name!r}: budgets exist for {', '.join(BUDGETED)}")
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not (
                0 < float(limit) < float("inf")):
            raise ConfigError(f"{source} {name} = {limit!r}: expected a positive number "
                              f"({OBJECTIVES[name].unit or 'units'} per frame or model)")


def is_multi_objective(names: list[str] | tuple[str, ...]) -> bool:
    return len(names) > 1


def over_budget(costs: dict[str, float], budgets: dict[str, float]) -> str | None:
    """Why an architecture with these costs (objective name -> figure) is over a budget, or
    None when it fits every one. A cost that could not be measured (NaN) fits no budget."""
    for name, limit in budgets.items():
        value = costs.get(name, float("nan"))
        if not value <= limit:  # NaN fails too
            unit = OBJECTIVES[name].unit
            return f"{name} {value:.4g}{unit} > budget {limit:g}{unit}"
    return None


__all__ = ["BUDGETED", "DEFAULT_OBJECTIVES", "LEARNED", "OBJECTIVES", "REJECTED", "Objective",
           "check_budgets", "check_objectives", "is_multi_objective", "over_budget"]
