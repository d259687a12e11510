"""Shared memory: what a second concurrent trial adds to the node's memory, against the data.

A dataset large enough to matter (default 200 synthetic 1000x750 training images) is swept on
one local Ray node with 1 and then 2 concurrent trials (``--cpus-per-trial 1``), through
tune_app.py's code path in this process. While each sweep runs, every process of its Ray
session (this driver, Ray's own processes, the trials and their DataLoader workers) is sampled
from ``/proc/PID/smaps_rollup``:

    node memory = sum of Anonymous (private heap: copies would land here)
                + sum of Pss_Shmem (shared memory, i.e. Ray's object store, counted once
                  in total however many processes map it)

Shared libraries (file pages, shared with every torch process on the machine) are left out.
The extra memory of the second trial is peak(2 trials) - peak(1 trial), reported as a fraction
of the decoded dataset's size. A trial also has memory of its own that does not depend on the
data (torch, the model, activations); the same two sweeps on a tiny dataset of the same image
size and the same crops per epoch measure it, and the "data-attributable" figure subtracts it.

    python bench/memory.py                       # 200 images of 1000x750 (~600 MB decoded)
    python bench/memory.py --n-train 400
"""

from __future__ import annotations

import contextlib
import os

import _common as C

SMOKE = {"n_train": 4, "n_tiny": 2, "height": 96, "width": 128, "crop_size": 32,
         "batch_size": 4, "epochs": 15, "distinct": 4, "channels": "4,16"}  # epochs: trials
# that run a few seconds (~0.15 s an epoch on an idle machine, after a second or two of
# set-up), so the memory sampler sees them (else a sweep runs again, longer). The four sweeps
# share one Ray at smoke size (C.one_ray_session): a full run starts one per sweep.
MB = 2**20


def build_parser():
    p = C.parser(__doc__)
    p.add_argument("--n-train", type=int, default=200)
    p.add_argument("--n-test", type=int, default=2)
    p.add_argument("--n-tiny", type=int, default=4, help="training images of the control")
    p.add_argument("--height", type=int, default=750)
    p.add_argument("--width", type=int, default=1000)
    p.add_argument("--distinct", type=int, default=20,
                   help="scenes rendered; the other files are copies (each decoded on its own)")
    p.add_argument("--crop-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--channels", default="8,64", help="UNet min,max channels")
    return p


class MemoryProbe:
    """Sums over this process and its descendants; keeps every sample."""

    def __init__(self):
        self.samples: list[dict[str, float]] = []
        self.driver_before = 0  # this process's private memory before the sweep

    def __call__(self) -> None:
        me = os.getpid()
        total_anon = total_shmem = trial_anon = 0
        trials = 0
        for pid, proc in [(me, None), *((p.pid, p) for p in C.descendants(me))]:
            rollup = C.smaps_rollup(pid)
            anon, shmem = rollup.get("Anonymous", 0), rollup.get("Pss_Shmem", 0)
            total_anon += anon
            total_shmem += shmem
            if proc is not None and C.is_trial_process(proc):
                trials += 1
                trial_anon += anon + sum(C.smaps_rollup(c.pid).get("Anonymous", 0)
                                         for c in _children(proc))
        driver = C.smaps_rollup(me).get("Anonymous", 0)
        self.samples.append({"node": total_anon + total_shmem, "shmem": total_shmem,
                             "trial_anon": trial_anon, "trials": trials, "driver": driver})

    def peak(self, key: str, min_trials: int = 0) -> float:
        values = [s[key] for s in self.samples if s["trials"] >= min_trials]
        return max(values, default=float("nan"))


def _children(proc) -> list:
    try:
        return proc.children(recursive=True)
    except Exception:  # noqa: BLE001 - gone
        return []


def sweep(args, root, work, name: str, trials: int, crops_per_image: int) -> MemoryProbe:
    """One sweep of ``trials`` concurrent trials, sampled. Its figures need a sample with all
    of them running at once: trials that start staggered on a busy machine may not overlap in
    a short sweep, so it is run again, with more epochs, until they do (three tries)."""
    epochs = args.epochs
    for attempt in range(3):
        probe = _sampled_sweep(args, root, work, f"{name}_{attempt}", trials, crops_per_image,
                               epochs)
        if sum(s["trials"] >= trials for s in probe.samples) >= 4:  # 2 s of them at once
            return probe
        epochs *= 4
        print(f"  under 4 samples saw {trials} trial(s) running; again with {epochs} epochs",
              flush=True)
    return probe  # its peaks are NaN, and its rows print nan and FAIL: not measured


def _sampled_sweep(args, root, work, name: str, trials: int, crops_per_image: int,
                   epochs: int) -> MemoryProbe:
    lo, hi = (int(v) for v in args.channels.split(","))
    grid = C.write_grid(work, name, {"model": ["unet"], "augment": [False],
                                     "seed": list(range(trials))},
                        {"model_kwargs": {"min_channels": lo, "max_channels": hi},
                         "crops_per_image": crops_per_image, "inference_height": 64,
                         "inference_width": 64, "inference_repeats": 1, "log_images": 0})
    probe = MemoryProbe()
    probe.driver_before = C.smaps_rollup(os.getpid()).get("Anonymous", 0)

    @contextlib.contextmanager
    def sampled(prepared):
        with C.Sampler(probe, interval=0.5):
            yield

    C.run_sweep(["--grid", grid, "--data", str(root), "--epochs", str(epochs),
                 "--crop-size", str(args.crop_size), "--batch-size", str(args.batch_size),
                 "--scheduler", "fifo", "--no-report", "--cpus-per-trial", "1", "--num-cpus",
                 str(max(2, trials)), "--storage", str(work / "runs"),
                 *(["--no-dashboard"] if args.smoke else [])], between=sampled)
    return probe


def main(argv=None) -> int:
    args = C.parse(build_parser(), SMOKE, argv)
    from segmodels.data import load_dataset

    big = C.synthetic_data(args.n_train, args.n_test, args.height, args.width, args.distinct)
    tiny = C.synthetic_data(args.n_tiny, args.n_test, args.height, args.width, args.distinct)
    data = load_dataset(big)
    size = sum(a.nbytes for split in (data.train, data.val) for a in split.images + split.masks)
    del data
    crops = -(-args.n_train // args.n_tiny)  # the control trains as many crops per epoch
    probes = {}
    with C.workdir(args, "memory") as work, (
            C.one_ray_session() if args.smoke else contextlib.nullcontext()):
        for label, root, cpi in (("big", big, 1), ("tiny", tiny, crops)):
            for trials in (1, 2):
                print(f"{label} dataset, {trials} concurrent trial(s) ...", flush=True)
                probes[label, trials] = sweep(args, root, work, f"mem_{label}_{trials}", trials,
                                              cpi)

    def node(label, trials):
        return probes[label, trials].peak("node", trials)

    extra = node("big", 2) - node("big", 1)
    extra_tiny = node("tiny", 2) - node("tiny", 1)
    rows = [
        C.check("memory: extra memory of a 2nd trial / decoded dataset", extra / size, "<=",
                0.25),
        C.check("memory: data-attributable extra of a 2nd trial / decoded dataset",
                (extra - extra_tiny) / size, "<=", 0.25),
        C.info("memory: decoded dataset [MB]", size / MB, "{:.0f}"),
        C.info("memory: extra of a 2nd trial, big / tiny dataset [MB]",
               f"{extra / MB:.0f} / {extra_tiny / MB:.0f}"),
        C.info("memory: shared memory (object store) 1 / 2 trials [MB]",
               f"{probes['big', 1].peak('shmem', 1) / MB:.0f} / "
               f"{probes['big', 2].peak('shmem', 2) / MB:.0f}"),
        C.info("memory: private memory of the trials, 1 / 2 trials [MB]",
               f"{probes['big', 1].peak('trial_anon', 1) / MB:.0f} / "
               f"{probes['big', 2].peak('trial_anon', 2) / MB:.0f}"),
        C.info("memory: driver's private memory added by the sweep / decoded dataset",
               (probes["big", 1].peak("driver", 1) - probes["big", 1].driver_before) / size),
    ]
    C.emit(rows, args, "memory: 1 vs 2 concurrent trials on one node")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
