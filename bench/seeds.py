"""Seeds: how far one homework model's best mIoU moves between seeds, how wide a point's 95%
interval is at 1, 3 and 5 seeds, and whether the ranking and the course's two verdicts change
between seeds: the measurement behind the README's advice on ``--seeds``.

It trains the homework grid with ``--seeds N`` at the demo's size (``make demo``'s flags) and
reads the stored sweep back through ``analysis``; ``--from RUN_DIR`` reads a sweep already
trained with several seeds instead. Every row is a measurement (info): the spread per point
over seeds; the interval width at k seeds (seeds 0..k-1, seeds and shared validation images
together, ``analysis.statistics.combine_seed_and_image``; one seed: the image bootstrap alone);
the ranking at each single seed against the ranking by the mean over all seeds; and the two
switch verdicts at each single seed against the verdict over the first 3 and all seeds.

    python bench/seeds.py                      # the demo's sweep with 5 seeds (~50 min, 2 CPUs)
    python bench/seeds.py --from runs/seeds5   # a stored sweep trained with --seeds
"""

from __future__ import annotations

from pathlib import Path

import _common as C
import numpy as np

SMOKE = {"seeds": 2, "epochs": 1}
# The course's two switch questions: (point with, point without).
SWITCHES = {"Task 1 augmentation (unet)": ("unet/aug", "unet/no-aug"),
            "Task 2 ASPP (deeplab/resnet18)": ("deeplab/resnet18/aspp/aug",
                                               "deeplab/resnet18/no-aspp/aug")}


def build_parser():
    p = C.parser(__doc__)
    p.add_argument("--from", dest="run_dir", default=None,
                   help="a stored sweep trained with --seeds (then nothing is trained)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=10)
    return p


def train(args, work: Path) -> Path:
    """The demo's sweep (Makefile DEMO_FLAGS) with ``--seeds``; --smoke: tiny sizes."""
    if args.smoke:
        data = C.synthetic_data(4, 2, 64, 64)
        size = ["--data", str(data), "--crop-size", "32", "--batch-size", "2",
                "--inference-size", "64x48"]
    else:
        size = ["--crop-size", "128", "--batch-size", "4",
                "--point-set", "deeplab/mobilenet_v3_small/*:crops_per_image=4"]
    C.run_cli(["--grid", "homework", "--seeds", str(args.seeds), "--epochs", str(args.epochs),
               *size, "--inference-repeats", "1", "--name", "seeds", "--no-report",
               "--storage", str(work), "--overwrite"], log=work / "seeds.log")
    return work / "seeds"


def scores_by_seed(exp):
    """point -> {seed: best val mIoU} of the finished trials, and point -> {seed: trial id}."""
    from analysis.replicates import point_name, replicate_groups, seed_of

    scores = exp.trials.set_index("trial_id")["best_val_miou"].astype(float)
    names = exp.trials.set_index("trial_id")["name"].astype(str)
    by_point, ids = {}, {}
    for trial_ids in replicate_groups(exp).values():
        point = point_name(names[trial_ids[0]])
        ids[point] = {seed_of(exp, t): t for t in trial_ids if np.isfinite(scores[t])}
        by_point[point] = {s: float(scores[t]) for s, t in ids[point].items()}
    return by_point, ids


def width_at(exp, trial_ids: list[str]) -> float:
    """Width of the 95% interval of a point's mean over these trials (seeds and images)."""
    from analysis.intervals import definition_of
    from analysis.statistics import combine_seed_and_image

    evidence = np.stack([exp.image_confusions(t) for t in trial_ids])
    interval = combine_seed_and_image(evidence, definition_of(exp, trial_ids[0]))
    return interval.high - interval.low


def ranking(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda p: -scores[p])


def verdict_word(exp, ids: dict[str, dict], on: str, off: str, seeds: list) -> str:
    """"on" / "off" (which is better) or "cannot tell", over ``seeds`` matched seeds."""
    from analysis.replicates import point_difference

    tested = point_difference(exp, [ids[on][s] for s in seeds], [ids[off][s] for s in seeds])
    if tested is None:
        return "untested"
    interval = tested[0]
    return "with" if interval.low > 0 else "without" if interval.high < 0 else "cannot tell"


def rows_for(exp) -> list[C.Row]:
    by_point, ids = scores_by_seed(exp)
    seeds = sorted(set.intersection(*(set(s) for s in by_point.values())), key=str)
    if len(seeds) < 2:
        raise SystemExit(f"{exp.path}: every point needs 2 or more seeds, found {len(seeds)}")
    rows = [C.info("seeds: points x seeds behind these rows", f"{len(by_point)} x {len(seeds)}")]
    spreads = {}
    for point, scores in sorted(by_point.items()):
        values = np.array([scores[s] for s in seeds])
        spreads[point] = values.max() - values.min()
        rows.append(C.info(f"seeds: best val mIoU, mean / sd / min-max, {point}",
                           f"{values.mean():.3f} / {values.std(ddof=1):.3f} / "
                           f"{values.min():.3f}-{values.max():.3f}"))
    rows.append(C.info("seeds: largest range of one point over seeds (max - min)",
                       max(spreads.values())))
    for k in sorted({1, 3, 5, len(seeds)}):
        if k > len(seeds):
            continue
        widths = [width_at(exp, [ids[p][s] for s in seeds[:k]]) for p in by_point]
        rows.append(C.info(f"seeds: 95% interval width of a point's mean at {k} seed(s), "
                           "median / max over points",
                           f"{np.median(widths):.3f} / {max(widths):.3f}"))
    mean_order = ranking({p: np.mean([s[x] for x in seeds]) for p, s in by_point.items()})
    orders = [ranking({p: s[seed] for p, s in by_point.items()}) for seed in seeds]
    rows.append(C.info("seeds: ranking by the mean over all seeds", " > ".join(mean_order)))
    rows.append(C.info("seeds: distinct single-seed rankings / seeds",
                       f"{len({tuple(o) for o in orders})} / {len(seeds)}"))
    rows.append(C.info("seeds: single seeds whose best point is not the mean's best",
                       f"{sum(o[0] != mean_order[0] for o in orders)} / {len(seeds)}"))
    for point in mean_order:
        places = [o.index(point) + 1 for o in orders]
        rows.append(C.info(f"seeds: rank at each seed (by the mean: "
                           f"{mean_order.index(point) + 1}), {point}",
                           " ".join(map(str, places))))
    for task, (on, off) in SWITCHES.items():
        if on not in ids or off not in ids:
            continue
        single = [verdict_word(exp, ids, on, off, [s]) for s in seeds]
        rows.append(C.info(f"seeds: {task}, better at each single seed", ", ".join(single)))
        for k in sorted({3, len(seeds)}):
            if k <= len(seeds):
                rows.append(C.info(f"seeds: {task}, better over {k} seeds",
                                   verdict_word(exp, ids, on, off, seeds[:k])))
    return rows


def main(argv=None) -> int:
    args = C.parse(build_parser(), SMOKE, argv)
    from analysis.loading import load_experiment

    if args.run_dir:
        exp = load_experiment(Path(args.run_dir).expanduser())
        C.emit(rows_for(exp), args, f"seeds: {exp.path}")
        return 0
    with C.workdir(args, "seeds") as work:
        exp = load_experiment(train(args, work))
        C.emit(rows_for(exp), args, f"seeds: homework grid, {args.seeds} seeds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
