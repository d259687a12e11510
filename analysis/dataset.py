"""The validation images of a sweep, found again from what ``segsweep.json`` recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from segmodels.data import DatasetError, Split, listing_changes, load_dataset
from sweeps.storage import DATA_FILES


def recorded_files(run_dir: Path) -> dict[str, Any] | None:
    """The sweep's ``data_files.json``; None for a sweep stored before it was written."""
    try:
        return json.loads((Path(run_dir) / DATA_FILES).read_text())
    except (OSError, ValueError):
        return None


def load_validation(meta: dict[str, Any], recorded_files: dict[str, Any] | None = None,
                    ) -> tuple[Split | None, list[str]]:
    """(validation split or None, notes). Never raises for a missing or changed dataset: the
    report then says why examples and the baseline are absent. ``recorded_files``: the
    sweep's ``data_files.json`` (split -> file listing), to warn when the files changed."""
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
    if recorded_files is not None:
        changes = listing_changes(recorded_files.get("val", {}), loaded.files.get("val", {}),
                                  times=not loaded.synthetic)
        if changes:
            notes.append(f"WARNING: the validation files in {root} changed since the sweep "
                         f"validated on them ({'; '.join(changes)}): the examples and the "
                         "baseline below are of the files as they are now, not as scored")
    return loaded.val, notes
