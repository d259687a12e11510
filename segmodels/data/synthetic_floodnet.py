"""The original FloodNet layout at full resolution (4000x3000), made cheaply for tests and
benchmarks of full-resolution loading.

Each scene is rendered small by ``synthetic.render_scene`` and enlarged to the full size (image
bilinear, mask nearest); ``grain`` adds per-pixel noise so the JPEGs carry photo-like detail
(a few MB each) and cost what real photos cost to decode. Masks hold FloodNet's 10 raw class
ids (``NAME_lab.png``), buildings and roads as their non-flooded kind. The marker file makes
``synthetic.is_synthetic`` true, so reports say the data is generated.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from segmodels.data.constants import SYNTHETIC_MARKER
from segmodels.data.synthetic import render_scene

# our class id -> FloodNet's raw id (segmodels.data.FLOODNET_TO_OURS maps it back)
OURS_TO_FLOODNET = np.array([0, 2, 4, 5, 6, 7, 8, 9], dtype=np.uint8)


def generate_floodnet(root: str | Path, *, n_train: int = 3, n_val: int = 1, width: int = 4000,
                      height: int = 3000, scene_scale: int = 16, grain: int = 0,
                      seed: int = 0) -> Path:
    """Write ``ROOT/{train,val}/{split}-org-img/NAME.jpg`` + ``{split}-label-img/NAME_lab.png``
    of ``width`` x ``height``, scenes rendered at 1/``scene_scale`` of that."""
    root = Path(root)
    small_h, small_w = max(64, height // scene_scale), max(64, width // scene_scale)
    for split_id, (split, n) in enumerate((("train", n_train), ("val", n_val))):
        images, masks = root / split / f"{split}-org-img", root / split / f"{split}-label-img"
        images.mkdir(parents=True, exist_ok=True)
        masks.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rng = np.random.default_rng([seed, split_id, i])
            image, mask = render_scene(rng, small_h, small_w)
            big = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
            if grain:
                noisy = np.asarray(big, np.int16) + rng.integers(-grain, grain + 1,
                                                                 (height, width, 3), np.int16)
                big = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
            name = f"{split_id + 1}{i:04d}"
            big.save(images / f"{name}.jpg", quality=90)
            label = Image.fromarray(OURS_TO_FLOODNET[mask]).resize((width, height),
                                                                   Image.Resampling.NEAREST)
            label.save(masks / f"{name}_lab.png", compress_level=1)
    marker = {"generator": "segsweep.synthetic_floodnet", "n_train": n_train, "n_val": n_val,
              "width": width, "height": height, "grain": grain, "seed": seed}
    (root / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2))
    return root
