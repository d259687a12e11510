"""Sweep makespan: N equal trials on K concurrent slots, against the ideal packing.

Sweep A runs N trials that differ only in their seed, ``--cpus-per-trial 1`` on a local Ray of
K CPUs (K slots), through tune_app.py's code path (``sweeps.prepare`` + ``runner.run``, in this
process so that ``Tuner.fit`` can be timed). The makespan is the wall time of ``Tuner.fit``;
the ideal is the sum of the trials' own durations (Tune's ``time_total_s``) divided by K. The
difference is what the service adds between trials (starting a trial process, importing
torch, Tune's bookkeeping).

Sweep B runs one of the same trials with ``--cpus-per-trial K`` alone. While both sweeps run,
the trial processes are sampled every 0.5 s: a thread that ran for at least a quarter of a
sampling interval counts as busy in it; the median of the busy counts over the intervals
in which the trial computed is its number of compute threads. Child processes are DataLoader
workers. A trial that follows its CPUs has as many compute threads as CPUs; and K one-CPU
trials side by side then train at least as many images per second together as one K-CPU trial
(oversubscribed threads would make them slower).

``--without-reuse`` adds sweep A again with Tune's ``reuse_actors=False``: a new trial process
per trial, as before the product reused them (it does when trials outnumber slots).

    python bench/makespan.py                    # 4 trials on 2 slots
    python bench/makespan.py --trials 6 --epochs 10
"""

from __future__ import annotations

import contextlib
import os
import time

import _common as C

# Smallest sizes whose trials outlast a few sampling intervals (else thread counts are NaN).
# At smoke size the two sweeps share one Ray (C.one_ray_session), without its dashboard.
SMOKE = {"trials": 2, "epochs": 4, "n_train": 16, "n_test": 1, "height": 96, "width": 128,
         "crop_size": 64, "batch_size": 4, "channels": "4,16"}


def build_parser():
    p = C.parser(__doc__)
    p.add_argument("--trials", type=int, default=4, help="N equal trials (seeds 0..N-1)")
    p.add_argument("--slots", type=int, default=2, help="K: CPUs of the local Ray, 1 per trial")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--n-train", type=int, default=24)
    p.add_argument("--n-test", type=int, default=2)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--crop-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--channels", default="16,256", help="UNet min,max channels")
    p.add_argument("--without-reuse", action="store_true",
                   help="also run sweep A with Tune's reuse_actors=False (the old behaviour)")
    return p


class ThreadProbe:
    """Per trial process and sample: CPU seconds of each of its threads, and its children."""

    def __init__(self):
        self.samples: dict[int, list[tuple[float, dict[int, float]]]] = {}
        self.children: dict[int, int] = {}

    def __call__(self) -> None:
        for proc in C.descendants():
            if not C.is_trial_process(proc):
                continue
            try:
                threads = {t.id: t.user_time + t.system_time for t in proc.threads()}
                kids = len(proc.children())
            except Exception:  # noqa: BLE001 - the trial ended between the two calls
                continue
            self.samples.setdefault(proc.pid, []).append((time.time(), threads))
            self.children[proc.pid] = max(self.children.get(proc.pid, 0), kids)

    def busy_threads(self) -> dict[int, float]:
        """Per trial process: the median, over sampling intervals in which it computed, of
        the number of its threads that were each busy >= 25% of the interval."""
        out = {}
        for pid, samples in self.samples.items():
            counts = []
            for (t0, a), (t1, b) in zip(samples, samples[1:]):
                busy = sum(1 for tid, cpu in b.items() if cpu - a.get(tid, 0.0) >= 0.25 * (t1 - t0))
                if busy:
                    counts.append(busy)
            out[pid] = C.median(counts)
        return out


def sweep(args, data_root, work, name: str, seeds: list[int], cpus: int, num_cpus: int,
          force_no_reuse: bool = False):
    lo, hi = (int(v) for v in args.channels.split(","))
    grid = C.write_grid(work, name, {"model": ["unet"], "augment": [False], "seed": seeds},
                        {"model_kwargs": {"min_channels": lo, "max_channels": hi},
                         "inference_height": 64, "inference_width": 64,
                         "inference_repeats": 1})
    probe = ThreadProbe()

    @contextlib.contextmanager
    def sampled(prepared):
        with C.Sampler(probe, interval=0.5), (_no_reuse_actors() if force_no_reuse
                                              else contextlib.nullcontext()):
            yield

    run = C.run_sweep(["--grid", grid, "--data", str(data_root), "--epochs", str(args.epochs),
                       "--crop-size", str(args.crop_size), "--batch-size", str(args.batch_size),
                       "--scheduler", "fifo", "--no-report", "--cpus-per-trial", str(cpus),
                       "--num-cpus", str(num_cpus), "--storage", str(work / "runs"),
                       *(["--no-dashboard"] if args.smoke else [])], between=sampled)
    return run, probe


@contextlib.contextmanager
def _no_reuse_actors():
    """--without-reuse: a new process per trial, whatever runner.build_tuner decided."""
    from ray import tune

    original = tune.TuneConfig

    def patched(*a, **kw):
        kw["reuse_actors"] = False
        return original(*a, **kw)

    tune.TuneConfig = patched
    try:
        yield
    finally:
        tune.TuneConfig = original


def images_per_second(rows: list[dict], crops: int) -> float:
    steady = rows[1:] or rows
    return crops / C.mean([r["epoch_seconds"] for r in steady])


def trial_spans(run) -> list[tuple[float, float]]:
    """(start, end) wall times of each trial: its epochs end when it logs the epoch's
    validation pictures; it started ``time_total_s`` before its first epoch ended."""
    spans = []
    for name, rows in run.trials().items():
        tb = C.tensorboard_epoch_times(run.exp / name)
        if rows and 1 in tb:
            spans.append((tb[1] - rows[0]["time_total_s"], max(tb.values())))
    return spans


def makespan_rows(run, slots: int, label: str) -> tuple[list[C.Row], float]:
    trials = run.trials()
    own = [rows[-1]["time_total_s"] for rows in trials.values()]
    ideal = sum(own) / slots
    rows = [
        C.check(f"makespan: {len(own)} trials on {slots} slots, makespan/ideal{label}",
                run.fit_seconds / ideal, "<=", 1.10),
        C.info(f"makespan: makespan, Tuner.fit wall [s]{label}", run.fit_seconds, "{:.1f}"),
        C.info(f"makespan: ideal, sum of trial durations / {slots} [s]{label}", ideal, "{:.1f}"),
    ]
    spans = trial_spans(run)
    if len(spans) == len(own) > slots:
        # Idle slot time = head (fit start -> a slot's first trial) + gaps between trials on a
        # slot + tail (a slot's last trial -> fit end).
        head = sum(sorted(s for s, _ in spans)[:slots]) / slots - run.fit_start
        tail = run.fit_end - sum(sorted(e for _, e in spans)[-slots:]) / slots
        idle = slots * run.fit_seconds - sum(own)
        gap = (idle - slots * (head + tail)) / (len(own) - slots)
        rows.append(C.info(f"makespan: idle per slot: start / gap between trials / end [s]"
                           f"{label}", f"{head:.1f} / {gap:.1f} / {tail:.1f}"))
    return rows, ideal


def main(argv=None) -> int:
    args = C.parse(build_parser(), SMOKE, argv)
    os.environ.pop("RAY_ADDRESS", None)
    root = C.synthetic_data(args.n_train, args.n_test, args.height, args.width)
    crops = args.n_train
    k = args.slots
    with C.workdir(args, "makespan") as work, (
            C.one_ray_session() if args.smoke else contextlib.nullcontext()):
        print(f"sweep A: {args.trials} trials x 1 CPU on {k} CPUs ...", flush=True)
        run_a, probe_a = sweep(args, root, work, "makespan_a", list(range(args.trials)), 1, k)
        print(f"sweep B: 1 trial x {k} CPUs on {k} CPUs ...", flush=True)
        run_b, probe_b = sweep(args, root, work, "makespan_b", [0], k, k)
        run_fix = None
        if args.without_reuse:
            print("sweep A again with reuse_actors=False (--without-reuse) ...", flush=True)
            run_fix, _ = sweep(args, root, work, "makespan_fix", list(range(args.trials)), 1, k,
                               force_no_reuse=True)

        rows, _ = makespan_rows(run_a, k, "")
        busy_a, busy_b = probe_a.busy_threads(), probe_b.busy_threads()
        per_trial_a = [images_per_second(r, crops) for r in run_a.trials().values()]
        (rows_b,) = run_b.trials().values()
        rows += [
            C.check("makespan: compute threads per 1-CPU trial (max)",
                    max(busy_a.values(), default=float("nan")), "<=", 1, "{:.1f}"),
            C.check(f"makespan: compute threads per {k}-CPU trial (min)",
                    min(busy_b.values(), default=float("nan")), ">=", k, "{:.1f}"),
            C.info("makespan: DataLoader worker processes per 1-CPU trial (max)",
                   max(probe_a.children.values(), default=0), "{:.0f}"),
            C.info(f"makespan: DataLoader worker processes per {k}-CPU trial (max)",
                   max(probe_b.children.values(), default=0), "{:.0f}"),
            C.check(f"makespan: images/s of {k} 1-CPU trials / one {k}-CPU trial",
                    k * C.mean(per_trial_a) / images_per_second(rows_b, crops), ">=", 0.95),
        ]
        if run_fix is not None:
            rows += makespan_rows(run_fix, k, " (without reuse_actors)")[0]
    C.emit(rows, args, f"makespan: {args.trials} equal trials on {k} slots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
