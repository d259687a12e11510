"""The models exported from a sweep (``segsweep export``, ``deploy``), read back from their
``model.json`` so the report can show each one's check and deployed latency."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sweeps.storage import EXPORT_DIR, MODEL_FILE

COLUMNS = ("trial_id", "trial", "folder", "format", "passed", "agreement", "runtime",
           "exported_ms", "pytorch_ms", "frame", "threads")


def read_exports(run_dir: str | Path) -> pd.DataFrame:
    """One row per export folder under RUN/export/; unreadable descriptions are skipped."""
    rows = []
    for card_file in sorted(Path(run_dir, EXPORT_DIR).glob(f"*/{MODEL_FILE}")):
        try:
            card = json.loads(card_file.read_text())
            latency = card["latency_ms_per_frame"]
            runtime = next(name for name in latency if name != "pytorch")
            exported, reference = latency[runtime], latency.get("pytorch", {})
            rows.append({
                "trial_id": card["trained"]["trial_id"], "trial": card["trained"]["trial"],
                "folder": str(card_file.parent), "format": card["export_format"],
                "passed": bool(card["passed_check"]), "agreement": card["check"]["agreement"],
                "runtime": runtime, "exported_ms": exported["median_ms"],
                "pytorch_ms": reference.get("median_ms"),
                "frame": f"{exported['width']}x{exported['height']}",
                "threads": exported["threads"]})
        except (OSError, ValueError, KeyError, TypeError, StopIteration):
            continue
    return pd.DataFrame(rows, columns=list(COLUMNS))
