"""The validation images of a sweep, found again from what ``segsweep.json`` recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segmodels.data import DatasetError, Split, load_dataset


def load_validation(meta: dict[str, Any]) -> tuple[Split | None, list[str]]:
    """(validation split or None, notes). Never raises for a missing or changed dataset: the
    report then says why examples and the baseline are absent."""
    data = meta.get("data") or {}
    root = data.get("root")
    if not root:
        return None, ["segsweep.json records no dataset folder"]
    if not Path(root).is_dir():
        return None, [f"dataset folder {root} is not on this machine: no examples, no baseline"]
    try:
        # at the sweep's --image-size: the examples are crops of what the trials validated on
        loaded = load_dataset(root, splits=("val",), image_size=data.get("image_size"))
    except DatasetError as exc:
        return None, [f"dataset {root} no longer loads: {exc}"]
    notes = []
    if data.get("val") is not None and len(loaded.val) != data["val"]:
        notes.append(f"dataset {root} now has {len(loaded.val)} validation images; the sweep "
                     f"validated on {data['val']}: examples and baseline may not match")
    return loaded.val, notes
