"""Ray and the resources a sweep gets: start or join Ray, size each trial, describe the
hardware for the report."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import yaml

from sweeps.cluster_checks import autoscaler_capacity
from sweeps.settings import SweepError, SweepSettings

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
    return ray.init(address="local", num_cpus=settings.num_cpus, include_dashboard=True,
                    dashboard_host="127.0.0.1", log_to_driver=True)


def resources_per_trial(settings: SweepSettings, n_trials: int,
                        cluster: dict[str, float]) -> dict[str, float]:
    """Whole GPU per trial when GPUs exist, else an even share of the CPUs."""
    total_cpu = cluster.get("CPU", 1.0)
    total_gpu = cluster.get("GPU", 0.0)
    gpus = settings.gpus_per_trial if settings.gpus_per_trial is not None else (
        1.0 if total_gpu >= 1 else 0.0)
    if settings.cpus_per_trial is not None:
        cpus = settings.cpus_per_trial
    elif gpus > 0:
        cpus = max(1.0, float(int(total_cpu // max(1, total_gpu / gpus))))
    else:
        cpus = max(1.0, float(int(total_cpu // max(1, min(n_trials, total_cpu)))))
    if cpus > total_cpu:
        raise SweepError(f"--cpus-per-trial {cpus:g} is more than the cluster has "
                         f"({total_cpu:g} CPUs)")
    if gpus > total_gpu:
        raise SweepError(f"--gpus-per-trial {gpus:g} is more than the cluster has "
                         f"({total_gpu:g} GPUs)")
    return {"cpu": cpus, "gpu": gpus}


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


def concurrent_slots(resources: dict[str, float], cluster: dict[str, float]) -> int:
    """How many trials of this size the cluster runs at once (counted over its totals)."""
    slots = cluster.get("CPU", 0.0) // resources["cpu"]  # never 0: prepare refuses 0, auto >= 1
    if resources["gpu"] > 0:
        slots = min(slots, cluster.get("GPU", 0.0) // resources["gpu"])
    return max(1, int(slots))


def reuse_trial_actors(n_trials: int, resources: dict[str, float],
                       cluster: dict[str, float]) -> bool:
    """Reusing a finished trial's process saves the next trial ~10 s of imports, but only when
    a slot runs more than one trial; with one trial per slot it would only let a quick trial's
    process take over a trial whose own process is still starting on another node."""
    return n_trials > concurrent_slots(resources, cluster)
