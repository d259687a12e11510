"""A search with objectives and budgets, stored file by file: a trial proposed for an
architecture over a budget loads as REJECTED and is never ranked, plotted as trained or picked;
the report gains "Search within a budget" (front plot, front table and front.csv, hypervolume
and its reference, the rejected architectures) and, for an Optuna search, "Importance"; a
sweep without objectives reports as before."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from analysis_helpers import write_asha_sweep
from search_helpers import (
    FRONT,
    HYPERVOLUME,
    REASON,
    REJECTED_LABEL,
    many_trials,
    write_search_sweep,
)

from analysis import plots
from analysis.loading import load_experiment
from analysis.report import build_report, ranked_rows
from sweeps.summary import REJECTED

REJECTED_IDS = ["t3", "t6"]
# The page's sections before objectives existed (a grid sweep without seeds or exports)
OLD_SECTIONS = ["1. Augmentation: loss curves without vs with",
                "2. ASPP: without vs with, which is better",
                "3. UNet vs DeepLab backbones: accuracy against cost",
                "4. The best model: good examples and failures per class",
                "Main effects", "Rankings", "All trials", "Deploy"]


def _sections(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


@pytest.fixture
def search_dir(tmp_path):
    return write_search_sweep(tmp_path / "search")


def test_a_trial_over_a_budget_loads_rejected_with_its_costs_and_no_epoch(search_dir):
    exp = load_experiment(search_dir)
    t = exp.trials.set_index("trial_id")
    for trial_id in REJECTED_IDS:
        row = t.loc[trial_id]
        assert (row["status"], row["epochs_done"], row["error"]) == (REJECTED, 0, REASON)
        assert (row["inference_ms_cpu"], row["size_mb"]) == (45.0, 80.0)
        assert pd.isna(row["best_val_miou"]) and not row["stopped_early"]
        assert exp.curves(trial_id).empty  # its one row is not an epoch
    assert set(t["status"]) == {"TERMINATED", REJECTED}
    assert not set(REJECTED_IDS) & set(exp.finished["trial_id"])
    assert not set(REJECTED_IDS) & set(exp.trained_configs)
    ranked, *_ = ranked_rows(exp)
    assert not set(REJECTED_IDS) & set(ranked["trial_id"])
    assert exp.costs.loc[REJECTED_LABEL, "rejected"] == REASON
    assert exp.costs.loc["unet/aug", "cpu_ms"] == 20.0
    assert exp.costs.loc["unet/aug", "rejected"] is None


def test_a_rejected_trial_never_reaches_a_pair_of_the_switch_plots(tmp_path):
    """vgg11_bn with ASPP rejected, without ASPP trained: no ASPP pair to compare."""
    trials = [("deeplab/vgg11_bn/aspp/aug", 1e-3, None), ("deeplab/vgg11_bn/no-aspp/aug", 1e-3,
                                                          0.3)]
    path = write_search_sweep(tmp_path / "s", trials=[], study=False)
    meta = json.loads((path / "segsweep.json").read_text())
    meta["points"]["deeplab/vgg11_bn/no-aspp/aug"] = {
        "model": "deeplab", "backbone": "vgg11_bn", "aspp": False}
    (path / "segsweep.json").write_text(json.dumps(meta))
    for i, (label, lr, miou) in enumerate(trials):
        folder = path / f"t{i}"
        folder.mkdir()
        (folder / "params.json").write_text(json.dumps({"point": label, "lr": lr}))
        row = ({"trial_id": f"t{i}", "epoch": 0, "rejected": REASON} if miou is None else
               {"trial_id": f"t{i}", "epoch": 1, "best_val_miou": miou, "val_miou": miou})
        (folder / "result.json").write_text(json.dumps(row) + "\n")
    exp = load_experiment(path)
    assert len(exp.configs) == 2 and list(exp.trained_configs) == ["t1"]
    [figure] = plots.switch_figures(plots.PlotContext(exp, tmp_path), "aspp")
    assert figure.path is None and "no two trials differ only in aspp" in figure.note


def test_an_unreadable_costs_file_is_named_and_read_as_none(search_dir):
    (search_dir / "costs.json").write_text("{broken")
    exp = load_experiment(search_dir)
    assert exp.costs.empty
    assert any(n.startswith("costs.json unreadable") for n in exp.notes)


@pytest.mark.slow
def test_the_report_of_a_budgeted_search_shows_its_front_hypervolume_and_rejections(
        search_dir, tmp_path):
    page = build_report(search_dir, tmp_path, examples=False).read_text()

    sections = _sections(page)
    assert sections.index("Search within a budget") < sections.index("Importance") \
        < sections.index("Rankings")
    budget = page[page.index("<h2>Search within a budget"):page.index("<h2>Importance")]
    assert "<b>Objectives:</b> miou (maximised), cpu_ms (minimised). <b>Budgets:</b> " \
           "cpu_ms &lt;= 30 ms." in budget
    assert "among the 5 of 5 trained trials within every budget" in budget
    assert f"Hypervolume: {HYPERVOLUME:.3f}," in budget
    assert "reference point (mIoU 0.000; cpu_ms 30 ms (its budget))" in budget
    assert "1 architecture(s) over a budget were never trained (2 proposal(s)" in budget
    assert budget.count('<img alt="Best val mIoU vs cpu_ms (budget 30 ms)"') == 1
    rejected = budget[budget.index("<h3>Rejected before training"):]
    assert REJECTED_LABEL in rejected and "cpu_ms 45ms &gt; budget 30ms" in rejected
    assert "20,000,000" in rejected
    front = pd.read_csv(tmp_path / "front.csv")
    names = load_experiment(search_dir).trials.set_index("trial_id")["name"]
    assert front["trial_id"].tolist() == FRONT
    assert front["name"].tolist() == names[FRONT].tolist()
    assert list(front.columns) == ["name", "model", "backbone", "aspp", "lr", "best_val_miou",
                                   "inference_ms_cpu", "trial_id"]
    assert (tmp_path / "front_cpu_ms.png").is_file()
    importance = page[page.index("<h2>Importance"):page.index("<h2>Rankings")]
    assert "miou: not enough completed trials to assess importance (5; at least 10" \
        in importance
    assert "2 REJECTED" in page
    assert REJECTED_LABEL not in (tmp_path / "rankings.md").read_text()
    table = pd.read_csv(tmp_path / "trials.csv").set_index("trial_id")
    assert table.loc[REJECTED_IDS, "status"].tolist() == [REJECTED, REJECTED]


@pytest.mark.slow
def test_an_optuna_search_with_enough_trials_reports_each_objectives_importance(tmp_path):
    path = write_search_sweep(tmp_path / "search", trials=many_trials(30, seed=1))
    page = build_report(path, tmp_path / "r", examples=False).read_text()
    importance = page[page.index("<h2>Importance"):page.index("<h2>Rankings")]
    assert "<h3>miou</h3>" in importance and "<h3>cpu_ms</h3>" in importance
    assert "point: set in 25 of 25 completed trials" in importance
    assert '<img alt="Parameter importance (PED-ANOVA) per objective"' in importance
    assert (tmp_path / "r" / "importance.png").is_file()


@pytest.mark.slow
def test_a_sweep_without_objectives_reports_as_before(tmp_path):
    page = build_report(write_asha_sweep(tmp_path / "asha"), tmp_path / "r",
                        examples=False).read_text()
    assert _sections(page) == OLD_SECTIONS
    assert not (tmp_path / "r" / "front.csv").exists()
    assert not list((tmp_path / "r").glob("front_*.png"))
    assert not (tmp_path / "r" / "importance.png").exists()

    # an Optuna search recorded before objectives: its importances, no front
    old_search = write_search_sweep(tmp_path / "old", objectives=None)
    page = build_report(old_search, tmp_path / "r2", examples=False).read_text()
    assert "Search within a budget" not in _sections(page) and "Importance" in _sections(page)
    assert not (tmp_path / "r2" / "front.csv").exists()


def test_the_front_plot_marks_budget_front_and_rejected_architectures(
        search_dir, tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    exp = load_experiment(search_dir)
    [figure] = plots.front_figures(plots.PlotContext(exp, tmp_path))
    assert figure.key == "front_cpu_ms" and figure.title == "Best val mIoU vs cpu_ms (budget " \
                                                           "30 ms)"
    ax = drawn[0].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["trained, within every budget", "Pareto front",
                      "rejected before training (over a budget): no mIoU", "budget 30 ms"]
    labels = {t.get_text(): t.xy for t in ax.texts}
    names = exp.trials.set_index("trial_id")["name"]
    assert {names[t] for t in FRONT} | {REJECTED_LABEL} == set(labels)
    assert labels[REJECTED_LABEL][0] == 45.0
    [budget] = [line for line in ax.get_lines() if line.get_label() == "budget 30 ms"]
    assert list(budget.get_xdata()) == [30.0, 30.0]
    assert ax.get_xlim()[1] > 45.0  # the rejected architecture is in view


def test_sweeps_without_objectives_or_a_search_get_no_new_figures(tmp_path):
    exp = load_experiment(write_asha_sweep(tmp_path / "asha"))
    ctx = plots.PlotContext(exp, tmp_path)
    assert plots.front_figures(ctx) == [] and plots.importance_figure(ctx) == []
