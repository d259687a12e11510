"""What ``--pretrained`` means for each model, and whether its weights can be had.

- ``unet`` (the course's): has no pretrained weights; it trains from scratch.
- ``deeplab``: torchvision's ImageNet weights of its backbone, kept in the torch hub cache
  (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``).
- ``smp``: smp's ImageNet weights of its encoder (another set where smp has no ``imagenet`` one,
  e.g. ``instagram``), kept in the Hugging Face cache (``$HF_HOME/hub``, default
  ``~/.cache/huggingface/hub``); a ``tu-`` encoder loads timm's default pretrained weights.
  An encoder without any trains from scratch.

The runner asks ``weights_of`` for every grid point and fetches each set once (``fetch_all``:
the cache, else a download into it) before Ray starts, so an offline machine gets one error
naming every missing set instead of each trial failing inside Ray, and trials then read the
cache instead of downloading the same file at once.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from segmodels.models import backbones, smp_models
from segmodels.models.backbones import PretrainedWeightsUnavailable
from segmodels.models.registry import naming_defaults


@dataclass(frozen=True)
class Weights:
    """One set of pretrained weights: ``what`` names it (and is unique per set)."""

    what: str  # e.g. "deeplab backbone resnet18 (torchvision ResNet18_Weights.IMAGENET1K_V1)"
    fetch: Callable[[], None] = field(compare=False)  # cache, else download; raises if neither
    advice: str = field(compare=False)  # how to pre-download them, or do without


def weights_of(model: str, **options: Any) -> Weights | None:
    """The weights ``create_model(model, **options)`` loads when pretrained; None: it has none
    and trains from scratch."""
    finder = _FINDERS.get(model)
    return finder(options) if finder else None


def fetch_all(weights: Iterable[Weights]) -> None:
    """Fetch each set once; PretrainedWeightsUnavailable names every set that failed."""
    failed = []
    for w in dict.fromkeys(weights):  # each set once, in order
        try:
            w.fetch()
        except Exception as exc:  # noqa: BLE001 - three download stacks (urllib, httpx, hub)
            # raise their own errors; each means "cannot be had" and is named with its type
            failed.append(f"{w.what}: {type(exc).__name__}: {_first_line(exc)}. {w.advice}")
    if failed:
        raise PretrainedWeightsUnavailable(
            f"--pretrained: {len(failed)} set(s) of pretrained weights are neither in the cache "
            f"nor downloadable: " + " | ".join(failed))


def _deeplab(options: Mapping[str, Any]) -> Weights:
    name = options.get("backbone") or naming_defaults("deeplab")["backbone"]
    weights = backbones.get_backbone_spec(name).weights
    return Weights(f"deeplab backbone {name} (torchvision {weights})",
                   lambda: _torch_hub_file(weights.url), backbones.weights_advice(weights))


def _smp(options: Mapping[str, Any]) -> Weights | None:
    encoder = options.get("encoder") or naming_defaults("smp")["encoder"]
    which = smp_models.encoder_weights(encoder)
    if which is None:
        return None
    advice = smp_models.weights_advice(encoder)
    if encoder.startswith(smp_models.TIMM_PREFIX):
        return Weights(f"smp encoder {encoder} (timm)", lambda: _timm_files(encoder), advice)
    import segmentation_models_pytorch as smp

    source = smp.encoders.encoders[encoder]["pretrained_settings"][which]
    repo, revision = source["repo_id"], source["revision"]
    return Weights(f"smp encoder {encoder} ({repo})",
                   lambda: _hf_files(repo, ("config.json", "model.safetensors"), revision),
                   advice)


_FINDERS: dict[str, Callable[[Mapping[str, Any]], Weights | None]] = {
    "deeplab": _deeplab,
    "smp": _smp,
}


def _torch_hub_file(url: str) -> None:
    """Where torch.hub.load_state_dict_from_url looks (and so torchvision and timm)."""
    name = os.path.basename(urllib.parse.urlparse(url).path)
    path = os.path.join(torch.hub.get_dir(), "checkpoints", name)
    if os.path.isfile(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    match = torch.hub.HASH_REGEX.search(name)
    torch.hub.download_url_to_file(url, path, match.group(1) if match else None, progress=False)


def _hf_files(repo: str, filenames: tuple[str, ...], revision: str | None = None) -> None:
    """Each file from the Hugging Face cache, else downloaded into it. One request without
    retries asks the Hub first: offline, hf_hub_download alone retries for ~25 s per file."""
    from huggingface_hub import (
        get_hf_file_metadata,
        hf_hub_download,
        hf_hub_url,
        try_to_load_from_cache,
    )

    for filename in filenames:
        if not isinstance(try_to_load_from_cache(repo, filename, revision=revision), str):
            get_hf_file_metadata(hf_hub_url(repo, filename, revision=revision))
            hf_hub_download(repo, filename, revision=revision)


def _timm_files(encoder: str) -> None:
    """The file timm loads for a tu- encoder: from the Hugging Face Hub where its pretrained
    config names a repository, else its URL (torch hub cache)."""
    import timm

    cfg = timm.models.get_pretrained_cfg(encoder[len(smp_models.TIMM_PREFIX):])
    if cfg.hf_hub_id:
        repo, _, revision = cfg.hf_hub_id.partition("@")
        _hf_files(repo, (cfg.hf_hub_filename or "model.safetensors",), revision or None)
    else:
        _torch_hub_file(cfg.url)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"
