"""Ray and the resources a sweep gets: start or join Ray, size each trial, describe the
hardware for the report."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from segmodels.training import TrialConfig
from sweeps.cluster_checks import autoscaler_capacity
from sweeps.packing import WHOLE_GPU, cpus_for_share, trial_resources
from sweeps.search import split_tune_config
from sweeps.settings import AUTO, SweepError, SweepSettings

AUTOSCALER_CONFIG = "~/ray_bootstrap_config.yaml"  # written by `ray up` on the head node


def start_ray(settings: SweepSettings):
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Checkpointing every epoch forces Tune's state snapshots by design; don't warn each time.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if settings.address or os.environ.get("RAY_ADDRESS"):
        address = settings.address or os.environ["RAY_ADDRESS"]
        try:
            return ray.init(address=address, log_to_driver=True)
        except ConnectionError as exc:
            raise SweepError(f"--address {address}: no Ray cluster answers there ({exc}); "
                             "start one (`ray start --head` or `ray up cluster.yaml`), or "
                             "drop --address (and RAY_ADDRESS) to run on this machine") from exc
    # address="local": never attach by accident to a cluster someone started on this machine.
    return ray.init(address="local", num_cpus=settings.num_cpus,
                    include_dashboard=settings.dashboard, dashboard_host="127.0.0.1",
                    log_to_driver=True)


def resources_per_trial(settings: SweepSettings, n_trials: int, cluster: dict[str, float],
                        configs: Mapping[str, TrialConfig] | None = None) -> dict[str, Any]:
    """Each trial's Ray request, ``{"cpu", "gpu"}``. Where GPUs exist, ``--gpus-per-trial
    auto`` gives each grid point (``configs``: label -> its config) its architecture's share
    (sweeps/packing.py); when the points' requests differ, ``"by_point"`` holds each label's
    and the top level is the largest. An explicit number is every trial's. CPUs follow the
    GPU share; without GPUs every trial gets an even share of the CPUs."""
    total_cpu = cluster.get("CPU", 1.0)
    total_gpu = cluster.get("GPU", 0.0)
    if settings.cpus_per_trial is not None and settings.cpus_per_trial > total_cpu:
        raise SweepError(f"--cpus-per-trial {settings.cpus_per_trial:g} is more than the "
                         f"cluster has ({total_cpu:g} CPUs)")
    if settings.gpus_per_trial == AUTO and total_gpu >= 1 and configs:
        by_point: dict[str | None, dict[str, float]] = {
            label: trial_resources(cfg, total_cpu, total_gpu) for label, cfg in configs.items()}
    else:
        gpus = (float(settings.gpus_per_trial) if settings.gpus_per_trial != AUTO
                else WHOLE_GPU if total_gpu >= 1 else 0.0)
        if gpus > total_gpu:
            raise SweepError(f"--gpus-per-trial {gpus:g} is more than the cluster has "
                             f"({total_gpu:g} GPUs)")
        cpus = (cpus_for_share(gpus, total_cpu, total_gpu) if gpus > 0
                else max(1.0, float(int(total_cpu // max(1, min(n_trials, total_cpu))))))
        by_point = {None: {"cpu": cpus, "gpu": gpus}}
    if settings.cpus_per_trial is not None:
        by_point = {label: {**r, "cpu": settings.cpus_per_trial} for label, r in by_point.items()}
    largest = max(by_point.values(), key=lambda r: (r["gpu"], r["cpu"]))
    if all(r == largest for r in by_point.values()):
        return largest
    return {**largest, "by_point": by_point}


class PointRequests:
    """Tune's per-config resources under auto packing: the request of the trial's grid point,
    which Tune's config names."""

    def __init__(self, by_point: dict[str, dict[str, float]], default: dict[str, float]):
        self.by_point, self.default = by_point, default

    def __call__(self, config: dict[str, Any]) -> dict[str, float]:
        return self.by_point.get(split_tune_config(config)[0], self.default)


def trial_request(resources: dict[str, Any]) -> dict[str, float] | PointRequests:
    """What ``tune.with_resources`` takes for ``resources_per_trial``'s answer."""
    default = {"cpu": resources["cpu"], "gpu": resources["gpu"]}
    by_point = resources.get("by_point")
    return PointRequests(by_point, default) if by_point else default


def describe_resources(resources: dict[str, Any], configs: Mapping[str, TrialConfig]) -> str:
    """The start line's account: one request for every trial, or each architecture's share."""
    by_point = resources.get("by_point")
    if not by_point:
        return f"{resources['cpu']:g} CPU / {resources['gpu']:g} GPU each"
    groups: dict[tuple[float, float], list[str]] = {}
    for label, r in by_point.items():
        names = groups.setdefault((r["gpu"], r["cpu"]), [])
        name = configs[label].architecture
        if name not in names:
            names.append(name)
    return "GPU shared by architecture (--gpus-per-trial auto): " + "; ".join(
        f"{gpu:g} GPU / {cpu:g} CPU for {', '.join(names)}"
        for (gpu, cpu), names in sorted(groups.items()))


def cluster_capacity(settings: SweepSettings) -> dict[str, float]:
    """What the cluster has now, or can scale up to under Ray's autoscaler: with
    ``min_workers: 0`` only the (trial-free) head is up when the sweep starts."""
    import ray

    capacity = dict(ray.cluster_resources())
    bootstrap = Path(AUTOSCALER_CONFIG).expanduser()
    if (settings.address or os.environ.get("RAY_ADDRESS")) and bootstrap.is_file():
        for key, value in autoscaler_capacity(yaml.safe_load(bootstrap.read_text())).items():
            capacity[key] = max(capacity.get(key, 0.0), value)
    return capacity


def hardware_summary(cluster: dict[str, float]) -> dict[str, Any]:
    import torch

    return {
        "host": platform.node(), "platform": platform.platform(),
        "cluster_cpus": cluster.get("CPU", 0), "cluster_gpus": cluster.get("GPU", 0),
        "nodes": int(sum(1 for k in cluster if k.startswith("node:")
                         and not k.startswith("node:__internal"))),
        "driver_gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }


def concurrent_slots(resources: dict[str, Any], cluster: dict[str, float]) -> int:
    """How many trials of this size the cluster runs at once (counted over its totals; under
    auto packing, of the points' mean request)."""
    requests = list((resources.get("by_point") or {}).values()) or [resources]
    cpus = sum(r["cpu"] for r in requests) / len(requests)  # never 0: prepare refuses 0
    gpus = sum(r["gpu"] for r in requests) / len(requests)
    slots = cluster.get("CPU", 0.0) // cpus
    if gpus > 0:
        slots = min(slots, cluster.get("GPU", 0.0) // gpus)
    return max(1, int(slots))


def reuse_trial_actors(n_trials: int, resources: dict[str, Any],
                       cluster: dict[str, float]) -> bool:
    """Reusing a finished trial's process saves the next trial ~10 s of imports, but only when
    a slot runs more than one trial; with one trial per slot it would only let a quick trial's
    process take over a trial whose own process is still starting on another node."""
    return n_trials > concurrent_slots(resources, cluster)
