"""ASHA: how many epochs early stopping saves on the full grid, and what it costs in mIoU.

The ``full`` grid (14 points: model x backbone x ASPP x augmentation) is swept twice on the
same small synthetic dataset with the same seeds, through tune_app.py's code path: once with
``--scheduler fifo`` (every trial trains every epoch) and once with ``--scheduler asha`` (the
product's defaults: grace period epochs/4, reduction factor 3, unless given). Compared: the
epochs trained in total, and the best validation mIoU each sweep found.

The grid is written as a YAML file with the full grid's axes (checked to give the same 14
points) plus small ``inference_height/width`` so each trial's 1000x750 inference timing does
not dominate these short trials.

The FIFO sweep also records every trial's full learning curve and epoch times, so ASHA can be
replayed on it (Ray's own ASHA bracket, trials started in grid order on the same number of
slots, a trial's epochs finishing when they finished under FIFO): the replay with the
product's settings is checked against the real ASHA sweep, and the replays with smaller grace
periods show what another default would save (info rows).

    python bench/asha.py                        # 8 epochs of 64-px crops on 120x160 images
    python bench/asha.py --epochs 16 --grace-period 2
"""

from __future__ import annotations

import contextlib

import _common as C

SMOKE = {"epochs": 2, "n_train": 2, "n_test": 1, "height": 64, "width": 64, "crop_size": 32,
         "batch_size": 2}  # and the two sweeps share one Ray (C.one_ray_session), no dashboard


def build_parser():
    p = C.parser(__doc__)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--n-train", type=int, default=16)
    p.add_argument("--n-test", type=int, default=4)
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--crop-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--grace-period", type=int, default=None, help="default: the product's")
    p.add_argument("--reduction-factor", type=float, default=None, help="default: the product's")
    p.add_argument("--cpus-per-trial", type=int, default=1)
    p.add_argument("--num-cpus", type=int, default=2)
    return p


def grid_file(work, smoke: bool) -> tuple[str, int]:
    """The full grid's axes as YAML (checked against the named grid); --smoke: two tiny UNets."""
    from segmodels.models import COURSE_MODELS, list_backbones
    from sweeps.grids import load_grid

    fixed = {"inference_height": 64, "inference_width": 64, "inference_repeats": 1}
    if smoke:
        axes = {"model": ["unet"], "augment": [False], "seed": [0, 1]}
        fixed["model_kwargs"] = {"min_channels": 4, "max_channels": 16}
        path = C.write_grid(work, "full_bench", axes, fixed)
        return path, len(load_grid(path).points)
    axes = {"model": list(COURSE_MODELS), "backbone": list_backbones(), "aspp": [False, True],
            "augment": [False, True]}
    path = C.write_grid(work, "full_bench", axes, fixed)
    labels = load_grid(path).labels
    if labels != load_grid("full").labels:
        raise RuntimeError(f"the benchmark's grid no longer matches the full grid: {labels}")
    return path, len(labels)


def replay_asha(curves: list[list[dict]], epochs: int, grace: int, rf: float,
                slots: int) -> tuple[int, float]:
    """ASHA replayed on FIFO's curves: (epochs trained, best val mIoU).

    Trials start in grid order whenever one of ``slots`` is free; a trial's epoch ``i`` ends
    ``time_total_s`` of its FIFO row ``i`` after its start; Ray's ASHA bracket decides at each
    epoch, exactly as the scheduler does.
    """
    import heapq
    from types import SimpleNamespace

    from sweeps.ray_state import asha_bracket

    bracket = asha_bracket(grace, epochs, rf)
    events: list[tuple[float, int, int]] = []  # (time, trial, epoch index)
    waiting = list(range(len(curves)))
    trained, best = 0, float("-inf")

    def start(now: float) -> None:
        i = waiting.pop(0)
        heapq.heappush(events, (now + curves[i][0]["time_total_s"], i, 0))

    for _ in range(min(slots, len(waiting))):
        start(0.0)
    while events:
        now, i, e = heapq.heappop(events)
        row = curves[i][e]
        trained += 1
        best = max(best, row["val_miou"])
        stop = e + 1 >= len(curves[i]) or bracket.on_result(
            SimpleNamespace(trial_id=i), row["epoch"], row["val_miou"]) == "STOP"
        if stop:
            if waiting:
                start(now)
        else:
            t0 = now - row["time_total_s"]
            heapq.heappush(events, (t0 + curves[i][e + 1]["time_total_s"], i, e + 1))
    return trained, best


def main(argv=None) -> int:
    args = C.parse(build_parser(), SMOKE, argv)
    from sweeps.ray_state import asha_rungs
    from sweeps.search import make_scheduler

    root = C.synthetic_data(args.n_train, args.n_test, args.height, args.width)
    with C.workdir(args, "asha") as work:
        grid, n_points = grid_file(work, args.smoke)
        common = ["--grid", grid, "--data", str(root), "--epochs", str(args.epochs),
                  "--crop-size", str(args.crop_size), "--batch-size", str(args.batch_size),
                  "--cpus-per-trial", str(args.cpus_per_trial), "--num-cpus",
                  str(args.num_cpus), "--storage", str(work / "runs"), "--no-report",
                  *(["--no-dashboard"] if args.smoke else [])]
        asha_flags = []
        if args.grace_period is not None:
            asha_flags += ["--grace-period", str(args.grace_period)]
        if args.reduction_factor is not None:
            asha_flags += ["--reduction-factor", str(args.reduction_factor)]
        with C.one_ray_session() if args.smoke else contextlib.nullcontext():
            print(f"FIFO: {n_points} trials x {args.epochs} epochs ...", flush=True)
            fifo = C.run_sweep([*common, "--scheduler", "fifo", "--name", "fifo"])
            print(f"ASHA: {n_points} trials, up to {args.epochs} epochs ...", flush=True)
            asha = C.run_sweep([*common, "--scheduler", "asha", "--name", "asha", *asha_flags])
        fifo_trials, asha_trials = fifo.trials(), asha.trials()

    def best(trials):
        return max(max(r["val_miou"] for r in rows) for rows in trials.values() if rows)

    epochs_fifo = sum(len(rows) for rows in fifo_trials.values())
    epochs_asha = sum(len(rows) for rows in asha_trials.values())
    scheduler = make_scheduler("asha", args.epochs, args.grace_period,
                               args.reduction_factor or 3)
    rungs = asha_rungs(scheduler)
    best_fifo, best_asha = best(fifo_trials), best(asha_trials)
    stopped_at = sorted(len(rows) for rows in asha_trials.values())
    rows = [
        C.check("asha: epochs trained, ASHA / FIFO", epochs_asha / epochs_fifo, "<=", 0.35),
        C.check("asha: best val mIoU, FIFO minus ASHA", best_fifo - best_asha, "<=", 0.02),
        C.info("asha: epochs trained by ASHA / by FIFO", f"{epochs_asha} / {epochs_fifo}"),
        C.info("asha: best val mIoU ASHA / FIFO", f"{best_asha:.3f} / {best_fifo:.3f}"),
        C.info("asha: epochs each ASHA trial ran", " ".join(map(str, stopped_at))),
        C.info("asha: rungs (epochs) of the ASHA scheduler", " ".join(f"{r:g}" for r in rungs)),
        C.info("asha: sweep wall time, ASHA / FIFO", asha.fit_seconds / fifo.fit_seconds),
    ]
    curves = [rows for rows in fifo_trials.values() if rows]
    slots = max(1, args.num_cpus // args.cpus_per_trial)
    product_grace = rungs[0]
    rf = args.reduction_factor or 3
    settings = [(int(product_grace), rf), (max(1, args.epochs // 2), rf),
                (max(1, args.epochs // 8), rf), (1, rf), (1, 4.0)]
    for grace, factor in dict.fromkeys(settings):
        trained, replay_best = replay_asha(curves, args.epochs, grace, factor, slots)
        rows.append(C.info(f"asha: replayed on FIFO curves, grace {grace}, rf {factor:g}: "
                           "epochs ratio / mIoU loss",
                           f"{trained / epochs_fifo:.3f} / {best_fifo - replay_best:.3f}"))
    C.emit(rows, args, f"asha: {n_points}-point grid, ASHA vs FIFO, {args.epochs} epochs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
