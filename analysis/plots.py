"""Plot builders, one registry entry per figure family (``PLOTS``).

Each builder takes a ``PlotContext`` and returns ``Figure`` records: a written PNG (title, axis
labels, legend or colour bar) or, when the trials it needs are absent, ``path=None`` and a
"skipped: why" note, so the report can say what is missing instead of failing.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from analysis.comparisons import SWITCHES, SwitchPair, course_models, find_pairs  # noqa: E402
from analysis.importance import Importance, is_search_sweep, sweep_importance  # noqa: E402
from analysis.intervals import image_intervals  # noqa: E402
from analysis.loading import Experiment  # noqa: E402
from analysis.pareto import is_budgeted_search, non_dominated, search_front  # noqa: E402
from analysis.rankings import MIOU, pareto_front, projection_notes  # noqa: E402
from analysis.replicates import has_replicates, point_name, replicate_groups  # noqa: E402
from sweeps.equal_work import PROJECTED  # noqa: E402
from sweeps.objectives import LEARNED, OBJECTIVES  # noqa: E402

OFF_COLOR, ON_COLOR = "tab:red", "tab:blue"  # the course's colours: red without, blue with
CURVE_PANELS = (("val_miou", "val mIoU"), ("val_accuracy", "val pixel accuracy"),
                ("val_mean_class_recall", "val mean class recall"))
DPI = 110
PLAIN = FuncFormatter(lambda v, _: f"{v:g}")  # 300, not 3x10^2, on log axes
# minor ticks of a log axis: label only 2x and 5x, so the labels never run into each other
MINOR = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:e}"[0] in "25" else "")


@dataclass
class PlotContext:
    exp: Experiment
    out_dir: Path
    baseline: float | None = None  # constant-predictor mIoU, drawn where mIoU is plotted
    importance: Importance | None = None  # an Optuna search's, when the caller has it already


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    path: Path | None
    note: str = ""
    trial_ids: tuple[str, ...] = ()

    @property
    def written(self) -> bool:
        return self.path is not None


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _log_if_spiky(ax: plt.Axes, values: pd.DataFrame) -> None:
    """Log scale when one diverging epoch would flatten every other point of a loss plot."""
    v = values.to_numpy(dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and v.max() / v.min() > 5:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(PLAIN)
        ax.yaxis.set_minor_formatter(MINOR)


def class_names(history: pd.DataFrame) -> list[str]:
    """Class names in logged order, from the ``val_iou_<class>`` columns."""
    return [c.removeprefix("val_iou_") for c in history.columns if c.startswith("val_iou_")]


def switch_figures(ctx: PlotContext, key: str) -> list[Figure]:
    """Course Tasks 1-2 for every pair of trials that differ only in ``key``: loss curves
    (train dashed, val solid) and the validation metrics, red without and blue with."""
    switch, exp = SWITCHES[key], ctx.exp
    pairs = find_pairs(exp.trained_configs, key)
    if not pairs:
        return [Figure(f"switch_{key}", f"Without vs with {switch.title}", None,
                       f"skipped: no two trials differ only in {key}")] if switch.course else []
    return [_pair_figure(ctx, pair) for pair in pairs]


LOSS_NAMES = {"ce": "cross-entropy", "weighted_ce": "class-weighted cross-entropy"}


def _loss_title(exp: Experiment, trial_ids) -> str:
    """What the loss curves show: each trial minimises (and validates) its own ``loss``, so
    curves of different losses share an axis but not a scale."""
    losses = {exp.configs.get(t, {}).get("loss", "ce") for t in trial_ids}
    if len(losses) == 1:
        name = losses.pop()
        return f"{LOSS_NAMES.get(name, name)} loss"
    return "loss (each trial's own: " + ", ".join(sorted(losses)) + "; scales differ)"


def _pair_figure(ctx: PlotContext, pair: SwitchPair) -> Figure:
    exp, s = ctx.exp, pair.switch
    title = f"{pair.subject}: {s.off} vs {s.on}"
    key = f"switch_{s.key}_{slug(pair.subject)}"
    curves = {tid: exp.curves(tid) for tid in (pair.off, pair.on)}
    empty = [exp.trial(t)["name"] for t, c in curves.items() if c.empty]
    if empty:
        return Figure(key, title, None, f"skipped: no epochs reported yet by {', '.join(empty)}",
                      (pair.off, pair.on))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    sides = ((pair.off, s.off, OFF_COLOR), (pair.on, s.on, ON_COLOR))
    loss_ax = axes[0, 0]
    for tid, side, color in sides:
        c = curves[tid]
        loss_ax.plot(c["epoch"], c["train_loss"], "--o", color=color, ms=3, label=f"{side}: train")
        loss_ax.plot(c["epoch"], c["val_loss"], "-o", color=color, ms=3, label=f"{side}: val")
    _log_if_spiky(loss_ax, pd.concat([c[["train_loss", "val_loss"]] for c in curves.values()]))
    loss_ax.set(title=_loss_title(exp, (pair.off, pair.on)).capitalize(), xlabel="epoch",
                ylabel="loss")
    loss_ax.legend(fontsize=8)
    for ax, (column, label) in zip(axes.flat[1:], CURVE_PANELS):
        for tid, side, color in sides:
            ax.plot(curves[tid]["epoch"], curves[tid][column], "-o", color=color, ms=3, label=side)
        if column == "val_miou" and ctx.baseline is not None:
            ax.axhline(ctx.baseline, color="grey", ls=":", label="constant-predictor baseline")
        ax.set(title=label, xlabel="epoch", ylabel=label)
        ax.legend(fontsize=8)
    for ax in axes.flat:
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return Figure(key, title, _save(fig, ctx.out_dir / f"{key}.png"), "", (pair.off, pair.on))


TRADEOFF_AXES = {  # file key -> (title, x label, [(column, marker label, marker)])
    "train_minutes": ("training time", "training time for the planned epochs (min)",
                      [(PROJECTED, "", "o")]),
    "inference": ("inference time", "inference time (ms per {frame} frame)",
                  [("inference_ms_cpu", "CPU", "o"), ("inference_ms_gpu", "GPU", "^")]),
    "size_mb": ("model size", "model size (MB, fp32 parameters)", [("size_mb", "", "s")]),
}


def tradeoff_figures(ctx: PlotContext) -> list[Figure]:
    """Course Task 3: best val mIoU against each cost, one dot per model, Pareto frontier
    (lower cost, higher mIoU) joined by a dashed line. Training times projected from fewer
    epochs than planned get their own hollow marker and "(projected ...)" beside the name."""
    models, how = course_models(ctx.exp.trials)
    bars = image_intervals(ctx.exp)  # per trial_id: the 95% interval over validation images
    out = []
    for key, (what, xlabel, series) in TRADEOFF_AXES.items():
        title = f"Best val mIoU vs {what}"
        present = [s for s in series if models[s[0]].notna().any()]
        if models.empty or not present:
            out.append(Figure(f"tradeoff_{key}", title, None, "skipped: no model has results"))
            continue
        fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
        for column, device, marker in present:
            device = device if len(present) > 1 else ""  # name the device only to tell apart
            pts = models.dropna(subset=[column, MIOU])
            notes = (projection_notes(pts) if column == PROJECTED
                     else pd.Series("", index=pts["name"])).to_numpy()
            measured, projected = pts[notes == ""], pts[notes != ""]
            ax.scatter(measured[column], measured[MIOU], marker=marker, s=60, zorder=3,
                       label=f"models ({device})" if device else "models")
            lows = bars["miou_low"].reindex(pts["trial_id"]).to_numpy(dtype=float)
            highs = bars["miou_high"].reindex(pts["trial_id"]).to_numpy(dtype=float)
            known = ~np.isnan(lows)
            if known.any():
                y = pts[MIOU].to_numpy(dtype=float)[known]
                ax.errorbar(pts[column].to_numpy(dtype=float)[known], y,
                            yerr=[y - lows[known], highs[known] - y], fmt="none",
                            ecolor="grey", elinewidth=1, capsize=3, zorder=2)
            if f"{column}_low" in pts and pts[f"{column}_low"].notna().any():
                spread = pts.dropna(subset=[f"{column}_low"])  # fastest to slowest timed run
                x = spread[column].to_numpy(dtype=float)
                ax.errorbar(x, spread[MIOU].to_numpy(dtype=float),
                            xerr=[x - spread[f"{column}_low"].to_numpy(dtype=float),
                                  spread[f"{column}_high"].to_numpy(dtype=float) - x],
                            fmt="none", ecolor="grey", elinewidth=1, capsize=3, zorder=2)
            if not projected.empty:
                ax.scatter(projected[column], projected[MIOU], marker=marker, s=60, zorder=3,
                           facecolors="white", edgecolors="tab:orange", linewidths=1.5,
                           label="fewer epochs than planned: time projected "
                                 "(min per epoch x planned epochs)")
            for (_, p), note in zip(pts.iterrows(), notes):
                ax.annotate(f"{p['name']}" + (f" [{device}]" if device else "")
                            + (f" ({note})" if note else ""),
                            (p[column], p[MIOU]), textcoords="offset points", xytext=(5, 4),
                            fontsize=7)
            front = pts.set_index("name").loc[pareto_front(pts, column)]
            ax.plot(front[column], front[MIOU], "--", color="black", lw=1, zorder=2,
                    label="Pareto frontier" + (f" ({device})" if device else ""))
            ax.scatter(front[column], front[MIOU], s=160, facecolors="none",
                       edgecolors="black", zorder=4)
        if ctx.baseline is not None:
            ax.axhline(ctx.baseline, color="grey", ls=":", label="constant-predictor baseline")
        values = pd.concat([models[c] for c, _, _ in present]).dropna()
        if len(values) > 1 and values.min() > 0 and values.max() / values.min() > 20:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(PLAIN)
            ax.xaxis.set_minor_formatter(MINOR)
        ax.margins(x=0.12, y=0.1)  # room for the labels next to the dots
        ax.set(title=title, xlabel=xlabel.format(frame=_frame(ctx.exp, models)),
               ylabel="best val mIoU")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        note = f"models: {how}" + _projected_note(models, [c for c, _, _ in present])
        if bars["miou_low"].reindex(models["trial_id"]).notna().any():
            note += ("; bars: 95% interval of each best val mIoU over the validation images "
                     "(percentile bootstrap)")
        if any(f"{c}_low" in models and models[f"{c}_low"].notna().any() for c, _, _ in present):
            note += "; horizontal bars: fastest to slowest of the timed inference runs"
        fig.text(0.01, -0.01, note, fontsize=7, va="top", wrap=True)
        path = _save(fig, ctx.out_dir / f"tradeoff_{key}.png")
        out.append(Figure(f"tradeoff_{key}", title, path, note, tuple(models["trial_id"])))
    return out


def _projected_note(models: pd.DataFrame, columns: list[str]) -> str:
    if PROJECTED not in columns:
        return ""
    notes = projection_notes(models)
    names = notes[notes != ""].index.tolist()
    return (f"; training time projected to the planned epochs for {', '.join(names)} (they "
            "trained fewer), so every model compares at equal work" if names else "")


def _frame(exp: Experiment, models: pd.DataFrame) -> str:
    sizes = sorted({(exp.configs[t].get("inference_width"), exp.configs[t].get("inference_height"))
                    for t in models["trial_id"]})
    return " / ".join(f"{w}x{h}" for w, h in sizes)


def _best_rows(exp: Experiment) -> pd.DataFrame:
    """Each finished trial's history row at its best epoch (its last epoch if unknown)."""
    rows = []
    for _, t in exp.finished.iterrows():
        c = exp.curves(t["trial_id"])
        at = c[c["epoch"] == t["best_epoch"]]
        rows.append((at if not at.empty else c.tail(1)).iloc[0])
    return pd.DataFrame(rows)


def per_class_iou_figure(ctx: PlotContext) -> list[Figure]:
    """Course Task 4 context: per-class val IoU of every model at its best epoch."""
    title = "Per-class val IoU at each model's best epoch"
    best = _best_rows(ctx.exp)
    names = class_names(ctx.exp.history)
    if best.empty or not names:
        return [Figure("per_class_iou", title, None, "skipped: no model has results")]
    values = best[[f"val_iou_{n}" for n in names]].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 3, 0.5 * len(best) + 2),
                           constrained_layout=True)
    image = ax.imshow(np.ma.masked_invalid(values), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center", va="center",
                fontsize=8, color="white" if np.isnan(v) or v < 0.6 else "black")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(best)), best["name"])
    ax.set(title=title, xlabel="class", ylabel="model")
    fig.colorbar(image, ax=ax, label="IoU (n/a: class in neither target nor prediction)")
    return [Figure("per_class_iou", title, _save(fig, ctx.out_dir / "per_class_iou.png"), "",
                   tuple(best["trial_id"]))]


def confusion_figure(ctx: PlotContext) -> list[Figure]:
    """Course Task 4 context: the best model's confusion matrix, rows normalised, so each row
    shows where that ground-truth class went."""
    exp = ctx.exp
    done = exp.finished.dropna(subset=[MIOU])
    if done.empty:
        return [Figure("confusion", "Confusion matrix", None, "skipped: no model has results")]
    best = done.loc[done[MIOU].astype(float).idxmax()]
    title = f"Confusion matrix of {best['name']} (epoch {best['best_epoch']})"
    try:
        cm = exp.confusion(best["trial_id"]).astype(float)
    except KeyError as exc:
        return [Figure("confusion", title, None, f"skipped: {exc.args[0]}")]
    support = cm.sum(1, keepdims=True)
    norm = np.divide(cm, support, out=np.full_like(cm, np.nan), where=support > 0)
    names = class_names(exp.history) or [str(i) for i in range(len(cm))]
    fig, ax = plt.subplots(figsize=(8, 7), constrained_layout=True)
    image = ax.imshow(np.ma.masked_invalid(norm), vmin=0, vmax=1, cmap="Blues")
    for (i, j), v in np.ndenumerate(norm):
        if not np.isnan(v) and v >= 0.005:
            ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if v > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(title=title, xlabel="predicted class", ylabel="ground-truth class")
    fig.colorbar(image, ax=ax, label="fraction of the ground-truth class's pixels")
    return [Figure("confusion", title, _save(fig, ctx.out_dir / "confusion_best.png"), "",
                   (best["trial_id"],))]


STATUS_COLORS = {"stopped early": "tab:orange", "all epochs": "tab:green", "other": "tab:gray"}


def scheduler_figure(ctx: PlotContext) -> list[Figure]:
    """ASHA: how many epochs each trial ran before it was stopped."""
    trials, title = ctx.exp.trials, "Epochs each trial ran (ASHA early stopping)"
    if not trials["stopped_early"].any():
        scheduler = ctx.exp.meta.get("settings", {}).get("scheduler", "unknown")
        return [Figure("scheduler", title, None,
                       f"skipped: no trial was stopped early (scheduler: {scheduler})")]
    kind = np.where(trials["stopped_early"], "stopped early",
                    np.where(trials["epochs_done"] >= trials["epochs_planned"], "all epochs",
                             "other"))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(trials) + 2), constrained_layout=True)
    ax.barh(trials["name"], trials["epochs_done"], color=[STATUS_COLORS[k] for k in kind])
    ax.axvline(trials["epochs_planned"].max(), color="black", ls="--")
    handles = [Patch(color=c, label=k) for k, c in STATUS_COLORS.items() if k in set(kind)]
    handles.append(plt.Line2D([], [], color="black", ls="--", label="epochs planned"))
    ax.legend(handles=handles, fontsize=8)
    ax.set(title=title, xlabel="epochs trained", ylabel="trial")
    ax.invert_yaxis()
    return [Figure("scheduler", title, _save(fig, ctx.out_dir / "scheduler_epochs.png"))]


def overview_figure(ctx: PlotContext) -> list[Figure]:
    """Every trial's val mIoU and val loss per epoch, for a first look at the whole sweep."""
    exp, title = ctx.exp, "Validation curves of every trial"
    if exp.finished.empty:
        return [Figure("overview", title, None, "skipped: no model has results")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    note = ""
    if has_replicates(exp):  # one line per point: the mean over its seeds, a band their range
        names = exp.trials.set_index("trial_id")["name"].astype(str)
        for trial_ids in replicate_groups(exp).values():
            curves = pd.concat([exp.curves(t).set_index("epoch")[["val_miou", "val_loss"]]
                                .assign(trial=t) for t in trial_ids])
            by_epoch = curves.groupby(level="epoch")
            seen = by_epoch["trial"].nunique() == len(trial_ids)  # epochs every seed reached
            label = point_name(names[trial_ids[0]]) + f" ({len(trial_ids)} seeds)"
            for ax, column in ((left, "val_miou"), (right, "val_loss")):
                stats = by_epoch[column].agg(["mean", "min", "max"])[seen]
                line, = ax.plot(stats.index, stats["mean"], "-o", ms=3, label=label)
                ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.2,
                                color=line.get_color())
        note = "lines: the mean over each point's seeds; bands: their range (lowest to highest)"
    else:
        for _, t in exp.finished.iterrows():
            c = exp.curves(t["trial_id"])
            left.plot(c["epoch"], c["val_miou"], "-o", ms=3, label=t["name"])
            right.plot(c["epoch"], c["val_loss"], "-o", ms=3, label=t["name"])
    if ctx.baseline is not None:
        left.axhline(ctx.baseline, color="grey", ls=":", label="constant-predictor baseline")
    left.set(title="val mIoU", xlabel="epoch", ylabel="val mIoU")
    _log_if_spiky(right, exp.history[["val_loss"]])
    right.set(title="val " + _loss_title(exp, exp.finished["trial_id"]), xlabel="epoch",
              ylabel="loss")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    left.legend(fontsize=7)
    fig.suptitle(title)
    return [Figure("overview", title, _save(fig, ctx.out_dir / "overview_curves.png"), note)]


def varied_settings(configs: list[dict]) -> list[str]:
    """The settings that differ between the trials (resolved configs), in config order."""
    keys = dict.fromkeys(k for cfg in configs for k in cfg)
    return [k for k in keys if len({repr(cfg.get(k)) for cfg in configs}) > 1]


def parallel_figure(ctx: PlotContext) -> list[Figure]:
    """Best val mIoU against every setting the sweep varied, one line per trial, when it
    varied more than two (an Optuna search, a wide grid); fewer are the switch plots' job.
    Drawn by Optuna's parallel-coordinate plot over the trials (any search)."""
    import optuna

    exp = ctx.exp
    varied = varied_settings(list(exp.configs.values()))
    if len(varied) <= 2:
        return []
    title = f"Best val mIoU against the {len(varied)} settings the sweep varied"
    done = exp.finished[np.isfinite(exp.finished[MIOU].astype(float))]
    if len(done) < 2:
        return [Figure("parallel", title, None, "skipped: fewer than two trials have a best "
                                                 "val mIoU")]
    configs = [exp.configs[t] for t in done["trial_id"]]
    distributions = {k: _distribution([cfg.get(k) for cfg in configs]) for k in varied}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line per report
    try:
        study = optuna.create_study(direction="maximize")
        for cfg, value in zip(configs, done[MIOU].astype(float)):
            params = {k: _param(cfg.get(k), d) for k, d in distributions.items()}
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                      value=value))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ax = optuna.visualization.matplotlib.plot_parallel_coordinate(
                study, params=varied, target_name="best val mIoU")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for lines in ax.collections:  # Optuna's Blues starts at white: the worst trial would vanish
        lines.set_cmap("viridis")
    ax.figure.set_size_inches(max(8.0, 2.2 * (len(varied) + 1)), 5.5)  # room for tick names
    ax.set_title(title)
    return [Figure("parallel", title, _save(ax.figure, ctx.out_dir / "parallel_coordinates.png"),
                   "", tuple(done["trial_id"]))]


def _distribution(values: list):
    """A numeric axis for numbers (log-scaled when they span a decade or more, as lr does),
    else one tick per distinct value."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        low, high = float(min(values)), float(max(values))
        return FloatDistribution(low, high, log=low > 0 and high / low >= 10)
    return CategoricalDistribution(sorted({str(v) for v in values}))


def _param(value, distribution):
    return str(value) if hasattr(distribution, "choices") else float(value)


FRONT_LABELS = {"cpu_ms": "CPU inference time (ms per {frame} frame)",
                "gpu_ms": "GPU inference time (ms per {frame} frame)",
                "size_mb": "model size (MB, fp32 parameters)", "params": "trainable parameters"}


def front_figures(ctx: PlotContext) -> list[Figure]:
    """A search with several objectives or budgets: best val mIoU against each cost, one dot
    per trained trial (hollow where over a budget), the Pareto front ringed and joined as the
    staircase it dominates, each budget a vertical line, and the architectures rejected before
    training as crosses along the bottom at their measured cost (they have no mIoU)."""
    exp = ctx.exp
    if not is_budgeted_search(exp.meta):
        return []
    result = search_front(exp)
    trained, several = result.trained, len(result.objectives) > 2
    out = []
    for name in result.costs:
        column = OBJECTIVES[name].column
        title = f"Best val mIoU vs {name}" + (f" (budget {result.budgets[name]:g} "
                                               f"{OBJECTIVES[name].unit})"
                                               if name in result.budgets else "")
        key = f"front_{name}"
        rejected = result.rejected.dropna(subset=[name]) if name in result.rejected else \
            result.rejected.iloc[:0]
        points = trained.dropna(subset=[column, MIOU])
        if points.empty and rejected.empty:
            out.append(Figure(key, title, None, f"skipped: no trial has a {name} figure"))
            continue
        fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
        fits, over = points[points["feasible"]], points[~points["feasible"]]
        ax.scatter(fits[column], fits[MIOU], s=50, zorder=3, color="tab:blue",
                   label="trained, within every budget")
        if not over.empty:
            ax.scatter(over[column], over[MIOU], s=50, zorder=3, facecolors="white",
                       edgecolors="tab:orange", linewidths=1.5,
                       label="trained, over a budget by the trials table's figures")
        ring = points[points["on_front"]]
        ax.scatter(ring[column], ring[MIOU], s=170, facecolors="none", edgecolors="black",
                   zorder=4, label=f"on the front of all {len(result.objectives)} objectives"
                   if several else "Pareto front")
        pair = fits[non_dominated(fits, [LEARNED, name])].sort_values([column, MIOU])
        ax.plot(pair[column], pair[MIOU], "--", color="black", lw=1, zorder=2,
                drawstyle="steps-post", label=f"front of mIoU vs {name} alone" if several
                else None)
        for (x, y), same in ring.groupby([column, MIOU]):  # equal trials share one label
            ax.annotate("; ".join(map(str, same["name"])), (x, y), textcoords="offset points",
                        xytext=(5, 4), fontsize=7)
        if not rejected.empty:  # no mIoU: a rug at the bottom, at their measured cost
            ax.scatter(rejected[name], np.full(len(rejected), 0.03), marker="x", s=60,
                       color="tab:red", transform=ax.get_xaxis_transform(), zorder=4,
                       label="rejected before training (over a budget): no mIoU")
            for _, r in rejected.iterrows():
                ax.annotate(str(r["label"]), (r[name], 0.03),
                            xycoords=ax.get_xaxis_transform(), textcoords="offset points",
                            xytext=(4, 6), fontsize=7, color="tab:red")
        if name in result.budgets:
            ax.axvline(result.budgets[name], color="tab:red", ls=":",
                       label=f"budget {result.budgets[name]:g} {OBJECTIVES[name].unit}".strip())
        if ctx.baseline is not None:
            ax.axhline(ctx.baseline, color="grey", ls=":", label="constant-predictor baseline")
        values = pd.concat([points[column], rejected[name] if not rejected.empty
                            else pd.Series(dtype=float)]).astype(float).dropna()
        if len(values) > 1 and values.min() > 0 and values.max() / values.min() > 20:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(PLAIN)
            ax.xaxis.set_minor_formatter(MINOR)
        ax.margins(x=0.12, y=0.12)
        if not rejected.empty:  # the rug is in axes coordinates: autoscaling misses it
            low, high = ax.get_xlim()
            ax.set_xlim(min(low, 0.9 * rejected[name].min()), max(high, 1.1 * rejected[name].max()))
        frame = _frame(exp, points) if not points.empty else "?"
        ax.set(title=title, xlabel=FRONT_LABELS.get(name, name).format(frame=frame),
               ylabel="best val mIoU")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        out.append(Figure(key, title, _save(fig, ctx.out_dir / f"{key}.png"), "",
                          tuple(points["trial_id"])))
    return out


def importance_figure(ctx: PlotContext) -> list[Figure]:
    """An Optuna search: each objective's PED-ANOVA parameter importances (analysis.importance),
    bars hatched where the permutation p is above 0.05 (within what chance gives)."""
    if not is_search_sweep(ctx.exp.meta):
        return []
    frame = (ctx.importance or sweep_importance(ctx.exp)).frame
    if frame.empty:
        return []  # the report's Importance section says why
    objectives = list(dict.fromkeys(frame["objective"]))
    title = "Parameter importance (PED-ANOVA) per objective"
    height = 0.45 * frame.groupby("objective").size().max() + 1.6
    fig, axes = plt.subplots(1, len(objectives), figsize=(4.2 * len(objectives) + 1, height),
                             constrained_layout=True, squeeze=False)
    for ax, objective in zip(axes[0], objectives):
        rows = frame[frame["objective"] == objective].iloc[::-1]  # most important on top
        chance = rows["p"] > 0.05
        bars = ax.barh(rows["parameter"], rows["importance"], color="tab:blue",
                       edgecolor="white")
        for bar, within_chance in zip(bars, chance):
            bar.set_hatch("//" if within_chance else "")
        ax.set(title=objective, xlabel="importance (sums to 1)", xlim=(0, 1))
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].legend(handles=[Patch(color="tab:blue", label="permutation p <= 0.05"),
                               Patch(facecolor="tab:blue", hatch="//", edgecolor="white",
                                     label="p > 0.05: within chance")], fontsize=7)
    fig.suptitle(title)
    return [Figure("importance", title, _save(fig, ctx.out_dir / "importance.png"))]


PlotBuilder = Callable[[PlotContext], list[Figure]]
PLOTS: dict[str, PlotBuilder] = {
    "overview": overview_figure,
    **{f"switch_{key}": partial(switch_figures, key=key) for key in SWITCHES},
    "tradeoffs": tradeoff_figures,
    "per_class_iou": per_class_iou_figure,
    "confusion": confusion_figure,
    "scheduler": scheduler_figure,
    "parallel": parallel_figure,
    "front": front_figures,
    "importance": importance_figure,
}


def build_plots(exp: Experiment, out_dir: str | Path, baseline: float | None = None,
                importance: Importance | None = None) -> list[Figure]:
    """Run every registered builder; returns written figures and skip notes, in order.
    ``importance``: the sweep's parameter importances, when the caller computed them."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = PlotContext(exp, out_dir, baseline, importance)
    figures = []
    for key, builder in PLOTS.items():
        try:
            figures += builder(ctx)
        except Exception as exc:  # one odd trial must not cost the whole report
            plt.close("all")
            figures.append(Figure(key, key, None, f"failed: {type(exc).__name__}: {exc}"))
    return figures
