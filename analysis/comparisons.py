"""Which trials to compare with which.

The course compares UNet without/with augmentation and DeepLab-ResNet18 without/with ASPP. The
rule behind both is: two trials whose resolved configurations are equal except for one on/off
setting. Implementing the rule (not the course's labels) gives every user grid the same
comparisons for whatever pairs it holds. ``SWITCHES`` lists the on/off settings; adding one is
one entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from segmodels.models import architecture

# Settings that change how a trial runs or is measured, not what it learns.
NOT_COMPARED = frozenset({"num_workers", "num_threads", "log_images", "inference_repeats"})


@dataclass(frozen=True)
class Switch:
    key: str
    title: str  # "augmentation"
    off: str  # legend text of the False side
    on: str
    changes_model: bool = True  # False: same network either way (size, inference equal)
    course: bool = False  # a course question relies on it: say so when no pair exists
    prefer: tuple[tuple[str, Any], ...] = ()  # the course's pair, listed first when present


SWITCHES: dict[str, Switch] = {s.key: s for s in (
    Switch("augment", "augmentation", "without augmentation", "with augmentation",
           changes_model=False, course=True, prefer=(("model", "unet"),)),
    Switch("aspp", "ASPP", "without ASPP", "with ASPP",
           course=True, prefer=(("model", "deeplab"), ("backbone", "resnet18"))),
    Switch("pretrained", "ImageNet weights", "from scratch", "ImageNet-pretrained",
           changes_model=False),
)}


@dataclass(frozen=True)
class SwitchPair:
    """Trials ``off`` and ``on`` differ only in ``switch.key``; ``subject`` names the rest."""

    switch: Switch
    off: str  # trial_id
    on: str
    subject: str


def subject_label(config: dict[str, Any], without: str) -> str:
    """``deeplab/resnet18/aug`` for an ASPP pair: the shared settings, the switch left out."""
    parts = [config.get("model"), config.get("arch"), config.get("encoder"),
             config.get("backbone")]
    if without != "aspp" and isinstance(config.get("aspp"), bool):
        parts.append("aspp" if config["aspp"] else "no-aspp")
    if without != "augment":
        parts.append("aug" if config.get("augment", True) else "no-aug")
    if without != "pretrained" and config.get("pretrained"):
        parts.append("pretrained")
    if config.get("loss", "ce") != "ce":
        parts.append(f"loss={config['loss']}")
    return "/".join(str(p) for p in parts if p)


def find_pairs(configs: dict[str, dict[str, Any]], key: str) -> list[SwitchPair]:
    """Every (off, on) pair of trials equal in all settings but boolean ``key``; the course's
    preferred pair first. Repeated identical configs (same point sampled twice) pair once,
    with their first trial."""
    switch = SWITCHES[key]
    groups: dict[str, dict[bool, str]] = {}
    shared: dict[str, dict[str, Any]] = {}
    for trial_id in sorted(configs):
        config = configs[trial_id]
        if not isinstance(config.get(key), bool):
            continue  # e.g. aspp is None for UNet: no such switch on that model
        rest = {k: v for k, v in config.items() if k != key and k not in NOT_COMPARED}
        signature = json.dumps(rest, sort_keys=True, default=str)
        groups.setdefault(signature, {}).setdefault(config[key], trial_id)
        shared.setdefault(signature, config)
    pairs = [SwitchPair(switch, g[False], g[True], subject_label(shared[s], key))
             for s, g in groups.items() if False in g and True in g]
    _disambiguate(pairs, configs)

    def preferred(pair: SwitchPair) -> bool:
        return all(configs[pair.off].get(k) == v for k, v in switch.prefer)

    return sorted(pairs, key=lambda p: (not preferred(p), p.subject, p.off))


def _disambiguate(pairs: list[SwitchPair], configs: dict[str, dict[str, Any]]) -> None:
    """Pairs with the same subject get the settings that tell them apart (Optuna: the same
    point at another lr and crop). Pairs that differ only in their seed keep one subject: they
    are replicates of one comparison (--seeds), judged together."""
    by_subject: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        by_subject.setdefault(pair.subject, []).append(i)
    for indices in by_subject.values():
        offs = [configs[pairs[i].off] for i in indices]
        differing = sorted({k for cfg in offs for k in cfg if k != "seed" and k not in NOT_COMPARED
                            and len({json.dumps(c.get(k), sort_keys=True, default=str)
                                     for c in offs}) > 1})
        if len(indices) < 2 or not differing:
            continue
        for i in indices:
            cfg = configs[pairs[i].off]
            extra = " ".join(f"{_short(k)}={_value(cfg.get(k))}" for k in differing)
            pairs[i] = SwitchPair(pairs[i].switch, pairs[i].off, pairs[i].on,
                                  f"{pairs[i].subject} {extra}")


def _short(key: str) -> str:
    return {"crop_size": "crop"}.get(key, key)


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def timed_network(config: dict[str, Any]) -> tuple[str, Any, Any]:
    """What fixes a trial's inference time: its architecture (``segmodels.models.architecture``)
    and the frame size it was timed at."""
    options = {k: config.get(k) for k in ("backbone", "aspp", "arch", "encoder")}
    return (architecture(config["model"], **options, **(config.get("model_kwargs") or {})),
            config.get("inference_height"), config.get("inference_width"))


def course_models(trials: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The course's Task-3 set: augmentation on and ASPP on wherever the model has ASPP (UNet
    with augmentation, DeepLab with each backbone), one trial per grid point (its best).
    Falls back to every trial with results when that set has fewer than two models."""
    done = trials[trials["epochs_done"] > 0]
    chosen = done[done["augment"].eq(True) & done["aspp"].ne(False)]
    how = "augmentation on, ASPP on where the model has it (the course's Task-3 set)"
    if len(chosen["label"].unique()) < 2:
        chosen, how = done, "every trial with results (the sweep has no course Task-3 set)"
    best = chosen.sort_values("best_val_miou", ascending=False).drop_duplicates("label")
    return best.sort_values("trial_id").reset_index(drop=True), how
