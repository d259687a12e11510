"""Synthetic datasets, grid files and work folders the benchmarks run on."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .paths import OUT

# The homework's networks, by the labels the benchmarks print: create_model's arguments.
HOMEWORK_MODELS: dict[str, dict[str, Any]] = {
    "unet": {"model": "unet"},
    "deeplab/resnet18/no-aspp": {"model": "deeplab", "backbone": "resnet18", "aspp": False},
    "deeplab/resnet18/aspp": {"model": "deeplab", "backbone": "resnet18", "aspp": True},
    "deeplab/vgg11_bn/aspp": {"model": "deeplab", "backbone": "vgg11_bn", "aspp": True},
    "deeplab/mobilenet_v3_small/aspp": {"model": "deeplab", "backbone": "mobilenet_v3_small",
                                        "aspp": True},
}


def homework_cpus_per_trial() -> int:
    """CPUs per trial the product gives the homework grid on this machine (its even share)."""
    from sweeps.grids import load_grid
    from sweeps.resources import resources_per_trial
    from sweeps.settings import SweepSettings

    n = len(load_grid("homework").points)
    return int(resources_per_trial(SweepSettings(), n, {"CPU": os.cpu_count() or 1})["cpu"])


@contextlib.contextmanager
def counting_decodes() -> Iterator[list[int]]:
    """``[n]``: the files this process's dataset loads decode while inside (their decoding
    workers included), read through the loader's one call that decodes."""
    from segmodels.data import dataset

    seen, decode_pairs = [0], dataset.decode_pairs

    def counted(*args, **kwargs):
        results = decode_pairs(*args, **kwargs)
        seen[0] += sum(r.files_decoded for r in results)
        return results

    dataset.decode_pairs = counted
    try:
        yield seen
    finally:
        dataset.decode_pairs = decode_pairs


def synthetic_data(n_train: int, n_test: int, height: int = 240, width: int = 320,
                   distinct: int | None = None, seed: int = 0) -> Path:
    """A synthetic dataset (``segmodels.data.synthetic.generate``) cached in ``bench/out/data``.

    ``distinct`` < n: only that many scenes per split are rendered and the others are copies
    of them under new names (rendering 1000x750 scenes is slow); every file is still decoded
    into its own array, so the decoded dataset has its full size.
    """
    from segmodels.data import SYNTHETIC_MARKER, synthetic

    distinct = min(distinct or max(n_train, n_test), max(n_train, n_test))
    name = f"syn_{n_train}_{n_test}_{height}x{width}_s{seed}_d{distinct}"
    root = OUT / "data" / name
    if synthetic.is_synthetic(root):
        return root
    tmp = OUT / "data" / f".{name}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    synthetic.generate(tmp, n_train=min(n_train, distinct), n_test=min(n_test, distinct),
                       seed=seed, height=height, width=width)
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(distinct, n):
            for kind, ext in (("image", "jpg"), ("mask", "png")):
                src = tmp / split / kind / f"{i % distinct:06d}.{ext}"
                shutil.copyfile(src, tmp / split / kind / f"{i:06d}.{ext}")
    marker = tmp / SYNTHETIC_MARKER
    record = json.loads(marker.read_text())
    record.update(n_train=n_train, n_test=n_test, distinct=distinct)
    marker.write_text(json.dumps(record, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def write_grid(folder: Path, name: str, axes: dict[str, list], fixed: dict[str, Any]) -> str:
    """A YAML grid file for ``tune_app.py --grid`` (the sweep is named after ``name``)."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"axes": axes, "fixed": fixed}, sort_keys=False))
    return str(path)


@contextlib.contextmanager
def workdir(args: argparse.Namespace, name: str) -> Iterator[Path]:
    """A scratch folder for sweeps: temporary, or ``bench/out/NAME`` with --keep."""
    if args.keep:
        path = OUT / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"segsweep-bench-{name}-") as tmp:
        yield Path(tmp)
