"""Deterministic synthetic aerial segmentation data in the tiny-floodnet-challenge layout.

The real FloodNet subset needs a download; this module renders a look-alike so that training,
sweeps and tests run fully offline. Scenes are built from shapes with overlapping colour
distributions (trees vs grass, muddy water vs soil/road, dark roofs vs shadows), so a model has
to use texture and context rather than a per-pixel colour lookup.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from segmodels.data.constants import SYNTHETIC_MARKER, cache_root

# Where the CLIs generate the dataset when no --data is given; $SEGSWEEP_CACHE moves it.
SYNTHETIC_DIR = cache_root() / "synthetic"

# Class ids, in segmodels.classes.CLASS_NAMES order.
_BG, _BUILDING, _ROAD, _WATER, _TREE, _VEHICLE, _POOL, _GRASS = range(8)

_PARTIAL = ".synthetic-partial"  # written first, so a crashed run is recognisable as ours
_VERSION = 1
_DEFAULTS = {"n_train": 48, "n_test": 12, "seed": 0, "height": 240, "width": 320}
_SPLITS = ("train", "test")

_ROOFS = np.array([[150, 150, 152], [150, 85, 65], [72, 70, 75], [205, 200, 192], [172, 148, 118]])
_CARS = np.array([[228, 228, 228], [35, 35, 40], [170, 40, 40], [40, 60, 140], [170, 170, 176]])


def _noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Zero-mean, unit-std smooth noise with features about `scale` pixels wide."""
    gh, gw = max(2, round(h / scale) + 2), max(2, round(w / scale) + 2)
    grid = Image.fromarray(rng.random((gh, gw), dtype=np.float32))
    n = np.asarray(grid.resize((w, h), Image.BICUBIC), dtype=np.float32)
    return (n - n.mean()) / (n.std() + 1e-6)


def _draw(h: int, w: int, kind: str, shapes: list, **kw) -> np.ndarray:
    """Rasterise shapes with ImageDraw.<kind> (polygon/ellipse/line) into a boolean HxW mask."""
    canvas = Image.new("L", (w, h), 0)
    method = getattr(ImageDraw.Draw(canvas), kind)
    for shape in shapes:
        method(shape, fill=1, **kw)
    return np.asarray(canvas) > 0


def _dashes(pts: np.ndarray, dash: float) -> list[list[tuple]]:
    """Dash segments (dash on, dash off) along a polyline."""
    out = []
    for a, b in itertools.pairwise(pts):
        d = b - a
        n = float(np.linalg.norm(d))
        out += [
            [tuple(a + t * d), tuple(a + min(t + dash / n, 1) * d)]
            for t in np.arange(0, n, 2 * dash) / n
        ]
    return out


def _rect(cx: float, cy: float, length: float, width: float, angle: float) -> list[tuple]:
    ux, uy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
    vx, vy = -math.sin(angle) * width / 2, math.cos(angle) * width / 2
    return [
        (cx + sx * ux + sy * vx, cy + sx * uy + sy * vy)
        for sx, sy in ((1, 1), (1, -1), (-1, -1), (-1, 1))
    ]


def _shift(m: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate a mask with zero fill (np.roll would wrap shadows around the border)."""
    h, w = m.shape
    out = np.zeros_like(m)
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = m[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _open(label: np.ndarray) -> np.ndarray:
    """Open ground (soil or grass) where buildings, pools and trees may go."""
    return (label == _BG) | (label == _GRASS)


def _paint(img, label, mask, colour, tex, cls=None) -> None:
    img[mask] = np.asarray(colour, np.float32) * tex[mask][:, None]
    if cls is not None:
        label[mask] = cls


def _on_road(rng, roads, h, w):
    """Random (point, unit direction, road width) inside the image, or None."""
    for _ in range(30):
        pts, rw = roads[rng.integers(len(roads))]
        i = rng.integers(len(pts) - 1)
        d = pts[i + 1] - pts[i]
        p = pts[i] + rng.random() * d
        if 0 <= p[0] < w and 0 <= p[1] < h:
            return p, d / np.linalg.norm(d), rw
    return None


def _water(rng, h, w, s) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    edge = _noise(rng, h, w, s / 8)
    kind = rng.random()
    if kind < 0.45:  # river: wavy band crossing the image
        u, v, extent = (xx, yy, h) if rng.random() < 0.5 else (yy, xx, w)
        centre = rng.uniform(0.2, 0.8) * extent + rng.uniform(0.05, 0.2) * s * np.sin(
            2 * np.pi * u / rng.uniform(1.0, 2.5) / s + rng.uniform(0, 2 * np.pi)
        )
        return np.abs(v - centre) + 0.03 * s * edge < rng.uniform(0.06, 0.12) * s
    if kind < 0.75:  # pond
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.1, 0.22, 2) * s
        return np.hypot((xx - cx) / rx, (yy - cy) / ry) + 0.15 * edge < 1
    return np.zeros((h, w), bool)


def _road_lines(rng, h, w, s):
    """Polylines through the image, long enough to exit it on both sides, gently bent."""
    roads, reach, base = [], math.hypot(h, w), rng.uniform(0, math.pi)
    for k in range(rng.choice(4, p=[0.08, 0.45, 0.37, 0.10])):
        ang = base + (math.pi / 2 + rng.normal(0, 0.15) if k % 2 else rng.normal(0, 0.15) * k)
        d, n = np.array([math.cos(ang), math.sin(ang)]), np.array([-math.sin(ang), math.cos(ang)])
        p0 = np.array([rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h])
        t = np.linspace(-reach, reach, 7)
        bend = rng.normal(0, 0.06 * s, 7) * (rng.random() < 0.6)
        roads.append((p0 + t[:, None] * d + bend[:, None] * n, rng.uniform(0.04, 0.08) * s))
    return roads


def render_scene(
    rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Render one aerial scene; returns (image uint8 HxWx3, mask uint8 HxW of class ids)."""
    h, w, s = height, width, min(height, width)
    t_med, t_fine = _noise(rng, h, w, s / 12), _noise(rng, h, w, 2.5)
    img = np.zeros((h, w, 3), np.float32)
    label = np.zeros((h, w), np.uint8)
    sun = rng.uniform(0, 2 * np.pi)
    sdx, sdy = (rng.uniform(0.012, 0.03) * s * np.array([math.cos(sun), math.sin(sun)])).round()
    sdx, sdy = int(sdx), int(sdy)

    # Ground: grass vs bare soil split by low-frequency noise.
    ground = _noise(rng, h, w, s / 3) + 0.4 * _noise(rng, h, w, s / 8)
    grass = ground > np.quantile(ground, rng.uniform(0.25, 0.65))
    grass_c = ([122, 130, 74] if rng.random() < 0.3 else [92, 124, 62]) + rng.normal(0, 9, 3)
    soil_c = ([148, 133, 104] if rng.random() < 0.6 else [118, 104, 84]) + rng.normal(0, 10, 3)
    _paint(img, label, grass, grass_c, 1 + 0.09 * t_med + 0.07 * t_fine, _GRASS)
    _paint(img, label, ~grass, soil_c, 1 + 0.10 * t_med + 0.08 * t_fine, _BG)

    # Water, from bluish to muddy flood water (overlaps soil and road greys).
    mud = rng.random()
    water_c = (1 - mud) * np.array([70, 96, 112]) + mud * np.array([128, 114, 86])
    water_c += rng.normal(0, 8, 3)
    water_tex = 1 + 0.05 * t_med + 0.03 * t_fine
    _paint(img, label, _water(rng, h, w, s), water_c, water_tex, _WATER)

    # Roads (bridges may cross water), with dashed centre lines on some.
    roads = _road_lines(rng, h, w, s)
    for pts, rw in roads:
        g = rng.uniform(95, 160)
        m = _draw(h, w, "line", [[tuple(p) for p in pts]], width=max(2, round(rw)), joint="curve")
        road_c = [g, g * 0.99, g * rng.uniform(0.94, 1.04)]
        _paint(img, label, m, road_c, 1 + 0.04 * t_med + 0.05 * t_fine, _ROAD)
        if rng.random() < 0.6:
            dashes = _dashes(pts, max(2.0, 0.03 * s))
            lane = _draw(h, w, "line", dashes, width=max(1, round(rw * 0.08)))
            img[lane & m] = rng.uniform(190, 225)

    # Occasional flood patches over low-lying ground.
    if rng.random() < 0.2:
        low = _noise(rng, h, w, s / 4)
        flood = (low > np.quantile(low, rng.uniform(0.85, 0.95))) & _open(label)
        _paint(img, label, flood, water_c, water_tex, _WATER)

    # Buildings (mostly lining roads) with cast shadows and optional back-yard pools.
    shadow = np.zeros((h, w), bool)
    with_pools, theta0 = rng.random() < 0.45, rng.uniform(0, np.pi)
    placed, target = 0, rng.integers(2, 11)
    for _ in range(4 * target):
        if placed >= target:
            break
        length, breadth = rng.uniform(0.08, 0.16) * s, rng.uniform(0.06, 0.12) * s
        hit = _on_road(rng, roads, h, w) if roads and rng.random() < 0.75 else None
        if hit is not None:
            p, d, rw = hit
            parallel = rng.random() < 0.7
            ang = math.atan2(d[1], d[0]) + (0 if parallel else math.pi / 2)
            depth = breadth if parallel else length
            out = np.array([-d[1], d[0]]) * rng.choice([-1, 1])
            c = p + out * (rw / 2 + rng.uniform(0.02, 0.06) * s + depth / 2)
        else:
            ang = theta0 + rng.normal(0, 0.1) if rng.random() < 0.7 else rng.uniform(0, np.pi)
            c, depth = np.array([rng.uniform(0, w), rng.uniform(0, h)]), breadth
            out = np.array([-math.sin(ang), math.cos(ang)])
        corners = _rect(*c, length, breadth, ang)
        bm = _draw(h, w, "polygon", [corners])
        if not bm.any() or np.any(bm & ~_open(label)):
            continue
        ys, xs = np.nonzero(bm)
        ridge = ((xs - c[0]) * -math.sin(ang) + (ys - c[1]) * math.cos(ang)) > 0
        roof = _ROOFS[rng.integers(len(_ROOFS))] * rng.uniform(0.85, 1.15) + rng.normal(0, 5, 3)
        img[ys, xs] = roof * (1 + 0.06 * t_fine[ys, xs] + np.where(ridge, 0.07, -0.07))[:, None]
        label[bm] = _BUILDING
        shadow |= _draw(h, w, "polygon", [[(x + sdx, y + sdy) for x, y in corners]])
        placed += 1
        for side in rng.permutation([-1, 1]) if with_pools and rng.random() < 0.7 else ():
            # Back yard first, else front yard; the deck must sit on open ground.
            pl, pw = rng.uniform(0.035, 0.06) * s, rng.uniform(0.025, 0.045) * s
            pc = c + side * out * (depth / 2 + rng.uniform(0.03, 0.05) * s + pl / 2)
            pc += rng.normal(0, 0.02 * s, 2)
            deck = _draw(h, w, "polygon", [_rect(*pc, pl + 0.03 * s, pw + 0.03 * s, ang)])
            if deck.any() and not np.any(deck & ~_open(label)):
                rx, ry = 0.65 * min(pl, pw), 0.5 * min(pl, pw)
                oval = [pc[0] - rx, pc[1] - ry, pc[0] + rx, pc[1] + ry]
                pm = (
                    _draw(h, w, "polygon", [_rect(*pc, pl, pw, ang)])
                    if rng.random() < 0.5
                    else _draw(h, w, "ellipse", [oval])
                )
                _paint(img, label, deck, rng.uniform(185, 215, 3), 1 + 0.04 * t_fine, _BG)
                pool_c = [70, 175, 205] if rng.random() < 0.6 else [58, 140, 158]
                pool_c = pool_c + rng.normal(0, 12, 3)
                _paint(img, label, pm & deck, pool_c, 1 + 0.05 * t_fine, _POOL)
                break

    # Vehicles: small rectangles in the lanes of roads.
    for _ in range(rng.poisson(rng.uniform(1.5, 6)) if roads else 0):
        hit = _on_road(rng, roads, h, w)
        if hit is None:
            break
        p, d, rw = hit
        c = p + np.array([-d[1], d[0]]) * rng.choice([-1, 1]) * rng.uniform(0.12, 0.3) * rw
        vl = max(3.0, rng.uniform(0.03, 0.045) * s)
        corners = _rect(*c, vl, max(2.0, 0.45 * vl), math.atan2(d[1], d[0]))
        vm = _draw(h, w, "polygon", [corners]) & (label == _ROAD)
        shadow |= _shift(vm, sdy // 2, sdx // 2)
        car_c = _CARS[rng.integers(len(_CARS))] + rng.normal(0, 10, 3)
        _paint(img, label, vm, car_c, 1 + 0.04 * t_fine, _VEHICLE)

    # Trees: clusters of circles on open ground; darker than grass on average, not always.
    free = np.flatnonzero(_open(label))
    circles = []
    for _ in range(rng.integers(4, 22) if free.size else 0):
        cy, cx = divmod(int(free[rng.integers(free.size)]), w)
        rc = rng.uniform(0.025, 0.06) * s
        for _ in range(rng.integers(1, 7)):
            r = rng.uniform(0.4, 1.0) * rc
            x, y = cx + rng.normal(0, rc), cy + rng.normal(0, rc)
            circles.append([x - r, y - r, x + r, y + r])
    canopy = _draw(h, w, "ellipse", circles)
    canopy &= _open(label)
    shadow |= _shift(canopy, sdy, sdx)
    tree_c = np.array([58, 86, 46]) + rng.normal(0, 8, 3)
    _paint(img, label, canopy, tree_c, 1 + 0.08 * t_med + 0.16 * t_fine, _TREE)
    # Darken the canopy rim facing away from the sun for a bit of relief.
    img[canopy & ~_shift(canopy, -int(np.sign(sdy)) * 2, -int(np.sign(sdx)) * 2)] *= 0.8
    img[shadow & (label != _BUILDING) & ~canopy] *= rng.uniform(0.5, 0.65)

    # Per-image illumination/colour jitter, light blur and sensor noise.
    img *= (1 + 0.06 * _noise(rng, h, w, s / 2))[..., None]
    img *= rng.uniform(0.8, 1.15) * rng.normal(1, 0.04, 3).astype(np.float32)
    blurred = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.4, 0.9))
    )
    out = np.asarray(blurred, np.float32)
    out += rng.uniform(2, 6) * rng.standard_normal((h, w, 3), np.float32)
    return np.clip(out, 0, 255).astype(np.uint8), label


def read_marker(root: str | Path) -> dict | None:
    """Marker contents, or None when `root` holds no complete synthetic dataset."""
    try:
        return json.loads((Path(root) / SYNTHETIC_MARKER).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_synthetic(root: str | Path) -> bool:
    """True if `root` was fully written by `generate` (the marker is written last)."""
    return read_marker(root) is not None


def _clear(root: Path) -> None:
    """Remove a previous synthetic dataset, but never touch data we did not write."""
    ours = (root / SYNTHETIC_MARKER).exists() or (root / _PARTIAL).exists()
    existing = [root / sp for sp in _SPLITS if (root / sp).exists()]
    if existing and not ours and any(any(p.iterdir()) for p in existing):
        raise FileExistsError(f"{root} holds a non-synthetic dataset; refusing to overwrite it")
    (root / SYNTHETIC_MARKER).unlink(missing_ok=True)
    for p in existing:
        shutil.rmtree(p)


def generate(
    root: str | Path,
    *,
    n_train: int = 48,
    n_test: int = 12,
    seed: int = 0,
    height: int = 240,
    width: int = 320,
) -> Path:
    """Write a fresh synthetic dataset under `root`; the marker goes last so partial runs show."""
    for name, value, low in (
        ("n_train", n_train, 1),
        ("n_test", n_test, 1),
        ("height", height, 64),
        ("width", width, 64),
    ):
        if int(value) < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _clear(root)
    (root / _PARTIAL).touch()
    for split_id, (split, n) in enumerate(zip(_SPLITS, (n_train, n_test), strict=True)):
        (root / split / "image").mkdir(parents=True)
        (root / split / "mask").mkdir(parents=True)
        for i in range(n):
            image, mask = render_scene(np.random.default_rng([seed, split_id, i]), height, width)
            Image.fromarray(image).save(root / split / "image" / f"{i:06d}.jpg", quality=95)
            Image.fromarray(mask).save(root / split / "mask" / f"{i:06d}.png")
    marker = {
        "generator": "segsweep.synthetic",
        "version": _VERSION,
        "seed": seed,
        "n_train": n_train,
        "n_test": n_test,
        "height": height,
        "width": width,
    }
    (root / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2))
    (root / _PARTIAL).unlink()
    return root


def ensure_generated(root: str | Path, **kwargs) -> Path:
    """Generate only when the marker is missing or records other parameters (cheap otherwise)."""
    unknown = set(kwargs) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown parameters: {sorted(unknown)}")
    params = {**_DEFAULTS, **kwargs}
    marker = read_marker(root)
    wanted = {"generator": "segsweep.synthetic", "version": _VERSION, **params}
    if marker and all(marker.get(k) == v for k, v in wanted.items()):
        return Path(root)
    return generate(root, **params)
