"""Running on a cluster: cluster.yaml against Ray's own checks, the storage warning, and a
sweep on a local multi-node cluster started with Ray's command-line tools (slow)."""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from sweeps.cluster_checks import autoscaler_capacity, storage_warning

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_YAML = ROOT / "cluster.yaml"
WARNING_TEXT = "no longer syncs trial results to the head node"
WORLD = ("0.0.0.0/0", "::/0")


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture(scope="module")
def prepared(raw) -> dict:
    """cluster.yaml as `ray up` sees it after prepare_config: AWS defaults merged in."""
    from ray.autoscaler._private.util import prepare_config

    return prepare_config(copy.deepcopy(raw))


def _head(config: dict) -> dict:
    return config["available_node_types"][config["head_node_type"]]


def _workers(config: dict) -> dict[str, dict]:
    return {k: v for k, v in config["available_node_types"].items()
            if k != config["head_node_type"]}


# --- cluster.yaml -------------------------------------------------------------------------

def test_cluster_yaml_passes_rays_own_validation(raw, prepared):
    # What `ray up` checks before it contacts AWS (commands._bootstrap_config): prepare_config,
    # then validate_config (ray-schema.json and the cross-field rules).
    from ray.autoscaler._private.util import validate_config

    validate_config(copy.deepcopy(prepared))
    assert prepared["provider"]["type"] == "aws" and prepared["provider"]["region"]
    assert set(prepared["available_node_types"]) == set(raw["available_node_types"])


def test_rays_validation_rejects_a_misspelled_key(prepared):
    import jsonschema
    from ray.autoscaler._private.util import validate_config

    broken = copy.deepcopy(prepared)
    broken["available_node_types"]["gpu_worker"]["min_worker"] = 0
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        validate_config(broken)


def test_head_runs_no_trials(prepared):
    head = _head(prepared)
    assert head["resources"].get("CPU") == 0 and not head["resources"].get("GPU")
    assert not head["node_config"]["InstanceType"].startswith(("g", "p"))


def test_gpu_workers_scale_up_for_a_sweep_and_down_to_zero(prepared):
    from sweeps.grids import load_grid

    workers = _workers(prepared)
    assert workers
    for worker in workers.values():
        assert worker["resources"].get("GPU", 0) >= 1
        assert worker["min_workers"] == 0 and worker["max_workers"] >= 1
        assert worker["node_config"]["InstanceType"].startswith("g")  # one modern NVIDIA GPU
        assert worker["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert prepared["idle_timeout_minutes"] > 0
    # The homework grid's trials (one GPU each) all fit at once.
    assert autoscaler_capacity(prepared)["GPU"] >= len(load_grid("homework").points)


def test_no_ray_port_is_open_to_the_internet(raw, prepared):
    # Without SecurityGroupIds Ray creates a group that opens SSH to 0.0.0.0/0: ours is the
    # user's group, with SSH from their CIDR only.
    for node_type in prepared["available_node_types"].values():
        assert node_type["node_config"].get("SecurityGroupIds")
    rules = raw["provider"].get("security_group", {}).get("IpPermissions", [])
    for rule in rules:
        ranges = [r.get("CidrIp") or r.get("CidrIpv6") for r in
                  rule.get("IpRanges", []) + rule.get("Ipv6Ranges", [])]
        assert not set(ranges) & set(WORLD), rule
    head_start = " ".join(prepared["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start
    assert "0.0.0.0" not in json.dumps(raw)  # no process binds to every interface


def test_token_authentication_is_on_and_no_secret_is_in_the_file(prepared):
    for cmd in prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"]:
        if "ray start" in cmd:
            assert "RAY_AUTH_MODE=token ray start" in cmd, cmd
    assert prepared["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    text = CLUSTER_YAML.read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key|aws_access_key_id|"
                         r"RAY_AUTH_TOKEN=|BEGIN [A-Z ]*PRIVATE KEY", text)
    assert "aws_credentials" not in prepared["provider"]


def test_setup_installs_this_project_and_the_same_ray_on_every_node(prepared):
    import ray

    # prepare_config has merged setup_commands into head_ and worker_setup_commands.
    for commands in (prepared["head_setup_commands"], prepared["worker_setup_commands"]):
        installs = [c for c in commands if "pip install" in c and "segsweep" in c]
        assert installs, commands
        assert f"ray[default,tune]=={ray.__version__}" in installs[-1]
    wheel_dir = next(remote for remote, local in prepared["file_mounts"].items()
                     if local == "./dist")
    assert wheel_dir in prepared["worker_setup_commands"][-1]


# --- storage_warning ----------------------------------------------------------------------

def _nodes(alive: int, dead: int = 0) -> list[dict]:
    return ([{"NodeID": f"a{i}", "Alive": True} for i in range(alive)]
            + [{"NodeID": f"d{i}", "Alive": False} for i in range(dead)])


@pytest.mark.parametrize("storage", ["/home/me/runs", "./runs", "runs", "file:///mnt/runs"])
def test_local_storage_on_several_nodes_is_warned_with_the_reason_and_the_fix(storage):
    text = storage_warning(storage, _nodes(2))
    assert text is not None and storage in text and "2 nodes" in text
    assert WARNING_TEXT in text  # why
    assert "--storage s3://" in text and "NFS" in text  # how to fix


@pytest.mark.parametrize("storage", ["s3://bucket/sweeps", "gs://bucket/x", "abfss://c@a/x",
                                     "hdfs://namenode/x"])
def test_object_storage_is_not_warned(storage):
    assert storage_warning(storage, _nodes(3)) is None


def test_one_alive_node_is_not_warned_even_with_dead_ones_listed():
    assert storage_warning("./runs", _nodes(1, dead=2)) is None
    assert storage_warning("./runs", []) is None


def test_autoscaler_capacity_counts_max_workers_and_the_head():
    config = {"max_workers": 3, "head_node_type": "h", "available_node_types": {
        "h": {"resources": {"CPU": 2}},
        "w": {"resources": {"CPU": 4, "GPU": 1}, "min_workers": 0, "max_workers": 5}}}
    assert autoscaler_capacity(config) == {"CPU": 2 + 3 * 4, "GPU": 3}


# --- a local multi-node cluster, started as on a real one ---------------------------------

def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _get(url: str, token: str | None, timeout: float = 5) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _alive_node_ids(dashboard: str, token: str) -> set[str]:
    try:
        status, body = _get(f"{dashboard}/nodes?view=summary", token)
    except OSError:  # not listening yet
        return set()
    if status != 200:
        return set()
    summary = json.loads(body)["data"]["summary"]
    return {n["raylet"]["nodeId"] for n in summary if n["raylet"]["state"] == "ALIVE"}


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, start time, command line) of every process, from /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        out[int(entry.name)] = (int(fields[1]), fields[19], cmdline)
    return out


def _descendants(roots: list[int]) -> set[tuple[int, str]]:
    """(pid, start time) of every process below the given ones."""
    procs = _processes()
    found, frontier = set(), set(roots)
    while frontier:
        children = {pid for pid, (ppid, _, _) in procs.items() if ppid in frontier}
        found |= {(pid, procs[pid][1]) for pid in children}
        frontier = children
    return found


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to `ray start --block` (it stops the node's processes), SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: pgid == pid
        proc.wait(timeout=10)


def _trial_rows(exp: Path) -> dict[str, list[dict]]:
    rows = {}
    for trial_dir in sorted(p for p in exp.iterdir() if (p / "params.json").is_file()):
        result = trial_dir / "result.json"
        text = result.read_text() if result.exists() else ""
        rows[trial_dir.name] = [json.loads(line) for line in text.splitlines() if line]
    return rows


@pytest.mark.slow
def test_sweep_on_a_multi_node_cluster_started_with_the_ray_cli(tmp_path, tiny_dataset_dir):
    ray_cli = str(Path(sys.executable).parent / "ray")
    # Short: Ray's socket paths live below it and must stay under 108 characters.
    temp_dir = tempfile.mkdtemp(prefix="segsweep-rc-", dir="/tmp")
    (gcs, dash, client, head_agent, head_agent_grpc, head_env, head_metrics,
     worker_agent, worker_agent_grpc, worker_env, worker_metrics) = _free_ports(11)
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    dashboard = f"http://127.0.0.1:{dash}"
    storage = tmp_path / "storage"
    logs = {name: open(tmp_path / f"{name}.log", "w+") for name in ("head", "worker", "driver")}
    # Every port chosen here, so that this cluster meets no other Ray on the machine.
    head_cmd = [ray_cli, "start", "--head", f"--port={gcs}", "--num-cpus=1",
                "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
                f"--ray-client-server-port={client}",
                f"--dashboard-agent-listen-port={head_agent}",
                f"--dashboard-agent-grpc-port={head_agent_grpc}",
                f"--runtime-env-agent-port={head_env}", f"--metrics-export-port={head_metrics}",
                f"--temp-dir={temp_dir}", "--object-store-memory=150000000",
                "--disable-usage-stats", "--block"]
    # A second machine: own resources and ports. --temp-dir: Ray's folder on this machine,
    # shared by every node on it (the worker would take the head's anyway); one log monitor
    # per machine, or the driver would print every trial's output twice.
    worker_cmd = [ray_cli, "start", f"--address=127.0.0.1:{gcs}", "--num-cpus=1",
                  '--resources={"worker_node": 1}',
                  f"--dashboard-agent-listen-port={worker_agent}",
                  f"--dashboard-agent-grpc-port={worker_agent_grpc}",
                  f"--runtime-env-agent-port={worker_env}",
                  f"--metrics-export-port={worker_metrics}", f"--temp-dir={temp_dir}",
                  "--object-store-memory=150000000", "--include-log-monitor=false",
                  "--disable-usage-stats", "--block"]
    started: list[subprocess.Popen] = []
    ray_processes: set[tuple[int, str]] = set()

    def spawn(cmd: list[str], log: str) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logs[log],
                                stderr=subprocess.STDOUT, start_new_session=True)
        started.append(proc)
        return proc

    def logs_tail() -> str:
        out = []
        for name, f in logs.items():
            f.flush()
            out.append(f"--- {name}\n" + (tmp_path / f"{name}.log").read_text()[-3000:])
        return "\n".join(out)

    def wait_for_nodes(n: int, timeout: float) -> set[str]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            alive = _alive_node_ids(dashboard, token)
            if len(alive) >= n:
                return alive
            assert all(p.poll() is None for p in started), logs_tail()
            time.sleep(0.5)
        pytest.fail(f"{n} nodes were not alive after {timeout} s\n{logs_tail()}")

    try:
        spawn(head_cmd, "head")
        wait_for_nodes(1, 60)
        spawn(worker_cmd, "worker")
        node_ids = wait_for_nodes(2, 60)

        # Token authentication is on: the dashboard refuses a request without the token.
        assert _get(f"{dashboard}/api/version", None)[0] == 401
        assert _get(f"{dashboard}/api/version", "wrong" + token)[0] == 403

        driver = spawn([sys.executable, str(ROOT / "tune_app.py"), "--grid", "smoke",
                        "--data", str(tiny_dataset_dir), "--epochs", "2", "--crop-size", "64",
                        "--batch-size", "4", "--inference-repeats", "1", "--scheduler", "fifo",
                        "--inference-size", "64x48",
                        "--cpus-per-trial", "1", "--address", f"127.0.0.1:{gcs}",
                        "--storage", str(storage), "--no-report"], "driver")
        answers, drivers_seen = [], set()
        deadline = time.time() + 240
        while driver.poll() is None:  # the dashboard's HTTP API answers while the sweep runs
            assert time.time() < deadline, "sweep timed out\n" + logs_tail()
            ray_processes |= _descendants([p.pid for p in started])
            try:
                status, body = _get(f"{dashboard}/api/jobs/", token, timeout=10)
            except OSError:  # no answer in 10 s from a dashboard sharing 2 busy cores
                status, body = None, ""
            answers.append(status)
            if status == 200:
                drivers_seen |= {j.get("entrypoint", "") for j in json.loads(body)}
            time.sleep(1)
        assert driver.returncode == 0, logs_tail()
        assert 200 in answers and set(answers) <= {200, None}, answers  # never refused
        assert any("tune_app.py" in e for e in drivers_seen), drivers_seen
    finally:
        for proc in reversed(started):  # the driver, the worker node, then the head
            _stop(proc)
        for f in logs.values():
            f.close()
        shutil.rmtree(temp_dir, ignore_errors=True)

    # Stopped by the process ids started here: nothing of this cluster is left running.
    deadline = time.time() + 15
    while True:
        leftovers = [(pid, cmd) for pid, (_, start, cmd) in _processes().items()
                     if temp_dir in cmd or (pid, start) in ray_processes]
        if not leftovers or time.time() > deadline:
            break
        time.sleep(0.5)
    assert not leftovers, leftovers

    exp = storage / "smoke"
    assert (exp / "segsweep.json").is_file() and list(exp.glob("experiment_state-*.json"))
    rows = _trial_rows(exp)
    assert len(rows) == 2, rows.keys()
    for trial, history in rows.items():
        assert [r["epoch"] for r in history] == [1, 2], trial
        assert list((exp / trial).glob("checkpoint_*/checkpoint.pt")), trial
    used = {history[-1]["node_id"] for history in rows.values()}
    assert used == node_ids  # one trial on each node
    # One machine: both nodes reach the "local" folder, but the driver cannot know that.
    output = (tmp_path / "driver.log").read_text()
    assert WARNING_TEXT in output, output[-3000:]
