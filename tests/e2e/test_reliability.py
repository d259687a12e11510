"""Fault injection: real (tiny) sweeps through ``tune_app.py``, faults injected by process id.

Each test starts the CLI as a user does, in its own process session and Ray temp dir
(``reliability_helpers.Sweep``), waits for a state read from the files the sweep stores (never
for a fixed time), injects one fault, and checks what the sweep makes of it: the driver or a
trial worker SIGKILLed, a cluster node lost, a diverging trial, damaged storage, Ctrl+C. Every
process a run started is accounted for; none may outlive its test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from reliability_helpers import (
    DASHBOARD_LINE,
    FLAGS,
    WITH_DASHBOARD,
    Sweep,
    assert_every_epoch_once_but_a_retried_one,
    assert_retried_from_a_checkpoint,
    copy_experiment,
    descendants,
    epochs,
    latest_checkpoint_in_state,
    listening_sockets,
    ray_state,
    results,
    run_app,
    still_alive,
    trial_dirs,
    write_grid,
)

pytestmark = pytest.mark.slow
# Fixtures built once for several tests: those tests share a worker (tests/conftest.py).
BUILT_ONCE = ("killed", "worker_killed", "diverged", "interrupted")
LONG = 8  # epochs of the trial that is mid-way when the fault comes
RESUME_HINT = re.compile(r"python tune_app\.py (.*--resume)")
STOPPING = re.compile(r"Stopping|Stop signal received")  # the CLI's / Tune's first-Ctrl+C line


def _label(rows_or_labels, fragment: str) -> str:
    (label,) = [k for k in rows_or_labels if fragment in k]
    return label


def _ranking(output: str) -> list[str]:
    """The CLI's ranking table: title, header, one line per trial."""
    lines = output[output.index("Ranking"):].splitlines()
    return lines[: next(i for i, line in enumerate(lines) if not line.strip())]


def _history_is_complete(exp_path: Path, planned: dict[str, int]) -> None:
    """``analysis.load_experiment``: one history row per trial x epoch, epochs 1..planned."""
    from analysis import load_experiment

    exp = load_experiment(exp_path)
    for label, n in planned.items():
        rows = exp.history[exp.history["label"] == label]
        assert sorted(rows["epoch"]) == list(range(1, n + 1)), (label, list(rows["epoch"]))


# --- the driver SIGKILLed mid-sweep -------------------------------------------------------

@dataclass
class Killed:
    args: list[str]
    exp: Path
    rows: dict[str, list[dict]]  # what the storage held once every process had died
    state: dict[str, dict]  # Ray's last saved experiment state at that moment
    finished: str  # label of the trial that had finished (TERMINATED in Ray's state)
    unfinished: str
    alive_at_kill: list[tuple[int, str]]
    left_after_kill: list[tuple[int, str]]  # still alive 30 s after the SIGKILL
    dashboard: tuple[str, int] | None
    dashboard_sockets: list[tuple[int, str, int]]  # every LISTEN socket on the dashboard port
    run_sockets: list[tuple[str, str, int]]  # (process, ip, port): LISTEN sockets of the run


@pytest.fixture(scope="module")
def killed(tmp_path_factory, tiny_dataset_dir) -> Killed:
    """Two concurrent trials (2 and LONG epochs); the driver's process group is SIGKILLed
    once the short one is TERMINATED in Ray's saved state and the long one is mid-way."""
    base = tmp_path_factory.mktemp("killed")
    grid = write_grid(base, "killgrid", {"model": ["unet"], "augment": [False],
                                         "epochs": [2, LONG]})
    args = ["--grid", grid, "--name", "killed", "--data", str(tiny_dataset_dir), *WITH_DASHBOARD,
            "--cpus-per-trial", "1", "--num-cpus", "2", "--storage", str(base / "runs")]
    exp = base / "runs" / "killed"
    seen: dict = {}

    def kill_point() -> bool:
        if "dashboard" not in seen and (match := DASHBOARD_LINE.search(sweep.output())):
            host, port = match.group(1), int(match.group(2))
            names = dict(sweep.alive())
            every = listening_sockets()
            seen["dashboard"] = (host, port)
            seen["dashboard_sockets"] = [s for s in every if s[2] == port]
            seen["run_sockets"] = [(names[pid], ip, port) for pid, ip, port in every
                                   if pid in names]
        state, rows = ray_state(exp), results(exp)
        if len(rows) < 2:
            return False
        short, long = _label(rows, "epochs=2"), _label(rows, f"epochs={LONG}")
        return (state.get(short, {}).get("status") == "TERMINATED"
                and len(rows[short]) == 2 and 2 <= len(rows[long]) < LONG)

    with Sweep(args, base / "killed.log") as sweep:
        sweep.poll(kill_point, 300, "one trial TERMINATED, the other mid-way")
        alive_at_kill = sweep.alive()
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.proc.wait(timeout=30)
        left = sweep.wait_gone(30)
    rows = results(exp)
    return Killed(args, exp, rows, ray_state(exp), _label(rows, "epochs=2"),
                  _label(rows, f"epochs={LONG}"), alive_at_kill, left,
                  seen.get("dashboard"), seen.get("dashboard_sockets", []),
                  seen.get("run_sockets", []))


@dataclass
class Resumed:
    exp: Path
    code: int
    output: str
    left: list


@pytest.fixture(scope="module")
def resumed(killed, tmp_path_factory) -> Resumed:
    """The killed sweep, copied, then continued: its start command plus --resume."""
    base = tmp_path_factory.mktemp("resumed")
    exp = copy_experiment(killed.exp, base / "runs")
    args = [a if a != str(killed.exp.parent) else str(base / "runs") for a in killed.args]
    code, output, left = run_app([*args, "--resume"], base / "resume.log")
    return Resumed(exp, code, output, left)


def test_driver_sigkill_then_resume_trains_only_what_is_left(killed, resumed):
    # SIGKILL of the driver's process group takes Ray's processes with it: the GCS, raylet
    # and agents are in that group, and trial workers exit when their raylet dies.
    assert killed.alive_at_kill, "nothing was running at the kill"
    assert killed.left_after_kill == [], killed.left_after_kill
    assert resumed.code == 0, resumed.output[-4000:]
    assert resumed.left == [], resumed.left  # the resumed run leaves no process behind

    after = results(resumed.exp)
    # The finished trial is not trained again: its stored rows are exactly as they were.
    assert after[killed.finished] == killed.rows[killed.finished]
    # The unfinished one continues from its last checkpoint in a new worker process ...
    old = killed.rows[killed.unfinished]
    new = after[killed.unfinished][len(old):]
    assert after[killed.unfinished][:len(old)] == old
    assert new and new[0]["pid"] != old[-1]["pid"] and new[0]["iterations_since_restore"] == 1
    restart = new[0]["epoch"]
    assert restart > 1, "retrained from scratch"
    assert epochs(new) == list(range(restart, LONG + 1))
    # ... right after the last epoch stored: every epoch exactly once in result.json.
    assert epochs(after[killed.unfinished]) == list(range(1, LONG + 1)), (
        f"Ray restored an older checkpoint (epoch {restart - 1}) than the last stored epoch "
        f"({len(old)}) and appended duplicate rows")
    assert {s["status"] for s in ray_state(resumed.exp).values()} == {"TERMINATED"}
    _history_is_complete(resumed.exp, {killed.finished: 2, killed.unfinished: LONG})


def test_resume_trains_on_the_dataset_the_sweep_started_on(killed, resumed):
    assert resumed.code == 0
    started_on = str(killed.args[killed.args.index("--data") + 1])
    # Every epoch validated on the same images: the confusion matrix counts the same pixels.
    rows = results(resumed.exp)[killed.unfinished]
    pixels = [sum(map(sum, r["val_confusion"])) for r in rows]
    assert len(set(pixels)) == 1, pixels
    assert f"SYNTHETIC dataset ({started_on})" in resumed.output


def test_local_dashboard_listens_on_localhost_only(killed):
    assert killed.dashboard is not None and killed.dashboard[0] == "127.0.0.1"
    port = killed.dashboard[1]
    assert killed.dashboard_sockets, f"nothing listens on the dashboard port {port}"
    assert {ip for _, ip, _ in killed.dashboard_sockets} == {"127.0.0.1"}, \
        killed.dashboard_sockets
    # Not asserted (Ray's own services, not the dashboard): what else the run listens on.
    print("listening sockets of the run:", killed.run_sockets)


# --- the driver killed between Ray's checkpoint clean-up and its state save -------------

@dataclass
class CheckpointReplaced:
    exp: Path
    named: str  # the checkpoint folder Ray's saved state names for the unfinished trial
    epoch: int  # the epoch of the checkpoint that replaced it, whose row result.json lacks
    row: dict  # that epoch's row as the sweep had stored it
    code: int
    output: str


@pytest.fixture(scope="module")
def checkpoint_replaced(killed, tmp_path_factory) -> CheckpointReplaced:
    """The killed sweep, copied, as a kill a moment later would have left it. Ray registered
    the unfinished trial's next checkpoint and deleted the one its saved state names
    (num_to_keep); its driver had not yet saved its state, nor copied result.json with that
    epoch's row from its staging folder to storage (they go together). Then resumed."""
    base = tmp_path_factory.mktemp("replaced")
    exp = copy_experiment(killed.exp, base / "runs")
    trial = trial_dirs(exp)[killed.unfinished]
    named = latest_checkpoint_in_state(exp, killed.unfinished)
    epoch = json.loads((trial / named / "meta.json").read_text())["epoch"]
    result = trial / "result.json"
    lines = result.read_text().splitlines(keepends=True)
    (row,) = [json.loads(line) for line in lines if json.loads(line)["epoch"] == epoch]
    result.write_text("".join(line for line in lines if json.loads(line)["epoch"] < epoch))
    later = trial / f"checkpoint_{int(named.removeprefix('checkpoint_')) + 1:06d}"
    shutil.rmtree(later, ignore_errors=True)  # a newer one the worker had written: not needed
    (trial / named).rename(later)
    args = [a if a != str(killed.exp.parent) else str(base / "runs") for a in killed.args]
    code, output, left = run_app([*args, "--resume"], base / "resume.log")
    assert left == [], left
    return CheckpointReplaced(exp, named, epoch, row, code, output)


def test_resume_refills_the_checkpoint_rays_state_names_and_trains_only_what_is_left(
        checkpoint_replaced, killed):
    # Without the refill Ray fails the trial on every retry ("Could not recover from
    # checkpoint as it does not exist on storage anymore") and the sweep ends half trained.
    run = checkpoint_replaced
    assert run.code == 0, run.output[-4000:]
    assert f"{run.named}, named in Ray's saved state, was missing" in run.output
    assert f"the row of epoch(s) {run.epoch} put back" in run.output
    assert {s["status"] for s in ray_state(run.exp).values()} == {"TERMINATED"}
    after = results(run.exp)
    assert after[killed.finished] == killed.rows[killed.finished]
    rows = after[killed.unfinished]
    # The lost row is back, and training continued right after it: every epoch exactly once.
    assert epochs(rows) == list(range(1, LONG + 1)), epochs(rows)
    restored = rows[run.epoch - 1]
    assert restored["restored_from_checkpoint"] is True
    for key in ("val_miou", "val_loss", "train_loss", "val_confusion", "best_val_miou", "point"):
        assert restored[key] == run.row[key], key
    assert rows[run.epoch]["iterations_since_restore"] == 1
    _history_is_complete(run.exp, {killed.finished: 2, killed.unfinished: LONG})


# --- storage damaged while the sweep was stopped ------------------------------------------

@dataclass
class Damaged:
    exp: Path
    deleted: Path  # the finished trial's folder, deleted
    truncated: Path  # the unfinished trial's result.json, cut in its last line
    complete_rows: int  # complete lines left in it
    loaded_before: object  # analysis.Experiment of the damaged folder
    code: int
    output: str
    left: list


@pytest.fixture(scope="module")
def damaged(killed, tmp_path_factory) -> Damaged:
    """The killed sweep, copied; the finished trial's folder deleted, the unfinished trial's
    result.json truncated mid-line; loaded; then resumed."""
    from analysis import load_experiment

    base = tmp_path_factory.mktemp("damaged")
    exp = copy_experiment(killed.exp, base / "runs")
    folders = trial_dirs(exp)
    shutil.rmtree(folders[killed.finished])
    result = folders[killed.unfinished] / "result.json"
    lines = result.read_text().splitlines(keepends=True)
    result.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    loaded = load_experiment(exp)
    args = [a if a != str(killed.exp.parent) else str(base / "runs") for a in killed.args]
    code, output, left = run_app([*args, "--resume"], base / "resume.log")
    return Damaged(exp, folders[killed.finished], result, len(lines) - 1, loaded, code,
                   output, left)


def test_loader_names_a_deleted_trial_and_a_truncated_result_and_loads_the_rest(damaged):
    loaded = damaged.loaded_before
    skipped = "\n".join(loaded.skipped)
    trial_id = damaged.deleted.name[:11]
    assert f"{trial_id} " in skipped and "folder missing" in skipped, skipped
    assert (f"{damaged.truncated.parent.name}: result.json line {damaged.complete_rows + 1} "
            "is not complete JSON") in skipped, skipped
    (remaining,) = loaded.trials["trial_id"]
    assert list(loaded.curves(remaining)["epoch"]) == list(range(1, damaged.complete_rows + 1))


def test_resume_after_storage_damage_completes_the_trials_that_still_exist(damaged, killed):
    assert damaged.code == 0, damaged.output[-4000:]
    assert damaged.left == [], damaged.left
    state = ray_state(damaged.exp)
    # The unfinished trial resumed from its checkpoint and finished.
    assert state[killed.unfinished]["status"] == "TERMINATED"
    assert results(damaged.exp)[killed.unfinished][-1]["epoch"] == LONG
    # What Ray does with the deleted trial: its saved state says TERMINATED, so it is not run
    # again; it stays TERMINATED and Ray re-creates its folder, empty.
    assert state[killed.finished]["status"] == "TERMINATED"
    assert damaged.deleted.is_dir() and not any(damaged.deleted.iterdir())
    # The loader still names it, and still loads the rest.
    from analysis import load_experiment

    after = load_experiment(damaged.exp)
    assert any(damaged.deleted.name in s and "folder missing" in s for s in after.skipped)
    assert list(after.trials["label"]) == [killed.unfinished]


def test_resume_after_a_truncated_result_keeps_every_epoch_trained_after_it(damaged, killed):
    from analysis import load_experiment

    assert damaged.code == 0
    after = load_experiment(damaged.exp)
    (trial_id,) = after.trials["trial_id"]
    stored = list(after.curves(trial_id)["epoch"])
    # Ray resumes from the checkpoint of the last epoch it had saved (the truncated one), and
    # that checkpoint carries its row: it goes back, so the damage loses no epoch at all.
    assert "partial last line" in damaged.output  # the CLI says what it repaired
    assert not [s for s in after.skipped if "not complete JSON" in s], after.skipped
    assert stored == list(range(1, LONG + 1)), stored


def test_resume_with_the_command_line_that_started_a_yaml_sweep_finds_it(killed, tmp_path):
    # A user reruns the command that started the sweep (no --name: the sweep is named after
    # the grid file), adding --resume. Checked up to Ray's start (prepare), which is where
    # the sweep is looked up.
    import tune_app
    from sweeps.prepare import prepare

    args = [a for a in killed.args if a not in ("--name", "killed")]
    grid = args[args.index("--grid") + 1]
    shutil.copytree(killed.exp, tmp_path / "runs" / Path(grid).stem)
    args[args.index("--storage") + 1] = str(tmp_path / "runs")
    settings = tune_app.settings_from_args(tune_app.build_parser().parse_args(
        [*args, "--resume"]))
    prepared = prepare(settings)  # no Ray yet: the sweep's record is found and checked
    assert prepared.settings.name == Path(grid).stem


# --- one trial's worker process SIGKILLed -------------------------------------------------

@dataclass
class WorkerKilled:
    exp: Path
    victim: str  # label of the trial whose worker was killed
    pid: int
    other: str
    epochs: int
    output: str


@pytest.fixture(scope="module")
def worker_killed(tmp_path_factory, tiny_dataset_dir) -> WorkerKilled:
    """Two concurrent 5-epoch trials; one trial's worker SIGKILLed (by the pid its rows carry)
    once it stored >= 2 epochs with >= 2 still to train."""
    n = 5
    base = tmp_path_factory.mktemp("worker")
    grid = write_grid(base, "workergrid", {"model": ["unet"], "augment": [False],
                                           "seed": [0, 1]}, epochs=n)
    exp = base / "runs" / "workergrid"
    args = ["--grid", grid, "--data", str(tiny_dataset_dir), *FLAGS, "--cpus-per-trial", "1",
            "--num-cpus", "2", "--storage", str(base / "runs")]  # --max-failures: default 2

    def target():
        rows = results(exp)
        mid = [label for label, r in rows.items() if 2 <= len(r) <= n - 2]
        return (min(mid), rows[min(mid)][-1]["pid"]) if len(rows) == 2 and mid else None

    with Sweep(args, base / "sweep.log") as sweep:
        victim, pid = sweep.poll(target, 300, "a trial mid-way")
        assert sweep.owns(pid), (pid, sweep.processes)  # a worker of this run, by its pid
        os.kill(pid, signal.SIGKILL)
        code = sweep.wait(420)
        assert code == 0, sweep.tail()
        assert sweep.wait_gone(30) == []
        output = sweep.output()
    other = next(label for label in results(exp) if label != victim)
    return WorkerKilled(exp, victim, pid, other, n, output)


def test_killed_trial_worker_is_retried_from_its_checkpoint(worker_killed):
    w = worker_killed
    rows = results(w.exp)
    # The other trial was not disturbed: one worker, every epoch once.
    assert epochs(rows[w.other]) == list(range(1, w.epochs + 1))
    assert len({r["pid"] for r in rows[w.other]}) == 1
    # The killed one was retried in a new worker from a checkpoint, not from scratch.
    pids = [r["pid"] for r in rows[w.victim]]
    restart = pids.index(next(p for p in pids if p != w.pid))
    assert set(pids[:restart]) == {w.pid} and len(set(pids[restart:])) == 1
    assert_retried_from_a_checkpoint(rows[w.victim], restart, w.epochs)
    state = ray_state(w.exp)
    assert state[w.victim]["num_failures"] == 1 and state[w.other]["num_failures"] == 0
    assert {s["status"] for s in state.values()} == {"TERMINATED"}
    assert (trial_dirs(w.exp)[w.victim] / "error.txt").is_file()  # Ray keeps the trace
    assert "failed (attempt 1), retried from its last checkpoint" in w.output  # the console
    from analysis import load_experiment

    trials = load_experiment(w.exp).trials.set_index("label")
    assert trials.loc[w.victim, "failures"] == 1
    assert trials.loc[w.victim, "status"] == "TERMINATED"
    _history_is_complete(w.exp, {w.victim: w.epochs, w.other: w.epochs})
    ranking = _ranking(w.output)
    assert all(line.split()[-1] == "done" for line in ranking[2:]), ranking


def test_loader_reads_the_newest_sessions_state_whatever_the_file_times(worker_killed,
                                                                         tmp_path):
    # A resumed sweep holds one state file per session. Ray's final sync rewrites them all, in
    # any order (seen here: the older session's file came out 60 ns newer); a copy from S3
    # does the same. Simulated: an older session's file, stale, with the newer mtime.
    from analysis import load_experiment

    exp = copy_experiment(worker_killed.exp, tmp_path / "runs")
    (current,) = exp.glob("experiment_state-*.json")
    stale = json.loads(current.read_text())
    for entry in stale["trial_data"]:
        runtime = json.loads(entry[1])
        entry[1] = json.dumps({**runtime, "num_failures": 0})
    older = exp / "experiment_state-2000-01-01_00-00-00.json"
    older.write_text(json.dumps(stale))
    later = current.stat().st_mtime + 60
    os.utime(older, (later, later))
    trials = load_experiment(exp).trials.set_index("label")
    assert trials.loc[worker_killed.victim, "failures"] == 1


# --- a cluster node lost ------------------------------------------------------------------

def test_lost_node_reschedules_its_trial_on_the_remaining_node(tmp_path, tiny_dataset_dir,
                                                               monkeypatch):
    import tempfile

    from ray.cluster_utils import Cluster

    n = 5
    # The cluster's own temp dir: its ray_current_cluster file cannot capture other
    # processes' ray.init() on this machine.
    temp_dir = tempfile.mkdtemp(prefix="segrel-c", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", temp_dir)
    grid = write_grid(tmp_path, "nodegrid", {"model": ["unet"], "augment": [False],
                                             "seed": [0, 1]}, epochs=n)
    exp = tmp_path / "runs" / "nodegrid"
    cluster_processes: dict = {}
    sigterm = signal.getsignal(signal.SIGTERM)  # Ray's head node sets its own in this process
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        head_id, worker_id = cluster.head_node.node_id, worker.node_id
        args = ["--grid", grid, "--data", str(tiny_dataset_dir), *FLAGS, "--cpus-per-trial",
                "1", "--address", cluster.address, "--max-failures", "3",
                "--storage", str(tmp_path / "runs")]

        def on_worker_node():  # a trial stored >= 2 epochs on the added node, >= 2 to go
            cluster_processes.update(descendants(os.getpid()))
            for label, r in results(exp).items():
                if 2 <= len(r) <= n - 2 and r[-1]["node_id"] == worker_id:
                    return label
            return None

        with Sweep(args, tmp_path / "sweep.log") as sweep:
            moved = sweep.poll(on_worker_node, 300, "a trial running on the added node")
            cluster.remove_node(worker, allow_graceful=False)  # SIGKILL of its processes
            code = sweep.wait(420)
            assert code == 0, sweep.tail()
            assert sweep.wait_gone(30) == []
    finally:
        cluster_processes.update(descendants(os.getpid()))
        cluster.shutdown()
        deadline = time.monotonic() + 30
        while (left := still_alive(cluster_processes)) and time.monotonic() < deadline:
            time.sleep(0.25)
        for pid, _ in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
        signal.signal(signal.SIGTERM, sigterm)
    assert left == [], left  # the cluster's processes all stopped with it

    rows = results(exp)
    state = ray_state(exp)
    assert {s["status"] for s in state.values()} == {"TERMINATED"}
    for label, r in rows.items():
        if label != moved:
            assert epochs(r) == list(range(1, n + 1)), (label, epochs(r))
    nodes = [r["node_id"] for r in rows[moved]]
    lost_at = nodes.index(head_id)
    assert set(nodes[:lost_at]) == {worker_id} and set(nodes[lost_at:]) == {head_id}
    assert_retried_from_a_checkpoint(rows[moved], lost_at, n)
    assert state[moved]["num_failures"] == 1
    _history_is_complete(exp, {label: n for label in rows})


# --- a diverging trial --------------------------------------------------------------------

@dataclass
class Diverged:
    exp: Path
    code: int
    output: str
    left: list
    bad: str  # label of the lr=1e30 trial
    good: str
    epochs: int


@pytest.fixture(scope="module")
def diverged(tmp_path_factory, tiny_dataset_dir) -> Diverged:
    base = tmp_path_factory.mktemp("diverged")
    grid = write_grid(base, "divgrid", {"model": ["unet"], "augment": [False],
                                        "lr": [0.001, 1.0e30]}, optimizer="sgd", epochs=3)
    exp = base / "runs" / "divgrid"
    code, output, left = run_app(
        ["--grid", grid, "--data", str(tiny_dataset_dir), *FLAGS, "--cpus-per-trial", "1",
         "--num-cpus", "2", "--storage", str(base / "runs")], base / "sweep.log")
    assert code == 0, output[-4000:]
    rows = results(exp)
    return Diverged(exp, code, output, left, _label(rows, "lr=1e+30"), _label(rows, "lr=0.001"),
                    3)


def test_diverging_trial_ends_with_its_reason_and_is_not_retried(diverged):
    from analysis import build_report, load_experiment

    bad, good = diverged.bad, diverged.good
    assert diverged.left == []
    rows = results(diverged.exp)
    last = rows[bad][-1]
    assert last["diverged"] is True and "learning rate" in last["failure"], last
    # Not retried: one worker process, Ray counted no failure, no error file.
    assert len({r["pid"] for r in rows[bad]}) == 1
    state = ray_state(diverged.exp)[bad]
    assert state["status"] == "TERMINATED" and state["num_failures"] == 0, state
    assert not (trial_dirs(diverged.exp)[bad] / "error.txt").exists()
    assert epochs(rows[good]) == list(range(1, diverged.epochs + 1))
    ranking = _ranking(diverged.output)
    assert any("lr=1e+30" in line and line.split()[-1] == "DIVERGED" for line in ranking), \
        ranking
    loaded = load_experiment(diverged.exp)
    trials = loaded.trials.set_index("label")
    assert trials.loc[bad, "status"] == "DIVERGED" and "learning rate" in trials.loc[bad, "error"]
    assert trials.loc[good, "status"] == "TERMINATED"
    assert build_report(diverged.exp, examples=False).is_file()


def test_ranking_prints_epochs_as_integers_next_to_a_diverged_trial(diverged):
    ranking = _ranking(diverged.output)
    good = next(line for line in ranking if "lr=0.001" in line).split()
    _, _, best_epoch, epochs_done = good[:4]  # model, best mIoU, best epoch, epochs, ...
    assert epochs_done == str(diverged.epochs), ranking
    assert best_epoch.isdigit(), ranking


# --- Ctrl+C -------------------------------------------------------------------------------

@dataclass
class Interrupted:
    args: list[str]
    exp: Path
    grid: str
    seconds: float  # from the SIGINT to the driver's exit
    code: int
    output: str
    left: list
    state: dict


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, tiny_dataset_dir) -> Interrupted:
    """Two concurrent trials; one SIGINT to the driver (only) once one has stored an epoch and
    neither is near its end."""
    base = tmp_path_factory.mktemp("sigint")
    grid = write_grid(base, "intgrid", {"model": ["unet"], "augment": [False], "seed": [0, 1]},
                      epochs=LONG)
    exp = base / "runs" / "intgrid"
    args = ["--grid", grid, "--data", str(tiny_dataset_dir), *FLAGS, "--cpus-per-trial", "1",
            "--num-cpus", "2", "--storage", str(base / "runs")]
    with Sweep(args, base / "sweep.log") as sweep:
        sweep.poll(lambda: (rows := results(exp)) and len(rows) == 2 and any(rows.values())
                   and all(len(r) <= LONG - 2 for r in rows.values()), 300, "the sweep mid-way")
        os.kill(sweep.pid, signal.SIGINT)
        sent = time.monotonic()
        code = sweep.wait(180)
        seconds = time.monotonic() - sent
        left = sweep.wait_gone(30)
        output = sweep.output()
    return Interrupted(args, exp, grid, seconds, code, output, left, ray_state(exp))


def test_ctrl_c_stops_the_sweep_saves_its_state_and_says_how_to_resume(interrupted):
    print(f"Ctrl+C: exit code {interrupted.code} after {interrupted.seconds:.1f} s")
    assert interrupted.seconds < 120, interrupted.seconds
    assert interrupted.code == 130, interrupted.output[-3000:]
    assert interrupted.left == [], interrupted.left
    # Ray's state was saved with the trials unfinished ...
    assert interrupted.state and {s["status"] for s in interrupted.state.values()} != {
        "TERMINATED"}, interrupted.state
    # ... and the user is told the command that continues this sweep (named after the file).
    name = Path(interrupted.grid).stem
    assert RESUME_HINT.search(interrupted.output), interrupted.output[-3000:]
    assert f"--name {name}" in RESUME_HINT.search(interrupted.output).group(0)
    assert "Ranking" not in interrupted.output  # no ranking of an unfinished sweep


def test_the_printed_resume_command_completes_an_interrupted_sweep(interrupted, tmp_path):
    command = RESUME_HINT.search(interrupted.output).group(1).split()
    code, output, left = run_app([*command, "--no-report"], tmp_path / "resume.log")
    assert code == 0, output[-4000:]
    assert left == []
    for rows in results(interrupted.exp).values():  # Ctrl+C may land between an epoch's
        assert_every_epoch_once_but_a_retried_one(rows, LONG)  # row and its checkpoint
    assert {s["status"] for s in ray_state(interrupted.exp).values()} == {"TERMINATED"}
    _history_is_complete(interrupted.exp, {label: LONG for label in interrupted.state})


def _signal_state(pid: int) -> str:
    """The signals a process blocks, ignores and catches (/proc), for a failure's message."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as exc:
        return f"no /proc status ({exc})"
    return ", ".join(line.replace("\t", " ") for line in lines
                     if line.startswith(("SigBlk", "SigIgn", "SigCgt", "State")))


def test_two_terminals_one_sweep_then_ctrl_c_in_its_first_seconds_gives_advice_that_works(
        tmp_path, tiny_dataset_dir):
    """The same command started twice at once (two terminals, a job array): one claims the
    name, the other is refused in one line naming it. Ctrl+C to the first as soon as its
    record exists: whether or not Tune saved first, what the CLI says is true, and the command
    it gives (a plain rerun, or --resume) finishes the sweep."""
    from sweeps.ray_state import tune_saved

    grid = write_grid(tmp_path, "early", {"model": ["unet"], "augment": [False]}, epochs=1)
    storage = tmp_path / "runs"
    exp = storage / "early"
    args = ["--grid", grid, "--data", str(tiny_dataset_dir), *FLAGS, "--num-cpus", "1",
            "--storage", str(storage)]
    lock = storage / ".early.segsweep-lock"
    with Sweep(args, tmp_path / "one.log") as one, Sweep(args, tmp_path / "two.log") as two:
        # No waiting for the refused one first: on a busy machine the other could finish its
        # one epoch meanwhile. Whoever holds the claim has the record.
        deadline = time.monotonic() + 300
        while not (exp / "segsweep.json").is_file():
            assert time.monotonic() < deadline, one.tail() + two.tail()
            assert one.proc.poll() is None or two.proc.poll() is None, one.tail() + two.tail()
            time.sleep(0.05)
        holder = json.loads(lock.read_text())["pid"]
        sweep, refused = (one, two) if holder == one.pid else (two, one)
        signals = _signal_state(sweep.pid)
        os.kill(sweep.pid, signal.SIGINT)
        code = sweep.wait(120)
        output = sweep.output() + f"\n(when SIGINT was sent: {signals})"
        assert refused.wait(60) == 2, refused.output()
        assert re.search(rf"^error: a sweep named 'early' is running in .* \(process "
                         rf"{sweep.pid} on .*\)", refused.output(), re.M), refused.output()
    assert code == 130, output[-3000:]
    resume = ["--name", "early", "--storage", str(storage), "--resume"]
    if "before the sweep's first save" in output:
        assert not tune_saved(exp), output[-3000:]
        code, out, _ = run_app(resume, tmp_path / "resume.log", timeout=120)
        assert code == 2 and "nothing to resume; run the same command without --resume" in out
        code, out, left = run_app(args, tmp_path / "rerun.log")
        assert code == 0 and "started afresh" in out, out[-3000:]
    else:
        assert tune_saved(exp) and RESUME_HINT.search(output), output[-3000:]
        code, out, left = run_app([*RESUME_HINT.search(output).group(1).split(), "--no-report"],
                                  tmp_path / "resume.log")
        assert code == 0, out[-3000:]
    assert left == []
    assert {s["status"] for s in ray_state(exp).values()} == {"TERMINATED"}


def test_ctrl_c_twice_exits_promptly(tmp_path, tiny_dataset_dir):
    grid = write_grid(tmp_path, "int2grid", {"model": ["unet"], "augment": [False],
                                             "seed": [0, 1]}, epochs=LONG)
    exp = tmp_path / "runs" / "int2grid"
    args = ["--grid", grid, "--data", str(tiny_dataset_dir), *FLAGS, "--cpus-per-trial", "1",
            "--num-cpus", "2", "--storage", str(tmp_path / "runs")]
    with Sweep(args, tmp_path / "sweep.log") as sweep:
        sweep.poll(lambda: any(results(exp).values()), 300, "a trial's first epoch")
        os.kill(sweep.pid, signal.SIGINT)
        # The second Ctrl+C as a user presses it: as soon as the first one shows. (Two
        # signals before Python runs its handler count as one.)
        sweep.poll(lambda: STOPPING.search(sweep.output()), 60, "the first Ctrl+C to show")
        os.kill(sweep.pid, signal.SIGINT)
        sent = time.monotonic()
        code = sweep.wait(60)
        seconds = time.monotonic() - sent
        left = sweep.wait_gone(30)
        output = sweep.output()
    print(f"double Ctrl+C: exit code {code} after {seconds:.1f} s; left: {left}")
    assert seconds < 15, (seconds, output[-3000:])
    assert left == [], left


# --- a storage that fills up ---------------------------------------------------------------

@pytest.fixture
def small_storage(tmp_path):
    """A 48 MB tmpfs (the tiny sweep's checkpoints, its reserve and a little more): a real
    filesystem that fills up. Mounting needs root; where it is refused the injected-ENOSPC
    tests in tests/sweeps/test_storage_space.py still cover the handling."""
    import subprocess

    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"no tmpfs to fill here ({mounted.stderr.strip() or 'mount refused'})")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> Path:
    """Take every free byte of ``folder``'s filesystem."""
    ballast = folder / "ballast"
    with open(ballast, "wb") as f:
        free = shutil.disk_usage(folder).free
        while free > 0:
            try:
                os.posix_fallocate(f.fileno(), 0, free)
                break
            except OSError:
                free -= 4096
    return ballast


def test_a_storage_that_fills_up_ends_in_one_line_then_resume_finishes(
        tmp_path, tiny_dataset_dir, small_storage):
    """The disk fills after the first epoch's checkpoint: the CLI ends with what finished
    ranked and reported, one line naming the storage and the errno, and the resume command;
    once space is freed, that command finishes the sweep from the stored checkpoint."""
    epochs_planned = 3
    grid = write_grid(tmp_path, "fillgrid", {"model": ["unet"], "augment": [False]},
                      epochs=epochs_planned)
    exp = small_storage / "fillgrid"
    flags = [flag for flag in FLAGS if flag != "--no-report"]
    args = ["--grid", grid, "--data", str(tiny_dataset_dir), *flags, "--num-cpus", "1",
            "--max-failures", "1", "--no-dashboard", "--storage", str(small_storage)]
    with Sweep(args, tmp_path / "full.log") as sweep:
        # An epoch's row is stored once its checkpoint folder was copied whole (the trial
        # persists it before it reports): the disk fills after that, never mid-copy.
        sweep.poll(lambda: any(results(exp).values()), 300, "the first epoch, checkpointed")
        ballast = _fill(small_storage)
        code = sweep.wait(300)
        left = sweep.wait_gone(30)
        output = sweep.output()
    assert code == 1, output[-4000:]
    assert left == [], left
    assert "Ray dashboard:" not in output  # --no-dashboard
    lines = output.strip().splitlines()
    assert lines[-2] == (f"error: storage {small_storage}: [Errno 28] No space left on device "
                         "(ENOSPC): the sweep stopped with what is above stored; free space "
                         "(or fix the storage), then continue with:"), output[-4000:]
    assert RESUME_HINT.search(lines[-1]), lines[-1]
    assert "interval over the validation images" in output  # what finished, ranked
    assert (exp / "report" / "report.html").is_file(), output[-4000:]  # ... and reported
    assert not re.search(r"Traceback \(most recent call last\):\n  File \".*tune_app\.py",
                         output)

    ballast.unlink()
    command = RESUME_HINT.search(lines[-1]).group(1).split()
    code, output, left = run_app([*command, "--no-report"], tmp_path / "resume.log")
    assert code == 0, output[-4000:]
    assert left == []
    (rows,) = results(exp).values()
    assert_every_epoch_once_but_a_retried_one(rows, epochs_planned)
    assert {s["status"] for s in ray_state(exp).values()} == {"TERMINATED"}
    assert not list(exp.glob(".segsweep-*")), list(exp.iterdir())  # reserve, probe: gone


# --- grid files are data, never code ------------------------------------------------------

def test_grid_yaml_cannot_run_code(tmp_path):
    import subprocess
    import sys

    marker = tmp_path / "executed"
    grid = tmp_path / "evil.yaml"
    grid.write_text("axes:\n  model: !!python/object/apply:os.system "
                    f"[\"touch {marker}\"]\n")
    proc = subprocess.run([sys.executable, "tune_app.py", "--grid", str(grid), "--storage",
                           str(tmp_path / "runs")], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not valid YAML" in proc.stderr and str(grid) in proc.stderr, proc.stderr
    assert not marker.exists()
    assert not (tmp_path / "runs").exists()  # refused before anything was written
