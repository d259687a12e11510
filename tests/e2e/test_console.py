"""The console of a sweep read through a pipe (a CI log): plain lines with the sweep's ETA, the
ranking, and none of Ray's result boxes, status tables or second TensorBoard line. Read from the
session's homework sweep (18 trials through the CLI, tests/conftest.py)."""

from __future__ import annotations

import re

import pytest

RAYS_CONSOLE = ("Trial status:", "started with configuration", "Trial unet", "╭",
                "To visualize your results with TensorBoard", "View detailed results here",
                "Wrote the latest version of all result files")
pytestmark = pytest.mark.slow


def test_a_sweep_says_its_progress_and_eta_in_few_plain_lines(homework_seeds):
    stdout = homework_seeds.stdout
    console = stdout + homework_seeds.stderr
    trials = 18
    lines = console.splitlines()
    # Per trial: its epochs (2), its end and the sweep's line; then the ranking and the
    # answers over seeds (a line per trial or point). Ray's own console printed ~60 per trial.
    assert len(lines) < 8 * trials, console
    assert "\x1b[" not in console  # not a terminal: no cursor moves
    assert re.search(rf"^Sweep: \d+/{trials} trials done, .* ETA \d+(m\d\ds|s) \(\d\d:\d\d\)$",
                     stdout, re.M), stdout
    assert stdout.count(": done, 2/2 epochs, best mIoU ") == trials, stdout
    assert "Ranking" in stdout
    assert stdout.count("tensorboard --logdir") == 2  # the start line, and the last line
    assert f"tensorboard --logdir {homework_seeds.exp}" in stdout
    for ray_line in RAYS_CONSOLE:
        assert ray_line not in console, ray_line
