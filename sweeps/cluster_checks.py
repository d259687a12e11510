"""Checks for sweeps on a multi-node Ray cluster (``ray up cluster.yaml``, docs/cluster.md).

Ray Tune no longer syncs trial results to the head node: every trial writes its results and
checkpoints to the sweep's storage path itself, from the node it runs on. A local ``--storage``
path therefore has to be the same shared folder on every node, or be an object-store URI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sweeps.storage import is_remote_storage


def alive_nodes(nodes: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The alive entries of ``ray.nodes()`` (dead nodes stay listed there)."""
    return [node for node in nodes if node.get("Alive")]


def storage_warning(storage: str, nodes: Iterable[Mapping[str, Any]]) -> str | None:
    """A warning when a sweep on a multi-node cluster stores its results on a local path.

    ``storage`` is the ``--storage`` value, ``nodes`` is ``ray.nodes()``. Returns None on a
    single node or with an object-store URI (``s3://``, ``gs://``, any ``scheme://`` but
    ``file://``). The driver cannot tell a node-local folder from a shared filesystem mounted
    at the same path on every node, so it warns in both cases and says how to tell them apart.
    """
    n_alive = len(alive_nodes(nodes))
    if n_alive < 2 or is_remote_storage(storage):
        return None
    return (
        f"warning: this Ray cluster has {n_alive} nodes but --storage {storage} is a local "
        "path. Ray Tune no longer syncs trial results to the head node: each trial writes "
        "its results and checkpoints to that path on the node it runs on, so trials on "
        "other nodes leave them on those nodes' disks (Ray stops them at their first "
        "checkpoint with 'Unable to set up cluster storage'), where this driver, --resume "
        "and the report cannot see them. Use --storage s3://BUCKET/PATH (or gs://...), or a "
        "shared filesystem (e.g. NFS) mounted at the same path on every node; in the latter "
        "case, ignore this warning."
    )


def autoscaler_capacity(config: Mapping[str, Any]) -> dict[str, float]:
    """Resources the cluster can grow to, from a Ray autoscaler config (``cluster.yaml``).

    Each node type's ``resources`` times its ``max_workers`` (the head type counts once
    more), capped per type by the global ``max_workers``. On a ``ray up`` head the config
    is ``~/ray_bootstrap_config.yaml``; ``ray.cluster_resources()`` only shows the nodes
    already up, which is just the head when ``min_workers`` is 0.
    """
    node_types = config.get("available_node_types", {})
    global_max = config.get("max_workers")
    total: dict[str, float] = {}
    for name, node_type in node_types.items():
        count = node_type.get("max_workers", node_type.get("min_workers", 0))
        if global_max is not None:
            count = min(count, global_max)
        count += 1 if name == config.get("head_node_type") else 0
        for key, value in node_type.get("resources", {}).items():
            total[key] = total.get(key, 0.0) + float(value) * count
    return total
