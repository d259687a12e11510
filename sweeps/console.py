"""The console while Tune trains: a line per trial and the sweep's ETA (``sweeps.progress``) in
place of Ray's result boxes and status tables.

On a terminal the running trials and the sweep's line are one block, redrawn in place; a trial
that ends leaves a line above it, and so does whatever else prints meanwhile (Ray's forwarded
worker logs, a warning: the block steps aside, ``_LiveBlock``). Anywhere else (a pipe, a CI
log) the same lines are printed as plain lines, each trial's at most once a minute, so a log
stays readable. A trial's failure goes to stderr, so ``--quiet`` (``quiet_console``: stdout to
nowhere while the sweep runs) keeps it.

Ray's own console is turned off through its public switches (``replace_rays_console``): the
legacy output engine (``RAY_AIR_NEW_OUTPUT=0``) at ``RunConfig(verbose=0)`` prints neither
result boxes, nor status tables, nor the new engine's ``tensorboard --logdir`` line (which
names Ray's staging folder, not the sweep's). ``ConsoleProgress`` is an ordinary Tune callback:
Tune keeps it in the sweep's ``tuner.pkl``, so a resumed sweep shows it too; it pickles its
settings only, and looks at the terminal when the sweep (re)starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from statistics import fmean
from typing import Any

from ray.tune import Callback

from sweeps import progress
from sweeps.search import POINT_KEY

PLAIN_EVERY_S = 60.0  # plain lines: a trial's line, and the sweep's, at most this often ...
PLAIN_SILENCE_S = 300.0  # ... and the sweep's at least this often (a CI job that says nothing
# for minutes may be taken for a hung one)
LIVE_EVERY_S = 1.0  # on a terminal: the block redrawn at least this often (the ETA counts down)


def replace_rays_console() -> None:
    """Before ``Tuner.fit``: Ray's legacy output engine, which ``verbose=0`` silences whole (the
    new one still prints its start box and a wrong TensorBoard line), and none of Tune's
    "Wrote the latest version of all result files" notes."""
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    logging.getLogger("ray.tune.tune").setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet_console() -> Iterator[None]:
    """``--quiet``: stdout goes nowhere meanwhile, and Ray's driver logs only its warnings and
    errors; stderr (errors, warnings, the resume command) stays."""
    import ray  # noqa: F401 - its log handler exists once it is imported

    def warnings_only(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING

    handlers = logging.getLogger("ray").handlers
    for handler in handlers:
        handler.addFilter(warnings_only)
    try:
        with open(os.devnull, "w") as nowhere, contextlib.redirect_stdout(nowhere):
            yield
    finally:
        for handler in handlers:
            handler.removeFilter(warnings_only)


def _live(stream: Any) -> bool:
    """A terminal that understands cursor moves."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


class _LiveBlock:
    """Lines at the bottom of a terminal, redrawn in place. While they are shown, sys.stdout
    and sys.stderr (those on a terminal) pass through ``_StepAside``: a write from anyone else
    (any thread) first erases the block, which comes back once that line is complete."""

    def __init__(self) -> None:
        self.out = sys.stdout
        self.lock = threading.RLock()
        self.shown: list[str] = []
        self.drawn = 0  # lines of the block on the screen now
        self.streams = {name: getattr(sys, name) for name in ("stdout", "stderr")
                        if _live(getattr(sys, name))}
        for name, stream in self.streams.items():
            setattr(sys, name, _StepAside(stream, self))

    def show(self, lines: Sequence[str], above: Sequence[str] = ()) -> None:
        """``above`` printed for good, then ``lines`` as the block (cut to the terminal)."""
        size = shutil.get_terminal_size()
        room = max(2, size.lines - 2)
        if len(lines) > room:
            lines = [*lines[:room - 1], f"  ... and {len(lines) - room + 1} more"]
        with self.lock:
            self.shown = [line[:size.columns - 1] for line in lines]
            self.erase()
            self.out.write("".join(f"{line}\n" for line in above))
            self.redraw()

    def redraw(self) -> None:
        with self.lock:
            self.out.write("".join(f"{line}\n" for line in self.shown))
            self.out.flush()
            self.drawn = len(self.shown)

    def erase(self) -> None:
        with self.lock:
            if self.drawn:
                self.out.write(f"\x1b[{self.drawn}A\r\x1b[J")  # up to the block, erase below
                self.out.flush()
            self.drawn = 0

    def close(self) -> None:
        """The block erased, the streams given back."""
        with self.lock:
            self.erase()
            self.shown = []
            for name, stream in self.streams.items():
                if getattr(getattr(sys, name), "block", None) is self:
                    setattr(sys, name, stream)
            self.streams = {}


class _StepAside:
    """A terminal stream while a ``_LiveBlock`` is shown (see there)."""

    def __init__(self, stream: Any, block: _LiveBlock):
        self.stream, self.block = stream, block

    def write(self, text: str) -> int:
        with self.block.lock:
            self.block.erase()
            written = self.stream.write(text)
            if text.endswith("\n"):
                self.stream.flush()
                self.block.redraw()
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def release_terminal() -> None:
    """After ``Tuner.fit``, however it ended: a live block erased and the terminal's streams
    given back (Tune's cleanup does it too, but not after a second Ctrl-C)."""
    for name in ("stdout", "stderr"):
        block = getattr(getattr(sys, name), "block", None)
        if isinstance(block, _LiveBlock):
            block.close()


class ConsoleProgress(Callback):
    """Tune callback that prints the sweep's progress (see the module's docstring).

    ``planned``: grid label -> the epochs its trials train (for the trials that have not
    reported yet); ``early_stopping``: ASHA may stop trials, so the ETA is a bound."""

    def __init__(self, planned: Mapping[str, int], early_stopping: bool = False):
        self.planned = dict(planned)
        self.early_stopping = early_stopping
        self._start()

    def __getstate__(self) -> dict[str, Any]:
        return {"planned": self.planned, "early_stopping": self.early_stopping}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start()

    def _start(self) -> None:
        self.trials: dict[str, progress.TrialProgress] = {}
        self.total = len(self.planned)
        self.slots = 0
        self.started = time.monotonic()
        self._screen: _LiveBlock | None = None  # on a terminal
        self._last_draw = 0.0
        self._last_sweep_line = None  # when the plain sweep line was last printed
        self._last_print = time.monotonic()  # when any plain line was
        self._printed: dict[str, float] = {}  # trial id -> when its plain line was printed
        self._ended_ids: set[str] = set()  # trials whose end Tune announced

    # --- Tune's hooks ----------------------------------------------------------------------

    def setup(self, total_num_samples: int | None = None, **info: Any) -> None:
        self._start()
        self.total = total_num_samples or self.total
        if _live(sys.stdout):
            self._screen = _LiveBlock()

    def on_trial_start(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._sync(trials)
        self.trials[trial.trial_id].last_event = time.monotonic()
        if self._screen:
            self._draw()

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict,
                        **info: Any) -> None:
        self._sync(trials)
        state = self.trials[trial.trial_id]
        state.record(result)
        state.last_event = time.monotonic()
        if self._screen:
            self._draw()
            return
        now = time.monotonic()
        last = self._printed.get(trial.trial_id)
        final = state.planned is not None and state.epoch >= state.planned
        if not final and (last is None or now - last >= PLAIN_EVERY_S):
            self._printed[trial.trial_id] = now
            self._print(progress.trial_line(state))
        if self._last_sweep_line is None or now - self._last_sweep_line >= PLAIN_EVERY_S:
            self._print_sweep_line()

    def on_trial_complete(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self._ended(trials, trial, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        print(f"{trial}: failed after {trial.num_failures} attempt(s); why: "
              f"{trial.error_file}", file=sys.stderr, flush=True)
        self._ended(trials, trial, "ERROR")

    def on_trial_recover(self, iteration: int, trials: list, trial, **info: Any) -> None:
        print(f"{trial}: failed (attempt {trial.num_failures}), retried from its last "
              f"checkpoint; why: {trial.error_file}", file=sys.stderr, flush=True)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if self._screen and now - self._last_draw >= LIVE_EVERY_S:
            self._sync(trials)
            self._draw()
        elif not self._screen and now - self._last_print >= PLAIN_SILENCE_S:
            self._sync(trials)
            self._print_sweep_line()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """The sweep's last line. Tune's statuses are not read again: after a Ctrl-C it ends
        the unfinished trials too."""
        if self._screen:
            self._screen.close()
            self._screen = None
        self._print(self._sweep_line(stopped=True))

    # --- what is shown ---------------------------------------------------------------------

    def _sync(self, trials: list) -> None:
        """Tune's trials -> their progress. The trials there at the first call bring their
        last result (a resumed sweep's); a later trial's comes through ``on_trial_result``."""
        restored = not self.trials
        for trial in trials:
            state = self.trials.get(trial.trial_id)
            if state is None:
                point = (trial.config or {}).get(POINT_KEY)
                state = progress.TrialProgress(str(trial), point, planned=self.planned.get(point))
                if restored and trial.last_result:
                    state.record(trial.last_result, timed=False)
                self.trials[trial.trial_id] = state
            if trial.trial_id not in self._ended_ids or trial.status in progress.FINISHED:
                state.status = trial.status  # (an ended one is RUNNING a moment more: _ended)
        self.slots = max(self.slots, sum(t.status == progress.RUNNING for t in trials))

    def _ended(self, trials: list, trial, status: str) -> None:
        """Tune calls the hook before it sets the trial's final status."""
        self._sync(trials)
        self._ended_ids.add(trial.trial_id)
        state = self.trials[trial.trial_id]
        state.status = status
        line = progress.end_line(state, self.early_stopping)
        if self._screen:
            self._draw([line])
            return
        self._print(line)
        if any(not t.finished for t in self.trials.values()) or len(self.trials) < self.total:
            self._print_sweep_line()

    def _planned_epochs(self) -> int:
        """The epochs of a trial Tune has not made yet: the grid points' mean."""
        return round(fmean(self.planned.values())) if self.planned else 1

    def _sweep_line(self, stopped: bool = False) -> str:
        states = list(self.trials.values())
        eta = progress.eta_seconds(states, self.total, self._planned_epochs(), self.slots)
        return progress.sweep_line(states, self.total, self._planned_epochs(), eta,
                                   time.monotonic() - self.started, self.early_stopping,
                                   stopped=stopped)

    def _print_sweep_line(self) -> None:
        self._last_sweep_line = time.monotonic()
        self._print(self._sweep_line())

    def _print(self, line: str) -> None:
        self._last_print = time.monotonic()
        print(line, flush=True)

    def _draw(self, above: Sequence[str] = ()) -> None:
        """The live block: the sweep's line, then one per running trial; ``above`` printed
        for good first."""
        running = sorted((t for t in self.trials.values() if t.status == progress.RUNNING),
                         key=lambda t: t.name)
        width = max((len(t.name) for t in running), default=0)
        self._screen.show([self._sweep_line(),
                           *(f"  {progress.trial_line(t, width)}" for t in running)], above)
        self._last_draw = time.monotonic()


__all__ = ["ConsoleProgress", "quiet_console", "release_terminal", "replace_rays_console"]
