import math

import pytest

from segmodels.errors import ConfigError
from sweeps.objectives import (
    BUDGETED,
    OBJECTIVES,
    check_budgets,
    check_objectives,
    over_budget,
)


def test_every_budget_has_a_flag_and_a_cost_objective():
    assert set(BUDGETED) == {"cpu_ms", "gpu_ms", "size_mb"}
    assert all(OBJECTIVES[n].mode == "min" for n in BUDGETED)
    assert OBJECTIVES["miou"].mode == "max" and OBJECTIVES["miou"].column == "best_val_miou"


@pytest.mark.parametrize("names, message", [
    (["miou", "latency"], "choose from miou, cpu_ms"),
    (["miou", "cpu_ms", "cpu_ms"], "given twice"),
    (["cpu_ms"], "add --objective miou"),
])
def test_bad_objectives_are_refused(names, message):
    with pytest.raises(ConfigError, match=message):
        check_objectives(names)


@pytest.mark.parametrize("budgets, message", [
    ({"miou": 0.5}, "budgets exist for cpu_ms, gpu_ms, size_mb"),
    ({"cpu_ms": 0}, "positive number"),
    ({"cpu_ms": math.inf}, "positive number"),
    ({"size_mb": "big"}, "positive number"),
    ({"size_mb": True}, "positive number"),
])
def test_bad_budgets_are_refused(budgets, message):
    with pytest.raises(ConfigError, match=message):
        check_budgets(budgets)


def test_over_budget_names_the_cost_and_the_limit():
    assert over_budget({"cpu_ms": 12.0, "size_mb": 40.0}, {"cpu_ms": 30}) is None
    assert over_budget({"cpu_ms": 31.25}, {"cpu_ms": 30}) == "cpu_ms 31.25ms > budget 30ms"
    assert over_budget({"cpu_ms": 10, "size_mb": 90.5}, {"cpu_ms": 30, "size_mb": 50}) \
        == "size_mb 90.5MB > budget 50MB"
    assert over_budget({}, {"gpu_ms": 5}) is not None  # not measured: fits no budget
    assert over_budget({"cpu_ms": math.nan}, {"cpu_ms": 5}) is not None
