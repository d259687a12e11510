"""The sweep's console: the ETA's arithmetic and the lines, on made-up trials (no Ray started)."""

from __future__ import annotations

import io
import re

import pytest

from sweeps import progress
from sweeps.progress import TrialProgress, duration, end_line, eta_seconds, sweep_line, trial_line


def _trial(name="unet/aug", status="RUNNING", planned=10, epochs=0, seconds=2.0, first=None,
           point=None, last_event=100.0) -> TrialProgress:
    """A trial that reported ``epochs`` epochs of ``seconds`` each (its first ``first``)."""
    t = TrialProgress(name, point or name, status=status, planned=planned, last_event=last_event)
    for epoch in range(1, epochs + 1):
        took = first if epoch == 1 and first is not None else seconds
        t.record({"epoch": epoch, "epochs_planned": planned, "val_miou": 0.1 * epoch,
                  "time_this_iter_s": took})
    return t


def test_nothing_timed_yet_gives_no_eta():
    assert eta_seconds([_trial(), _trial("b", status="PENDING")], 2, 10, 2, now=100.0) is None


def test_trials_running_side_by_side_then_the_pending_ones_on_the_slot_that_frees_first():
    # 2 slots: two trials at epoch 5 of 10 (2 s each: 10 s left), two pending of 20 s.
    trials = [_trial("a", epochs=5), _trial("b", epochs=5),
              _trial("c", status="PENDING"), _trial("d", status="PENDING")]
    assert eta_seconds(trials, 4, 10, 2, now=100.0) == pytest.approx(30.0)
    # One slot: one after the other.
    one = [_trial("a", epochs=5), _trial("c", status="PENDING"), _trial("d", status="PENDING")]
    assert eta_seconds(one, 3, 10, 1, now=100.0) == pytest.approx(50.0)


def test_the_longest_running_trial_bounds_the_eta_when_nothing_waits():
    trials = [_trial("a", epochs=1), _trial("b", planned=2, epochs=1)]
    assert eta_seconds(trials, 2, 10, 4, now=100.0) == pytest.approx(18.0)


def test_finished_trials_count_nothing_and_trials_tune_has_not_made_count_in_full():
    done = _trial("a", status="TERMINATED", epochs=10)
    assert eta_seconds([done], 1, 10, 1, now=100.0) == 0
    # Three more trials to come, 10 epochs of 2 s each, on 1 slot.
    assert eta_seconds([done], 4, 10, 1, now=100.0) == pytest.approx(60.0)


def test_the_first_epochs_start_up_is_counted_once_per_trial_to_start():
    # First epoch 7 s, then 2 s: 5 s of start-up, which a pending trial pays once more.
    running = _trial("a", epochs=3, first=7.0)
    assert running.epoch_seconds == 2.0 and running.startup_seconds == pytest.approx(5.0)
    pending = _trial("b", status="PENDING")
    assert eta_seconds([running, pending], 2, 10, 1, now=100.0) == pytest.approx(14 + 5 + 20)


def test_one_timed_epoch_counts_the_trials_own_epoch_work_not_its_start_up():
    t = TrialProgress("a", "a", status="RUNNING", planned=10, last_event=100.0)
    t.record({"epoch": 1, "val_miou": 0.2, "time_this_iter_s": 12.0, "epoch_seconds": 2.0})
    assert t.epoch_seconds == 2.0 and t.startup_seconds == pytest.approx(10.0)
    assert eta_seconds([t], 1, 10, 1, now=100.0) == pytest.approx(18.0)


def test_an_untimed_trial_takes_the_speed_of_its_own_grid_point_first():
    fast = _trial("unet 1", point="unet", epochs=2, seconds=1.0)
    slow = _trial("deeplab 1", point="deeplab", epochs=2, seconds=9.0)
    waiting = _trial("deeplab 2", point="deeplab", status="PENDING", planned=1)
    # Slots: unet has 8 s left, deeplab 72 s; the waiting DeepLab (9 s) starts at 8 s.
    assert eta_seconds([fast, slow, waiting], 3, 10, 2, now=100.0) == pytest.approx(72.0)


def test_the_epoch_under_way_counts_as_partly_done():
    t = _trial("a", epochs=5)  # 10 s left at its last report (t=100)
    assert eta_seconds([t], 1, 10, 1, now=101.5) == pytest.approx(8.5)
    assert eta_seconds([t], 1, 10, 1, now=130.0) == pytest.approx(8.0)  # at most one epoch


def test_a_resumed_trials_last_result_gives_its_epoch_not_a_time():
    t = TrialProgress("a", "a", planned=10)
    t.record({"epoch": 4, "val_miou": 0.3, "best_val_miou": 0.35, "time_this_iter_s": 99.0},
             timed=False)
    assert (t.epoch, t.miou, t.best, t.epoch_seconds) == (4, 0.3, 0.35, None)


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (45.4, "45s"), (750, "12m30s"),
                                           (7500, "2h05m")])
def test_durations(seconds, text):
    assert duration(seconds) == text


def test_trial_and_end_lines():
    t = _trial("unet/aug", epochs=3)
    t.record({"epoch": 4, "val_miou": float("nan"), "time_this_iter_s": 2.0})
    assert trial_line(t) == "unet/aug  epoch 4/10  mIoU - (best 0.300)"
    assert trial_line(_trial("x", planned=None), 3) == "x    starting (? epochs)"
    t.status = "TERMINATED"
    assert end_line(t) == "unet/aug: stopped at epoch 4/10, best mIoU 0.300"
    assert "stopped by ASHA at epoch 4/10" in end_line(t, early_stopping=True)
    t.record({"epoch": 10, "val_miou": 0.5, "time_this_iter_s": 2.0})
    assert end_line(t) == "unet/aug: done, 10/10 epochs, best mIoU 0.500"
    t.status = "ERROR"
    assert end_line(t).startswith("unet/aug: failed at epoch 10/10")
    t.status = "TERMINATED"
    t.record({"epoch": 11, "val_miou": float("nan"), "diverged": True})
    assert "diverged at epoch 11/10" in end_line(t)


def test_the_sweep_line_counts_trials_and_epochs_and_gives_the_eta():
    trials = [_trial("a", status="TERMINATED", epochs=10), _trial("b", epochs=4)]
    line = sweep_line(trials, 3, 10, 75.0, 130.0, clock=0.0)
    assert re.fullmatch(r"Sweep: 1/3 trials done, 1 running, 1 pending; 14/30 epochs; 2m10s "
                        r"so far, ETA 1m15s \(\d\d:\d\d\)", line), line
    assert "ETA at most 1m15s" in sweep_line(trials, 3, 10, 75.0, 130.0, early_stopping=True)
    assert sweep_line(trials, 3, 10, None, 5.0).endswith("ETA after the first epoch")
    assert "ETA" not in sweep_line(trials[:1], 1, 10, 0.0, 5.0)
    assert sweep_line(trials, 3, 10, 75.0, 130.0, stopped=True) == (
        "Sweep stopped: 1/3 trials done; 14/30 epochs in 2m10s")


# --- the Tune callback, fed made-up trials -----------------------------------------------

class FakeTrial:
    def __init__(self, name: str):
        self.trial_id, self.config, self.status, self.last_result = name, {"point": name}, \
            "PENDING", {}
        self.num_failures, self.error_file = 0, f"/runs/{name}/error.txt"

    def __str__(self) -> str:
        return self.trial_id


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _sweep(console, trials, epochs=2):
    """Every trial runs its epochs (two at a time), as Tune calls the hooks."""
    console.setup(total_num_samples=len(trials))
    for pair in (trials[:2], trials[2:]):
        for trial in pair:
            trial.status = "RUNNING"
            console.on_trial_start(iteration=0, trials=trials, trial=trial)
        for epoch in range(1, epochs + 1):
            for trial in pair:
                trial.last_result = {"epoch": epoch, "epochs_planned": epochs, "val_miou": 0.2,
                                     "time_this_iter_s": 1.0, "epoch_seconds": 0.5}
                console.on_trial_result(iteration=0, trials=trials, trial=trial,
                                        result=trial.last_result)
                console.on_step_end(iteration=0, trials=trials)
        for trial in pair:
            console.on_trial_complete(iteration=0, trials=trials, trial=trial)
            trial.status = "TERMINATED"
    console.on_experiment_end(trials=trials)


def test_a_sweep_stopped_by_ctrl_c_says_what_it_did_not_that_it_finished(capsys):
    from sweeps.console import ConsoleProgress

    trials = [FakeTrial("a"), FakeTrial("b")]
    console = ConsoleProgress({"a": 4, "b": 4})
    console.setup(total_num_samples=2)
    trials[0].status = "RUNNING"
    console.on_trial_start(iteration=0, trials=trials, trial=trials[0])
    console.on_trial_result(iteration=0, trials=trials, trial=trials[0],
                            result={"epoch": 1, "val_miou": 0.2, "time_this_iter_s": 1.0})
    for trial in trials:  # what Tune's cleanup does to the unfinished trials
        trial.status = "TERMINATED"
    console.on_experiment_end(trials=trials)
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("Sweep stopped: 0/2 trials done; 1/8 epochs in "), last


def test_plain_lines_when_the_output_is_not_a_terminal(monkeypatch, capsys):
    from sweeps.console import ConsoleProgress

    trials = [FakeTrial(f"unet/lr={lr}") for lr in (1, 2, 3)]
    _sweep(ConsoleProgress({str(t): 2 for t in trials}), trials)
    lines = capsys.readouterr().out.splitlines()
    assert "\x1b" not in "".join(lines)
    assert sum(" epoch 1/2 " in line for line in lines) == 3  # every trial's first epoch
    assert sum(line.endswith(": done, 2/2 epochs, best mIoU 0.200") for line in lines) == 3
    assert any(re.search(r"ETA \d+s", line) for line in lines), lines
    assert lines[-1].startswith("Sweep: 3/3 trials done, 0 running, 0 pending; 6/6 epochs")
    assert len(lines) <= 12, lines


def _screen(text: str) -> list[str]:
    """The lines a terminal shows after ``text``: a cursor move up N lines with an erase
    below removes the last N."""
    lines: list[str] = []
    for chunk in re.split(r"(\x1b\[\d+A\r\x1b\[J)", text):
        move = re.fullmatch(r"\x1b\[(\d+)A\r\x1b\[J", chunk)
        if move:
            del lines[len(lines) - int(move.group(1)):]
        else:
            lines += chunk.splitlines()
    return lines


def test_a_long_silence_in_plain_lines_is_broken_by_the_sweeps_line(monkeypatch, capsys):
    from sweeps import console as module

    trial = FakeTrial("a")
    console = module.ConsoleProgress({"a": 4})
    console.setup(total_num_samples=1)
    console.on_step_end(iteration=0, trials=[trial])
    assert capsys.readouterr().out == ""
    clock = module.time.monotonic() + module.PLAIN_SILENCE_S
    monkeypatch.setattr(module.time, "monotonic", lambda: clock)
    console.on_step_end(iteration=1, trials=[trial])
    assert capsys.readouterr().out.startswith("Sweep: 0/1 trials done, 0 running, 1 pending")


def test_on_a_terminal_the_running_trials_are_one_block_redrawn_in_place(monkeypatch):
    from sweeps.console import ConsoleProgress

    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    monkeypatch.setenv("TERM", "xterm")
    trials = [FakeTrial(f"unet/lr={lr}") for lr in (1, 2, 3)]
    _sweep(ConsoleProgress({str(t): 2 for t in trials}), trials)
    text = screen.getvalue()
    assert "\x1b[3A\r\x1b[J" in text  # the block (sweep line + 2 trials) moved over
    left = _screen(text)  # what stays: a line per ended trial, then the sweep's last line
    assert [line.split(": ", 1)[1] for line in left[:-1]] == [
        "done, 2/2 epochs, best mIoU 0.200"] * 3, left
    assert left[-1].startswith("Sweep: 3/3 trials done"), left


def test_a_failure_goes_to_stderr_so_quiet_keeps_it(capsys):
    from sweeps.console import ConsoleProgress

    trial = FakeTrial("unet/aug")
    console = ConsoleProgress({"unet/aug": 2})
    console.setup(total_num_samples=1)
    trial.status, trial.num_failures = "RUNNING", 1
    console.on_trial_recover(iteration=0, trials=[trial], trial=trial)
    trial.num_failures = 3
    console.on_trial_error(iteration=0, trials=[trial], trial=trial)
    err = capsys.readouterr().err
    assert "unet/aug: failed (attempt 1), retried from its last checkpoint" in err
    assert "unet/aug: failed after 3 attempt(s); why: /runs/unet/aug/error.txt" in err


def test_the_callback_pickles_its_settings_only():
    import pickle

    from sweeps.console import ConsoleProgress

    console = ConsoleProgress({"a": 3}, early_stopping=True)
    console.trials["x"] = progress.TrialProgress("x")
    back = pickle.loads(pickle.dumps(console))
    assert (back.planned, back.early_stopping, back.trials) == ({"a": 3}, True, {})


def test_a_rejected_trial_ends_with_why_it_never_trained():
    from sweeps.progress import TrialProgress, end_line

    t = TrialProgress("unet/aug lr=0.003", status="TERMINATED")
    t.record({"epoch": 0, "epochs_planned": 4, "rejected": "cpu_ms 41ms > budget 30ms"})
    assert end_line(t) == "unet/aug lr=0.003: rejected, never trained (cpu_ms 41ms > budget 30ms)"
