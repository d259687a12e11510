"""analysis.examples: window search on hand-made masks, and per-class crops of the tiny
sweep's best model for every class its validation images hold."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.examples import build_examples, find_crops

NAMES = ("background", "building", "road", "water")


def test_crops_find_the_well_predicted_and_the_missed_region():
    target = np.zeros((48, 96), np.uint8)
    target[8:40, 8:40] = 1  # a building predicted right
    target[8:40, 56:88] = 2  # a road predicted as water
    pred = target.copy()
    pred[target == 2] = 3
    good, failure, note = find_crops([pred], [target], 1, NAMES)
    assert good.iou == 1.0 and failure is None and "no failure" in note
    good, failure, note = find_crops([pred], [target], 2, NAMES)
    assert good is None and "no good example" in note
    assert failure.recall == 0.0 and failure.confused_with == "water"
    y0, x0, y1, x1 = failure.box
    assert (target[y0:y1, x0:x1] == 2).sum() == failure.pixels > 0
    assert find_crops([pred], [target], 3, NAMES) == (None, None,
                                                        "too few pixels in any window to judge")


@pytest.mark.slow
def test_every_class_in_the_validation_images_gets_crops_or_a_reason(experiment, val_split,
                                                                     tmp_path):
    result = build_examples(experiment, val_split, tmp_path)
    best = experiment.finished.set_index("trial_id")["best_val_miou"]
    assert best[result.trial_id] == best.max()  # the best model (any one of a tie)
    assert any(note.startswith("recomputed val mIoU (global)") for note in result.notes)
    present = set(np.unique(np.concatenate([m.ravel() for m in val_split.masks])).tolist())
    assert [c.class_id for c in result.classes] == list(range(8))
    for c in result.classes:
        if c.class_id not in present:
            assert c.notes == [f"{c.name} never occurs in the validation images"]
            assert c.path is None
            continue
        assert c.notes[0].startswith("val IoU")
        if c.good is None:
            assert any("no good example" in n or "too few pixels" in n for n in c.notes)
        if c.failure is not None:
            assert c.failure.confused_with in val_split_names()
        if c.good or c.failure:
            assert c.path.is_file() and c.path.read_bytes()[:4] == b"\x89PNG"
    assert sum(c.path is not None for c in result.classes) >= 2  # 2 epochs: mostly failures


def val_split_names() -> tuple[str, ...]:
    from segmodels.classes import CLASS_NAMES

    return CLASS_NAMES
