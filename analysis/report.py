"""The report of a sweep: tables, plots, rankings, examples and one self-contained HTML page
that answers the course's four questions with their evidence.

    python -m analysis runs/homework              # writes runs/homework/report/
    build_report("runs/homework")                 # the same from Python; returns report.html
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis import html
from analysis.comparisons import course_models, find_pairs
from analysis.effects import effect_lines, main_effects
from analysis.exports import read_exports
from analysis.findings import (
    compare_pair,
    describe_baseline,
    describe_scheduler,
    describe_tradeoffs,
    reasons,
    timing_noise,
)
from analysis.importance import Importance, assessed_lines, is_search_sweep, sweep_importance
from analysis.intervals import (
    pair_difference,
    tie_groups,
    with_intervals,
)
from analysis.loading import Experiment, load_experiment
from analysis.pareto import SearchFront, is_budgeted_search, search_front
from analysis.plots import Figure, build_plots, varied_settings
from analysis.rankings import (
    AXES,
    DEFAULT_TOLERANCE,
    TRIAL_TEST,
    projection_notes,
    rankings_markdown,
    rankings_table,
)
from analysis.replicates import (
    POINT_TEST,
    describe_evidence,
    has_replicates,
    point_frame,
    point_table,
    point_tie_groups,
    seed_matched_difference,
    seed_of,
)
from analysis.statistics import verdict
from sweeps.equal_work import PROJECTED
from sweeps.objectives import LEARNED, OBJECTIVES

if TYPE_CHECKING:  # torch-heavy modules load only once a real experiment is found
    from analysis.examples import Examples
    from segmodels.data import Split

FAILED = ("ERROR", "DIVERGED")
OWN_FILES = ("switch_*.png", "tradeoff_*.png", "examples_*.png", "per_class_iou.png",
             "confusion_best.png", "scheduler_epochs.png", "overview_curves.png",
             "parallel_coordinates.png", "front_*.png", "importance.png", "front.csv")
QUESTIONS = {
    "augment": "Visualize training loss and validation loss curves for UNet trained with and "
               "without data augmentation. What are the differences in the behaviour of these "
               "curves between these experiments, and what are the reasons?",
    "aspp": "Visualize training and validation loss curves for ResNet18 trained with and "
            "without ASPP. Which model performs better?",
    "tradeoffs": "Compare UNet with augmentations and DeepLab with all backbones (only "
                 "experiments with ASPP) on best mIoU against training time, inference time "
                 "and model size. Which models are the most efficient with respect to each "
                 "metric on the x-axes?",
    "examples": "Pick the best model according to mIoU and look at its predictions on the "
                "validation set. For each segmentation class, find the good examples (if "
                "available) and the failure cases.",
}
TRIAL_TABLE = ("name", "status", "epochs_done", "epochs_planned", "best_val_miou", "best_epoch",
               "train_minutes", PROJECTED, "inference_ms_cpu", "inference_ms_gpu", "size_mb",
               "params", "lr", "crop_size", "hostname", "trial_id")


@dataclass
class ReportData:
    exp: Experiment
    tolerance: float
    figures: list[Figure]
    baseline: float | None
    notes: list[str] = field(default_factory=list)
    examples: Examples | None = None
    rankings: tuple = ()  # ranked_rows(exp): computed once for rankings.md/.csv and the page
    front: SearchFront | None = None  # several objectives or a budget: the search's front
    importance: Importance | None = None  # an Optuna search: its parameters' importances

    def figures_of(self, prefix: str) -> list[Figure]:
        return [f for f in self.figures if f.key.startswith(prefix)]


def build_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 tolerance: float = DEFAULT_TOLERANCE, examples: bool = True,
                 val: Split | None = None) -> Path:
    """Write ``RUN_DIR/report/`` (or ``out_dir``): PNGs, trials.csv, history.csv, rankings.md,
    rankings.csv, front.csv (a search with several objectives or a budget) and report.html.
    Returns the path of report.html.

    ``val``: the sweep's decoded validation split, when the caller still holds it (the CLI
    does), so the report does not decode the dataset a second time.
    """
    exp = load_experiment(run_dir)  # fails fast, before torch is imported
    from analysis.dataset import load_validation, recorded_files
    from segmodels.metrics import constant_predictor_miou

    out = Path(out_dir) if out_dir is not None else exp.path / "report"
    out.mkdir(parents=True, exist_ok=True)
    for pattern in OWN_FILES:  # a figure skipped this time must not linger from last time
        for stale in out.glob(pattern):
            stale.unlink()
    with_intervals(exp).to_csv(out / "trials.csv", index=False)
    exp.history.to_csv(out / "history.csv", index=False)
    val, notes = ((val, []) if val is not None
                  else load_validation(exp.meta, recorded_files(exp.path)))
    baseline = constant_predictor_miou(val) if val is not None else None
    importance = sweep_importance(exp) if is_search_sweep(exp.meta) else None
    data = ReportData(exp, tolerance, build_plots(exp, out, baseline, importance), baseline,
                      notes, importance=importance)
    data.rankings = ranked_rows(exp)  # once: rankings.md/.csv and the page's section
    ranked, tested, test, title = data.rankings
    (out / "rankings.md").write_text(rankings_markdown(ranked, tolerance, title, tested, test))
    rankings_table(ranked, tolerance, tested).to_csv(out / "rankings.csv", index=False)
    if is_budgeted_search(exp.meta):
        data.front = search_front(exp)
        front_table(exp, data.front).to_csv(out / "front.csv", index=False)
    if not examples:
        data.notes.append("per-class examples not made (--no-examples)")
    elif val is not None:
        data.examples = _examples(exp, val, out, data.notes)
    page = html.page(f"segsweep report: {exp.name}",
                     "\n".join(section(data) for section in SECTIONS))
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _examples(exp: Experiment, val, out: Path, notes: list[str]) -> Examples | None:
    from analysis.examples import build_examples
    from segmodels.training import CheckpointError

    try:
        result = build_examples(exp, val, out)
    except CheckpointError as exc:
        notes.append(f"no examples: {exc}")
        return None
    if result is None:
        notes.append("no examples: no trial has kept a checkpoint yet")
    return result


def _run_section(d: ReportData) -> str:
    exp, meta = d.exp, d.exp.meta
    settings, data, hw = meta.get("settings", {}), meta.get("data", {}), meta.get("hardware", {})
    parts = [f"<h1>segsweep report: {html.esc(exp.name)}</h1>",
             f"<p>Experiment {html.esc(exp.path)}; grid {html.esc(meta.get('grid'))}, search "
             f"{html.esc(settings.get('search'))}; started {html.esc(meta.get('started', '?'))}"
             f"; report written {time.strftime('%Y-%m-%d %H:%M:%S')}.</p>",
             f"<p><b>Scheduler:</b> {html.esc(describe_scheduler(meta, exp.trials))}</p>"]
    if data.get("synthetic"):
        parts.append(f'<p class="banner">SYNTHETIC DATA: every number below comes from the '
                     f"generated look-alike dataset at {html.esc(data.get('root'))}, not from "
                     "FloodNet. Pass --data DIR to tune_app.py to train on real images.</p>")
    parts.append(f"<p><b>Dataset:</b> {html.esc(data.get('description', data.get('root')))}"
                 f" (layout {html.esc(data.get('layout'))}).</p>")
    parts.append(html.bullets(data.get("notes", []), "note"))  # what loading converted
    hosts = sorted(set(exp.trials["hostname"].dropna()))
    parts.append(
        f"<p><b>Hardware:</b> {html.esc(_num(hw.get('cluster_cpus')))} CPUs, "
        f"{html.esc(_num(hw.get('cluster_gpus')))} GPUs "
        f"({html.esc(hw.get('driver_gpu') or 'none')}) "
        f"on {html.esc(hw.get('nodes'))} node(s); driver host {html.esc(hw.get('host'))}, "
        f"{html.esc(hw.get('platform'))}, torch {html.esc(hw.get('torch'))}. Each trial: "
        f"{html.esc(_resources(meta.get('resources_per_trial')))}. Trials ran on: "
        f"{html.esc(', '.join(hosts) or 'none yet')}.</p>")
    counts = exp.trials["status"].value_counts()
    status = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trials yet"
    parts.append(f"<p><b>Trials:</b> {html.esc(status)}.</p>")
    if counts.get("RUNNING", 0) or counts.get("PENDING", 0):
        parts.append('<p class="note">The sweep was still running (or was interrupted) when '
                     "Ray last saved its state: results below are provisional.</p>")
    parts.append(f"<p><b>Baseline:</b> {html.esc(describe_baseline(exp.finished, d.baseline))}"
                 "</p>")
    parts.append(f"<p><b>Evidence behind the answers:</b> {html.esc(describe_evidence(exp))}</p>")
    failed = [f"{t['name']}: {t['status']}: {t['error'] or 'see error.txt'}"
              for _, t in exp.trials[exp.trials["status"].isin(FAILED)].iterrows()]
    problems = failed + [f"skipped {s}" for s in exp.skipped]
    parts.append("<p><b>Failed or skipped:</b> " + ("none" if not problems else "") + "</p>"
                 + html.bullets(problems, "note"))
    parts.append(html.bullets(exp.notes + d.notes, "note"))
    parts += [html.figure(f.path, f.title, f.note) for f in d.figures_of("overview")]
    parts += [html.figure(f.path, f.title, f.note) for f in d.figures_of("scheduler")]
    parts += [html.figure(f.path, f.title, f.note) for f in d.figures_of("parallel")]
    return "\n".join(parts)


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _resources(resources: dict | None) -> str:
    if not resources:
        return "unknown resources"
    return f"{resources.get('cpu', 0):g} CPU, {resources.get('gpu', 0):g} GPU"


def _switch_section(d: ReportData, key: str, number: int, heading: str) -> str:
    parts = [f"<h2>{number}. {html.esc(heading)}</h2>",
             f'<p class="question">{html.esc(QUESTIONS[key])}</p>']
    pairs = find_pairs(d.exp.trained_configs, key)
    figures = {f.trial_ids: f for f in d.figures_of(f"switch_{key}")}
    if not pairs:
        parts.append(f'<p class="skip">No two trials differ only in {key}: nothing to compare '
                     "(the homework grid has this pair).</p>")
    by_subject: dict[str, list] = {}
    for pair in pairs:  # with --seeds: one pair per seed, all of one subject
        by_subject.setdefault(pair.subject, []).append(pair)
    for subject, group in by_subject.items():
        lines = []
        over_seeds = seed_matched_difference(d.exp, group)
        if over_seeds is not None:
            s = group[0].switch
            said = verdict(over_seeds, f"{subject} {s.on}", f"{subject} {s.off}", digits=3)
            lines.append(f"Verdict over {len(group)} seeds: {said} (the seeds are the pairs: "
                         f"each seed trained both sides; {over_seeds.method}).")
        for number, pair in enumerate(group):
            seed = f"Seed {seed_of(d.exp, pair.on)}: " if over_seeds is not None else ""
            answers = compare_pair(d.exp.trials, d.exp.history, pair, d.tolerance,
                                   d.exp.meta.get("settings", {}).get("scheduler"),
                                   pair_difference(d.exp, pair.on, pair.off))
            if number == 0:
                lines += [seed + line for line in answers]
                lines += reasons(d.exp.trials, d.exp.history, pair)
            else:  # the other seeds: their verdicts, not every curve's story again
                lines += [seed + line for line in answers if line.startswith("Verdict")]
        parts.append(f"<h3>{html.esc(subject)}</h3>" + html.bullets(lines, "answer"))
        for pair in group:
            fig = figures.get((pair.off, pair.on))
            if fig is not None:
                parts.append(html.figure(fig.path, fig.title, fig.note))
    return "\n".join(parts)


def _tradeoff_section(d: ReportData) -> str:
    models, how = course_models(d.exp.trials)
    parts = ["<h2>3. UNet vs DeepLab backbones: accuracy against cost</h2>",
             f'<p class="question">{html.esc(QUESTIONS["tradeoffs"])}</p>',
             f"<p>Models compared: {html.esc(how)}. Ties: within {d.tolerance:.0%}.</p>"]
    if models.empty:
        return "\n".join(parts + ['<p class="skip">No model has results yet.</p>'])
    parts.append(html.bullets(describe_tradeoffs(models, d.tolerance)
                              + [describe_baseline(models, d.baseline)]
                              + timing_noise(d.exp.trials, d.exp.configs), "answer"))
    table = models[["name", *AXES]].astype(object)
    notes = projection_notes(models).to_numpy()
    short = notes != ""
    table.loc[short, PROJECTED] = [f"{v:.4g} ({n})" for v, n in
                                   zip(models.loc[short, PROJECTED], notes[short])]
    parts.append(html.table(table.rename(columns={c: a.label + (f" ({a.unit})" if a.unit else "")
                                                  for c, a in AXES.items()})))
    parts += [html.figure(f.path, f.title, f.note) for f in d.figures_of("tradeoff")]
    return "\n".join(parts)


def _examples_section(d: ReportData) -> str:
    parts = ["<h2>4. The best model: good examples and failures per class</h2>",
             f'<p class="question">{html.esc(QUESTIONS["examples"])}</p>']
    parts += [html.figure(f.path, f.title, f.note) for f in d.figures_of("per_class_iou")]
    parts += [html.figure(f.path, f.title, f.note) for f in d.figures_of("confusion")]
    ex = d.examples
    if ex is None:
        parts.append('<p class="skip">No per-class examples (see the notes at the top).</p>')
        return "\n".join(parts)
    parts.append(f"<p>Best model by best val mIoU: <b>{html.esc(ex.name)}</b> (trial "
                 f"{html.esc(ex.trial_id)}), checkpoint {html.esc(ex.checkpoint)}. Crops are "
                 "windows of the validation images chosen automatically: the good one has the "
                 "highest IoU of the class, the failure the lowest recall.</p>"
                 + html.bullets(ex.notes, "note"))
    rows = []
    for c in ex.classes:
        img = html.image(c.path, f"{c.name} examples") if c.path else "none"
        rows.append(f"<tr><td><b>{html.esc(c.name)}</b></td><td>{img}</td>"
                    f"<td>{html.bullets(c.notes)}</td></tr>")
    parts.append('<table class="examples"><thead><tr><th>class</th><th>good example (top) and '
                 "failure (bottom): image | prediction | ground truth</th><th>notes</th></tr>"
                 f"</thead><tbody>{''.join(rows)}</tbody></table>")
    return "\n".join(parts)


def _points_section(d: ReportData) -> str:
    """With --seeds: each point's mean over its seeds, with the interval over seeds (and
    images, where the trials kept their evidence)."""
    if not has_replicates(d.exp):
        return ""
    table = point_table(d.exp)
    table.insert(3, "95% interval", [f"[{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else "unavailable"
                                     for lo, hi in zip(table["miou_low"], table["miou_high"])])
    frame = point_frame(d.exp, table).set_index("name")
    column = PROJECTED if PROJECTED in frame and frame[PROJECTED].notna().any() else "train_minutes"
    if column in frame:
        table["training minutes: mean (range over seeds)"] = [
            f"{frame.loc[p, column]:.2f} ({frame.loc[p, column + '_low']:.2f}-"
            f"{frame.loc[p, column + '_high']:.2f})" if pd.notna(frame.loc[p, column]) else ""
            for p in table["point"]]
    shown = table.drop(columns=["miou_low", "miou_high", "trial_ids"])
    return ("<h2>Points over seeds</h2>\n<p>Each point trained once per seed; its best val "
            "mIoU is the mean over seeds, with a 95% interval (method per row), and its "
            "training time the mean with its range over the seeds.</p>\n"
            + html.table(shown.rename(columns={"best_val_miou": "mean best val mIoU",
                                               "miou_interval": "interval method"})))


def _effects_section(d: ReportData) -> str:
    """Each grid axis's effect on best val mIoU, averaged over the other axes."""
    effects = main_effects(d.exp)
    if effects.empty:
        return ""
    return ("<h2>Main effects</h2>\n<p>What each setting the grid varies does to best val "
            "mIoU, averaged over the other settings (matched pairs of trials equal in all "
            "else), with a 95% interval.</p>\n" + html.bullets(effect_lines(effects), "answer"))


def front_table(exp: Experiment, front: SearchFront) -> pd.DataFrame:
    """The front, best mIoU first: each trial's name, the settings that tell the front's
    trials apart (those the sweep varied, for a front of one), and each objective."""
    configs = [exp.configs[t] for t in front.front["trial_id"]]
    if len(configs) < 2:
        configs = [exp.configs[t] for t in front.trained["trial_id"]]
    settings = varied_settings(configs)
    shown = front.front.copy()
    for key in settings:
        shown[key] = [exp.configs[t].get(key) for t in shown["trial_id"]]
    objectives = [OBJECTIVES[n].column for n in (LEARNED, *front.costs)]
    return shown[["name", *settings, *dict.fromkeys(objectives), "trial_id"]].reset_index(
        drop=True)


def _budget_section(d: ReportData) -> str:
    """A search with several objectives or a budget: what it found within the budget."""
    front = d.front
    if front is None:
        return ""
    aims = ", ".join(f"{n} ({'maximised' if OBJECTIVES[n].mode == 'max' else 'minimised'})"
                     for n in front.objectives)
    limits = ", ".join(f"{n} <= {v:g} {OBJECTIVES[n].unit}".strip()
                       for n, v in front.budgets.items()) or "none"
    fits = front.trained[front.trained["feasible"]]
    parts = ["<h2>Search within a budget</h2>",
             f"<p><b>Objectives:</b> {html.esc(aims)}. <b>Budgets:</b> {html.esc(limits)}. "
             "The front holds the trials no other trial beats on every objective (at least as "
             "good on all, better on one), among the "
             f"{len(fits)} of {len(front.trained)} trained trials within every budget.</p>"]
    lines = [f"On the front: {len(front.front)} trial(s): "
             + (", ".join(map(str, front.front["name"])) or "none yet") + "."]
    if front.hypervolume is not None:
        lines.append(f"Hypervolume: {front.hypervolume:.3f}, the fraction the front dominates "
                     "of the box between the ideal (mIoU 1, zero cost) and the reference point "
                     f"({front.reference_text()}), every objective scaled to that box; it grows "
                     "as the front improves and compares between sweeps with the same "
                     "objectives and budgets.")
    over = front.trained[~front.trained["feasible"]]
    if not over.empty and front.budgets:
        lines.append("Trained, but over a budget by the figures in the trials table (a "
                     "sweep's costs are measured once before training, so this means its "
                     f"figures changed since): {', '.join(map(str, over['name']))}; left off "
                     "the front.")
    if not front.rejected.empty:
        lines.append(f"{len(front.rejected)} architecture(s) over a budget were never trained "
                     f"({int(front.rejected['proposals'].sum())} proposal(s) by the search "
                     "rejected): table below.")
    parts.append(html.bullets(lines, "answer"))
    parts += [html.figure(f.path, f.title, f.note) for f in d.figures_of("front_")]
    if not front.front.empty:
        table = front_table(d.exp, front).drop(columns="trial_id")
        parts += ["<h3>The front</h3>", html.table(table.astype(object).where(
            table.notna(), None).rename(columns=_objective_headers()))]
    if not front.rejected.empty:
        costs = [n for n in OBJECTIVES if n != LEARNED and n in front.rejected
                 and front.rejected[n].notna().any()]
        table = front.rejected[["label", *costs, "why", "proposals"]].rename(
            columns={"proposals": "trials proposed"}).astype(object)
        if "params" in table:  # 20,000,000, not 2e+07
            table["params"] = [f"{int(v):,}" if pd.notna(v) else None for v in table["params"]]
        parts += ["<h3>Rejected before training</h3>",
                  "<p>Costs measured once per architecture before training (costs.json).</p>",
                  html.table(table.astype(object).where(table.notna(), None))]
    return "\n".join(parts)


def _objective_headers() -> dict[str, str]:
    return {o.column: f"{name} ({o.unit})" if o.unit else name
            for name, o in OBJECTIVES.items()} | {OBJECTIVES[LEARNED].column: "best val mIoU"}


def _importance_section(d: ReportData) -> str:
    """An Optuna search: which searched parameters mattered for each objective."""
    importance = d.importance
    if importance is None:
        return ""
    from analysis.importance import MIN_TRIALS, PERMUTATIONS, TOP_TRIALS

    parts = ["<h2>Importance</h2>",
             "<p>How much each searched parameter set the best trials of each objective apart "
             "from the rest (PED-ANOVA, as optuna-dashboard shows it, from the sweep's Optuna "
             f"study; the best = the top 10% of completed trials, at least {TOP_TRIALS}; "
             f"needs {MIN_TRIALS} completed trials). Importances sum to 1 per objective. "
             "p: how often the parameter scored at least as high when the objective's values "
             f"were shuffled among the same trials ({PERMUTATIONS} shuffles); above 0.05 its "
             "importance is within what chance gives.</p>"]
    parts.append(html.bullets(importance.notes, "note"))
    frame = importance.frame
    if frame.empty:
        return "\n".join(parts)
    parts.append("<p>Parameters assessed:</p>" + html.bullets(assessed_lines(importance)))
    parts += [html.figure(f.path, f.title, f.note) for f in d.figures_of("importance")]
    for objective, rows in frame.groupby("objective", sort=False):
        table = rows.assign(set_in=[f"{k} of {n}" for k, n in zip(rows["set_in"],
                                                                  rows["trials"])])
        table = table[["parameter", "importance", "p", "set_in"]].rename(
            columns={"set_in": "set in trials"})
        parts += [f"<h3>{html.esc(objective)}</h3>", html.table(table, "{:.3f}")]
    return "\n".join(parts)


def ranked_rows(exp) -> tuple[pd.DataFrame, dict[str, list[list[str]]] | None, str, str]:
    """What the rankings rank, its tie groups by test, the test's words, and the title: the
    points (mean over seeds, seed-matched tests) when some point has several seeds, else every
    trial (paired image bootstrap)."""
    if has_replicates(exp):
        points = point_table(exp)
        return (point_frame(exp, points), point_tie_groups(exp, points), POINT_TEST,
                "Rankings of the points (mean over their seeds)")
    return exp.finished, tie_groups(exp, exp.finished), TRIAL_TEST, "Rankings of every trial"


def _rankings_section(d: ReportData) -> str:
    ranked, tested, test, title = d.rankings
    return "<h2>Rankings</h2>\n" + html.markdown(
        rankings_markdown(ranked, d.tolerance, title, tested, test))


def _deploy_section(d: ReportData) -> str:
    """How the winner leaves the sweep, and what each export so far measured."""
    run = d.exp.path
    best = (f" (the best by the rankings above is {html.esc(d.examples.name)})"
            if d.examples is not None else "")
    text = ("<h2>Deploy</h2>\n<p>Export the best model as ONNX, checked against PyTorch on the "
            f"validation images, with its model card{best}:</p>\n"
            f"<pre>python tune_app.py export {html.esc(run)}</pre>\n"
            "<p>(<code>segsweep export</code> where installed; <code>--trial NAME</code> for "
            "another trial; run it with <code>python -m segsweep_predict FOLDER IMAGES... "
            "--out DIR</code>, which needs numpy, Pillow and onnxruntime only.)</p>")
    exports = read_exports(run)
    if exports.empty:
        return text
    shown = exports.assign(
        check=[("passed" if ok else "FAILED") + f" ({a:.2%} of pixels agree)"
               for ok, a in zip(exports["passed"], exports["agreement"])],
        speed_up=(exports["pytorch_ms"] / exports["exported_ms"]).round(2))
    shown = shown[["trial", "format", "check", "runtime", "exported_ms", "pytorch_ms",
                   "speed_up", "frame", "threads", "folder"]].rename(columns={
                       "exported_ms": "exported ms/frame", "pytorch_ms": "PyTorch ms/frame",
                       "speed_up": "PyTorch / exported"})
    return text + "\n<h3>Exported so far</h3>\n" + html.table(shown)


def _trials_section(d: ReportData) -> str:
    table = with_intervals(d.exp)
    table.insert(table.columns.get_loc("best_val_miou") + 1, "95% interval (images)",
                 [f"[{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else "unavailable"
                  for lo, hi in zip(table["miou_low"], table["miou_high"])])
    table.insert(table.columns.get_loc("inference_ms_cpu") + 1, "CPU ms: fastest-slowest run",
                 [f"{lo:.1f}-{hi:.1f}" if pd.notna(lo) else None
                  for lo, hi in zip(table["inference_ms_cpu_low"], table["inference_ms_cpu_high"])])
    columns = list(TRIAL_TABLE)
    columns.insert(columns.index("best_val_miou") + 1, "95% interval (images)")
    columns.insert(columns.index("inference_ms_cpu") + 1, "CPU ms: fastest-slowest run")
    exports = read_exports(d.exp.path)
    exports = exports[exports["passed"] & (exports["runtime"] == "onnxruntime")]
    if not exports.empty:  # the deployed latency of the trials exported (Deploy, below)
        ort = exports.groupby("trial_id")["exported_ms"].min()
        table["ort ms (exported)"] = table["trial_id"].map(ort)
        columns.insert(columns.index("CPU ms: fastest-slowest run") + 1, "ort ms (exported)")
    trials = table[columns].astype(object).where(table[columns].notna(), None)
    frame = pd.DataFrame(trials)
    return "<h2>All trials</h2>\n" + html.table(frame)


SECTIONS = (
    _run_section,
    lambda d: _switch_section(d, "augment", 1, "Augmentation: loss curves without vs with"),
    lambda d: _switch_section(d, "aspp", 2, "ASPP: without vs with, which is better"),
    _tradeoff_section,
    _examples_section,
    _points_section,
    _effects_section,
    _budget_section,
    _importance_section,
    _rankings_section,
    _trials_section,
    _deploy_section,
)
