"""W&B's offline run files read with W&B's own protobuf records (tests/sweeps/test_tracking.py,
tests/e2e/test_tracking.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def wandb_records(path: Path) -> Iterator[Any]:
    """The protobuf records of a ``.wandb`` file: W&B's header, then LevelDB's log format
    (32 KiB blocks of chunks, each with a 7-byte header: checksum, length, type)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, payload = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        payload = chunk if kind in (1, 2) else payload + chunk  # full/first, else middle/last
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            yield record


def finished_records(run: Path, timeout: float = 30) -> list[Any]:
    """The records of offline run folder ``run`` once it holds its exit record: W&B's service
    process may still be writing the file just after the sweep exits on a busy machine (at most
    ``timeout`` s; then what is there)."""
    [log] = run.glob("run-*.wandb")
    deadline = time.monotonic() + timeout
    while True:
        try:
            records = list(wandb_records(log))
        except Exception:  # noqa: BLE001 - a record caught mid-write: read again
            records = []
        if any(r.HasField("exit") for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(1)


def run_history(records: list[Any]) -> list[dict[str, Any]]:
    """Each logged step's values, by key."""
    return [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            for r in records if r.HasField("history")]


def run_summary(records: list[Any]) -> dict[str, Any]:
    """The run's summary, as its updates leave it."""
    out: dict[str, Any] = {}
    for r in records:
        if r.HasField("summary"):
            out |= {i.key or "/".join(i.nested_key): json.loads(i.value_json)
                    for i in r.summary.update}
    return out
