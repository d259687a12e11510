"""segsweep command line: train and compare a grid of segmentation models with Ray Tune.

    python tune_app.py --grid homework                  # the course's six experiments
    python tune_app.py --grid full --search optuna --num-samples 10
    python tune_app.py --grid my_grid.yaml --data ~/tiny-floodnet-challenge
    python tune_app.py --name homework --resume         # continue an interrupted sweep
    python tune_app.py --list-grids
    python tune_app.py export runs/homework              # the winner, checked, with its card
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import signal
import sys
import threading
import traceback
from pathlib import Path

from segmodels.data import parse_image_size
from segmodels.errors import SegsweepError
from segmodels.training import TrialConfig, config
from sweeps.objectives import BUDGETED, OBJECTIVES
from sweeps.search import SCHEDULERS, SEARCHES
from sweeps.settings import AUTO, LARGE_GRID
from sweeps.storage import DEFAULT_STORAGE
from sweeps.storage_space import StorageFull
from sweeps.tracking import TRACKERS, dashboard_commands

# CLI flags that set TrialConfig keys; None means "not given": the grid's or model's default holds.
TRIAL_FLAGS = {
    "epochs": int, "crop_size": int, "batch_size": int, "crops_per_image": int, "lr": float,
    "optimizer": str, "loss": str,
    "lr_scheduler": str, "seed": int, "precision": str, "miou_definition": str,
    "inference_repeats": int,
}


def gpus_per_trial(text: str) -> float | str:
    """--gpus-per-trial: 'auto' or a number of GPUs."""
    if text == AUTO:
        return AUTO
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of GPUs >= 0 such as "
                                         f"0.5, got {text!r}")
    return value


EXIT_CODES = """exit codes:
  0    the sweep finished (ranking and report written)
  1    trials failed after their retries, or the storage filled up; the --resume command
       to continue is printed
  2    refused before anything ran (a bad flag, grid, dataset, name or storage; one line)
  130  interrupted by Ctrl-C (the --resume command is printed once the state is saved)"""


def program_name() -> str:
    """``segsweep`` when run as the installed command, else ``python tune_app.py``: what the
    usage, errors and printed hints call it, so a copied hint runs."""
    return "segsweep" if Path(sys.argv[0]).name == "segsweep" else "python tune_app.py"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("segsweep")
    except PackageNotFoundError:
        return "not installed (a checkout)"


def build_parser() -> argparse.ArgumentParser:
    defaults = TrialConfig()
    p = argparse.ArgumentParser(prog=program_name(), description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"segsweep {version()}")
    p.add_argument("--grid", default="homework", help="named grid (--list-grids) or YAML file")
    p.add_argument("--list-grids", action="store_true", help="list named grids and exit")
    p.add_argument("--data", default=None, help="dataset folder (default: synthetic data)")
    p.add_argument("--image-size", default=None, metavar="WxH",
                   help="shrink images larger than WIDTHxHEIGHT to fit it on load, aspect kept "
                        "(e.g. 1000x750 for FloodNet's 4000x3000 originals); cached, see "
                        "docs/data.md")
    train = p.add_argument_group("training (defaults reproduce the course)")
    for flag, kind in TRIAL_FLAGS.items():
        options = config.choices(flag) if flag in config.CHOICES else None
        train.add_argument(f"--{flag.replace('_', '-')}", type=kind, default=None,
                           choices=options, help=f"default {getattr(defaults, flag)}")
    train.add_argument("--inference-size", default=None, metavar="WxH",
                       help="the frame inference time is measured on (default 1000x750, the "
                            "course's; e.g. your camera's 1920x1080)")
    train.add_argument("--point-set", action="append", default=[], metavar="PATTERN:KEY=VALUE",
                       help="a setting for the grid points whose label matches the glob, e.g. "
                            "'deeplab/mobilenet_v3_small/*:crops_per_image=8' (repeatable)")
    train.add_argument("--pretrained", action="store_true", default=None,
                       help="ImageNet weights for the models that have them (DeepLab backbones, "
                            "smp encoders; needs internet or a cache); the others train from "
                            "scratch")
    tune = p.add_argument_group("search and scheduling")
    tune.add_argument("--search", default="grid", choices=list(SEARCHES),
                      help="; ".join(f"{k}: {v.description}" for k, v in SEARCHES.items()))
    tune.add_argument("--seeds", type=int, default=None,
                      help="train every grid point once per seed (--seed, --seed + 1, ...), "
                           "each its own trial: the report then gives every answer with its "
                           "interval over seeds (default: a grid file's 'seeds', else 1)")
    tune.add_argument("--large-grid", action="store_true",
                      help=f"confirm a grid of more than {LARGE_GRID:,} trials (points x seeds)")
    tune.add_argument("--num-samples", type=int, default=None,
                      help="extra Optuna trials beyond one per grid point")
    tune.add_argument("--scheduler", default=None, choices=list(SCHEDULERS),
                      help="default: a grid file's 'scheduler', else " + "; ".join(
                          f"{v.default_scheduler} for --search {k}" for k, v in SEARCHES.items())
                      + " (fifo with several --objective; asha is refused there); --resume "
                        "keeps the sweep's own")
    tune.add_argument("--objective", action="append", default=None, choices=list(OBJECTIVES),
                      help="what the search optimises (repeatable; several: a Pareto front, "
                           "FIFO): " + "; ".join(f"{k}: {v.description}"
                                                 for k, v in OBJECTIVES.items())
                           + " (default: a grid file's 'objectives', else miou)")
    for name in BUDGETED:
        objective = OBJECTIVES[name]
        tune.add_argument(objective.budget_flag, type=float, default=None,
                          metavar=objective.unit.upper() or "N",
                          help=f"budget on {name} ({objective.description}): architectures "
                               "over it are measured, reported as rejected and never trained")
    tune.add_argument("--grace-period", type=int, default=None,
                      help="ASHA: epochs before a trial can be stopped (default epochs/4)")
    tune.add_argument("--reduction-factor", type=float, default=3,
                      help="ASHA: keep 1 in this many trials at each rung (default 3)")
    res = p.add_argument_group("resources and storage")
    res.add_argument("--cpus-per-trial", type=float, default=None,
                     help="CPUs each trial reserves (default: an even share of the CPUs, or "
                          "what each trial's GPU share comes with)")
    res.add_argument("--gpus-per-trial", type=gpus_per_trial, default=AUTO,
                     help="auto: each architecture's share where GPUs exist, small models two "
                          "to a GPU (sweeps/packing.py); or a number for every trial, e.g. 0.5")
    res.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray")
    res.add_argument("--no-dashboard", action="store_true",
                     help="start a local Ray without its web dashboard (batch jobs: one port "
                          "and a few CPU-seconds fewer; TensorBoard still shows the curves)")
    res.add_argument("--address", default=None, help="join a Ray cluster ('auto' or host:port)")
    res.add_argument("--storage", default=DEFAULT_STORAGE, help="local folder, s3:// or gs:// URI")
    res.add_argument("--name", default=None, help="sweep name (default: the grid's name)")
    res.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    res.add_argument("--overwrite", action="store_true", help="replace a sweep of the same name")
    res.add_argument("--max-failures", type=int, default=2, help="retries of a failed trial")
    res.add_argument("--no-report", action="store_true", help="skip the analysis report")
    res.add_argument("--tracker", action="append", default=[], choices=list(TRACKERS),
                     help="log every trial there too (repeatable; an optional extra each): "
                          + "; ".join(f"{k}: {v.description}" for k, v in TRACKERS.items()))
    p.add_argument("--quiet", action="store_true",
                   help="print only errors and the final ranking (the report is still written)")
    res.add_argument("--no-tracker-artifacts", dest="tracker_artifacts", action="store_false",
                     help="don't store each trial's best checkpoint in its MLflow/W&B run (a "
                          "second copy of every checkpoint)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def settings_from_args(args: argparse.Namespace):
    from sweeps.settings import SweepSettings

    overrides = {k: getattr(args, k) for k in TRIAL_FLAGS}
    overrides["pretrained"] = args.pretrained
    if args.inference_size:
        overrides["inference_width"], overrides["inference_height"] = parse_image_size(
            args.inference_size, "--inference-size")
    return SweepSettings(
        grid=args.grid, data=args.data, overrides=overrides, point_settings=args.point_set,
        image_size=parse_image_size(args.image_size) if args.image_size else None,
        search=args.search, seeds=args.seeds, large_grid=args.large_grid,
        num_samples=args.num_samples, scheduler=args.scheduler, grace_period=args.grace_period,
        reduction_factor=args.reduction_factor, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, storage=args.storage, name=args.name,
        resume=args.resume, overwrite=args.overwrite, max_failures=args.max_failures,
        address=args.address, num_cpus=args.num_cpus, dashboard=not args.no_dashboard,
        report=not args.no_report,
        trackers=list(dict.fromkeys(args.tracker)), tracker_artifacts=args.tracker_artifacts,
        objectives=args.objective,
        budgets={name: value for name in BUDGETED
                 if (value := getattr(args, OBJECTIVES[name].budget_flag[2:].replace("-", "_")))
                 is not None},
    )


def list_grids() -> None:
    from sweeps.grids import NAMED_GRIDS, load_grid

    for name, (_, description) in NAMED_GRIDS.items():
        print(f"{name:10s} {description}")
        for label in load_grid(name).labels:
            print(f"{'':12s}{label}")


def write_report(settings, val=None) -> None:
    """The analysis report; a failure here never hides the sweep's results. ``val`` is the
    sweep's decoded validation split (the report then decodes nothing)."""
    if settings.remote_storage:
        print(f"report: fetch the results, then run: python -m analysis <local copy of "
              f"{settings.experiment_path()}>")
        return
    try:
        from analysis import build_report

        path = build_report(settings.experiment_path(), val=val)
        print(f"Report: {path}")
    except Exception as exc:  # noqa: BLE001 - the sweep itself succeeded
        print(f"warning: the report could not be written ({type(exc).__name__}: {exc}); "
              f"retry with: python -m analysis {settings.experiment_path()}", file=sys.stderr)


def print_intervals(settings) -> None:
    """The ranking's error bars, read back from the sweep's stored per-image evidence, and
    the front of a search with several objectives or a budget."""
    if settings.remote_storage:
        return
    try:
        from analysis.loading import load_experiment
        from analysis.pareto import front_lines
        from analysis.replicates import interval_lines

        exp = load_experiment(settings.experiment_path())
        lines = interval_lines(exp)
        front = front_lines(exp)
        if front:
            lines += ["", "Front (no trial within budget beats these on every objective):",
                      *front]
    except Exception as exc:  # noqa: BLE001 - the sweep itself succeeded; the report retries
        print(f"warning: no intervals ({type(exc).__name__}: {exc})", file=sys.stderr)
        return
    if lines:
        print("\n" + "\n".join(lines))


def _saved(settings) -> bool:
    """Tune saved the sweep at least once (object storage: assumed, it cannot be listed here)."""
    from sweeps.ray_state import tune_saved

    return settings.remote_storage or tune_saved(Path(settings.experiment_path()))


def _resume_command(args: argparse.Namespace, name: str) -> str:
    storage = "" if args.storage == DEFAULT_STORAGE else f" --storage {shlex.quote(args.storage)}"
    return f"{program_name()} --name {shlex.quote(name)}{storage} --resume"


def storage_full(exc: StorageFull, prepared, args: argparse.Namespace) -> int:
    """The storage filled up (or turned read-only) mid-sweep: what finished, ranked and
    reported where the disk still allows, then one line with the errno and the resume."""
    from sweeps.summary import print_summary

    settings = exc.settings
    for note in exc.notes:
        print(f"note: {note}", file=sys.stderr)
    if exc.results is not None:
        print_summary(exc.results, prepared)
    print_intervals(settings)
    if settings.report:
        write_report(settings, prepared.data.val)
    print(f"error: {exc.problem.line()}: the sweep stopped with what is above stored; free "
          f"space (or fix the storage), then continue with:\n"
          f"  {_resume_command(args, settings.name)}", file=sys.stderr)
    return 1


def _unless_quiet(quiet: bool) -> contextlib.AbstractContextManager:
    """--quiet: what prints on stdout meanwhile goes nowhere (errors stay, on stderr)."""
    if not quiet:
        return contextlib.nullcontext()
    from sweeps.console import quiet_console

    return quiet_console()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C (SIGINT) stops a sweep cleanly whoever started it: a process started with
        # SIGINT ignored (a background job of a script, some job runners) would otherwise
        # ignore it up to the sweep's first save and honour it after (sweeps.runner installs
        # its own handler for the fit).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if argv[:1] == ["export"]:  # segsweep export RUN: the winner as a deployable model
        from deploy.__main__ import main as export_main

        return export_main(argv[1:], prog="segsweep export")
    args = build_parser().parse_args(argv)
    if args.list_grids:
        list_grids()
        return 0
    prepared = None
    try:
        from sweeps import runner
        from sweeps.prepare import prepare
        from sweeps.summary import failed_points, print_summary

        with _unless_quiet(args.quiet):
            prepared = prepare(settings_from_args(args))
            if prepared.data.synthetic:
                print("=" * 72 + "\nNOTE: training on the SYNTHETIC dataset "
                      f"({prepared.data.root}).\nPass --data DIR to train on FloodNet.\n"
                      + "=" * 72, flush=True)
            else:
                print(f"data: {prepared.data.describe()}", flush=True)
            for note in [*prepared.notes, *prepared.data.notes]:
                print(f"note: {note}")
            dashboards = dashboard_commands(prepared.settings)  # before MLflow sets its env var
            results = runner.run(prepared)
        print_summary(results, prepared)
        with _unless_quiet(args.quiet):
            print_intervals(prepared.settings)
            if prepared.settings.report:
                write_report(prepared.settings, prepared.data.val)
            print("\n".join(dashboards))
        failed = failed_points(results)
        if failed:  # scripts and CI must not take a half-failed sweep for a finished one
            print(f"error: {len(failed)} of {len(results)} trial(s) failed after their retries: "
                  f"{', '.join(failed)}; the reason is in each one's error.txt in "
                  f"{prepared.settings.experiment_path()}. Once fixed, continue with:\n"
                  f"  {_resume_command(args, prepared.settings.name)}", file=sys.stderr)
            return 1
    except StorageFull as exc:
        return storage_full(exc, prepared, args)
    except KeyboardInterrupt as exc:
        # First Ctrl-C: Tune saved the state and returned (SweepInterrupted). Second: at once.
        # The sweep's settings: from Tune's stop, else from the checks (a second Ctrl-C).
        stopped = getattr(exc, "settings", None) or getattr(prepared, "settings", None)
        name = getattr(stopped, "name", None) or args.name or Path(args.grid).stem
        if not args.resume and (stopped is None or not _saved(stopped)):
            print("\nInterrupted before the sweep's first save: nothing trained, nothing to "
                  "resume; run the same command again to start it.", file=sys.stderr)
            return 130
        print(f"\nInterrupted. The sweep's state is saved; continue it with:\n"
              f"  {_resume_command(args, name)}", file=sys.stderr)
        return 130
    except SegsweepError as exc:  # a user mistake; anything else is a bug: its traceback shows
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cli() -> None:
    """The installed ``segsweep`` command and ``python tune_app.py``."""
    from segmodels.program import exit_program

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    exit_program(main())


if __name__ == "__main__":
    cli()
