"""What the console shows while a sweep trains, computed without Ray: a line per trial (epoch x of
y, latest and best val mIoU) and a line for the sweep with its ETA.

The ETA comes from measured epoch times. A trial's seconds per epoch are the mean of its
reported epochs after its first (Tune's ``time_this_iter_s``: training, validation and the
checkpoint); its first epoch also builds the model and starts the data loaders, so what it took
beyond the epoch's own work (the trial's ``epoch_seconds``) is counted once per trial, as
start-up, and until a second epoch is timed that work stands for an epoch. A trial not measured
yet takes the mean of the measured trials of its grid point, else of all. The remaining work is
then laid out as Tune runs it: the running trials first, then each pending trial on the slot
that frees first, with as many slots as trials have run at once. Under ASHA trials may stop
early: the ETA is then the most the sweep can take.

``sweeps.console`` feeds this module Tune's trials and results, and prints its lines.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from sweeps.objectives import REJECTED
from sweeps.search import METRIC
from sweeps.summary import BEST_SCORE

FINISHED = frozenset({"TERMINATED", "ERROR"})  # Tune's statuses of a trial that ended
RUNNING = "RUNNING"


def _number(value: Any) -> float | None:
    """A finite float, or None (a missing value, NaN, text)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class TrialProgress:
    """One trial as the console knows it, from the rows it reported."""

    name: str
    point: str | None = None
    status: str = "PENDING"
    planned: int | None = None  # epochs the trial will train, if it is not stopped early
    epoch: int = 0  # epochs reported
    miou: float | None = None  # the latest epoch's val mIoU
    best: float | None = None
    first_s: float | None = None  # the first epoch this console timed, start-up included ...
    first_work_s: float | None = None  # ... and the trial's own time of that epoch's work
    later_s: float = 0.0  # the later epochs' seconds, summed ...
    later: int = 0  # ... and counted
    last_event: float | None = None  # time.monotonic() of its start or latest report
    diverged: bool = False
    rejected: str | None = None  # why its architecture is over a budget: it never trains

    def record(self, row: Mapping[str, Any], timed: bool = True) -> None:
        """A reported row; ``timed=False`` for a row reported before this console started (a
        resumed sweep's last result): its epoch and scores, not its time. A row without an
        epoch (what Tune holds for a trial that reported nothing) changes nothing."""
        epoch = _number(row.get("epoch"))
        if epoch is None:
            return
        self.epoch = int(epoch)
        planned = _number(row.get("epochs_planned"))
        self.planned = int(planned) if planned else self.planned
        self.miou = _number(row.get(METRIC))
        scores = [s for s in (self.best, self.miou, _number(row.get(BEST_SCORE))) if s is not None]
        self.best = max(scores) if scores else None
        self.diverged = bool(row.get("diverged"))
        self.rejected = row.get(REJECTED) or None
        if self.rejected:  # never trains: no epoch to plan or to time
            self.planned = 0
            return
        seconds = _number(row.get("time_this_iter_s")) if timed else None
        if seconds is not None:
            if self.first_s is None:
                self.first_s = seconds
                work = _number(row.get("epoch_seconds"))
                self.first_work_s = min(work, seconds) if work is not None else None
            else:
                self.later_s += seconds
                self.later += 1

    @property
    def epoch_seconds(self) -> float | None:
        """Seconds per epoch; from the first epoch's own work until a second epoch is timed
        (or the whole first epoch, start-up included, when the trial did not time its work)."""
        if self.later:
            return self.later_s / self.later
        return self.first_work_s if self.first_work_s is not None else self.first_s

    @property
    def startup_seconds(self) -> float | None:
        """What the first epoch took beyond an epoch (model, data loaders)."""
        if self.first_s is None or (not self.later and self.first_work_s is None):
            return None
        return max(0.0, self.first_s - self.epoch_seconds)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def eta_seconds(trials: Sequence[TrialProgress], total: int, planned_epochs: int, slots: int,
                now: float | None = None) -> float | None:
    """Seconds until the sweep ends; None until some epoch has been timed. ``total``: the
    trials the sweep will run, ``trials`` those Tune has made so far (the others are pending,
    each ``planned_epochs`` long); ``slots``: how many trials run at once; ``now``: the
    ``time.monotonic()`` of the question (the running trials' current epoch is under way)."""
    measured = [t for t in trials if t.epoch_seconds is not None]
    if not measured:
        return None
    now = time.monotonic() if now is None else now
    overall = fmean(t.epoch_seconds for t in measured)
    by_point: dict[str | None, list[float]] = {}
    for t in measured:
        by_point.setdefault(t.point, []).append(t.epoch_seconds)
    startups = [t.startup_seconds for t in measured if t.startup_seconds is not None]
    startup = fmean(startups) if startups else 0.0

    def per_epoch(t: TrialProgress) -> float:
        if t.epoch_seconds is not None:
            return t.epoch_seconds
        return fmean(by_point[t.point]) if t.point in by_point else overall

    running, queued = [], []
    for t in trials:
        if t.finished:
            continue
        left = max(0, (planned_epochs if t.planned is None else t.planned) - t.epoch)
        seconds = left * per_epoch(t) + (startup if t.first_s is None else 0.0)
        if t.status == RUNNING:
            if t.last_event is not None and left:  # the current epoch is partly done
                seconds -= min(now - t.last_event, per_epoch(t))
            running.append(max(0.0, seconds))
        else:
            queued.append(seconds)
    unmade = max(0, total - len(trials))
    queued += [startup + planned_epochs * overall] * unmade
    free = sorted(running) + [0.0] * max(0, slots - len(running))
    if not free:
        free = [0.0]
    heapq.heapify(free)
    for seconds in queued:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


def duration(seconds: float) -> str:
    """``2h05m``, ``12m30s``, ``45s``: as long as a console line needs."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def trial_line(t: TrialProgress, name_width: int = 0) -> str:
    """``unet/aug   epoch 3/50  mIoU 0.412 (best 0.431)``."""
    planned = t.planned if t.planned is not None else "?"
    if not t.epoch:
        return f"{t.name:<{name_width}}  starting ({planned} epochs)"
    return (f"{t.name:<{name_width}}  epoch {t.epoch}/{planned}  mIoU {_score(t.miou)} "
            f"(best {_score(t.best)})")


def end_line(t: TrialProgress, early_stopping: bool = False) -> str:
    """How a trial ended: its best mIoU, and whether it trained every planned epoch."""
    planned = t.planned if t.planned is not None else "?"
    if t.rejected:
        return f"{t.name}: rejected, never trained ({t.rejected})"
    if t.status == "ERROR":
        how = f"failed at epoch {t.epoch}/{planned}"
    elif t.diverged:
        how = f"diverged at epoch {t.epoch}/{planned}"
    elif t.planned is None or t.epoch >= t.planned:
        how = f"done, {t.epoch}/{planned} epochs"
    else:
        by = " by ASHA" if early_stopping else ""
        how = f"stopped{by} at epoch {t.epoch}/{planned}"
    return f"{t.name}: {how}, best mIoU {_score(t.best)}"


def sweep_line(trials: Sequence[TrialProgress], total: int, planned_epochs: int,
               eta: float | None, elapsed: float, early_stopping: bool = False,
               clock: float | None = None, stopped: bool = False) -> str:
    """``Sweep: 1/3 trials done, 2 running, 0 pending; 4/6 epochs; 1m05s so far, ETA 30s
    (12:03)``; ``clock``: the wall-clock time (``time.time()``) the ETA counts from;
    ``stopped``: the sweep stopped before its end (Ctrl-C): what it did."""
    done = sum(t.finished for t in trials)
    running = sum(t.status == RUNNING for t in trials)
    pending = max(0, total - done - running)
    epochs = sum(t.epoch for t in trials)
    planned = sum(planned_epochs if t.planned is None else t.planned for t in trials)
    planned += planned_epochs * max(0, total - len(trials))
    if stopped and done < total:
        return (f"Sweep stopped: {done}/{total} trials done; {epochs}/{planned} epochs in "
                f"{duration(elapsed)}")
    text = (f"Sweep: {done}/{total} trials done, {running} running, {pending} pending; "
            f"{epochs}/{planned} epochs; {duration(elapsed)} so far")
    if done >= total:
        return text
    if eta is None:
        return f"{text}, ETA after the first epoch"
    at = time.strftime("%H:%M", time.localtime((time.time() if clock is None else clock) + eta))
    bound = "at most " if early_stopping else ""
    return f"{text}, ETA {bound}{duration(eta)} ({at})"


__all__ = ["TrialProgress", "duration", "end_line", "eta_seconds", "sweep_line", "trial_line"]
