"""Intervals, paired differences and p-values for "answers with error bars".

Every compared number in a report should carry a 95% interval, and a comparison should only name
a winner when its interval excludes 0. Two sources of noise sit behind one sweep point:

* **Seeds.** The same configuration trained with another seed scores differently. With ``n``
  seeds ``t_interval`` gives the Student-t interval of the mean, and ``paired_t_difference`` the
  one of a seed-matched difference (the seeds are the pairs).
* **Validation images.** The score is measured on a finite sample of images; another sample of
  the same size would give another score. ``bootstrap_miou`` resamples the images (Efron &
  Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 13: percentile intervals), and
  ``paired_bootstrap_difference`` resamples the same image indices for two models evaluated on
  the same images, so what the images share cancels in the difference.

mIoU is computed from per-image confusion matrices ``cms[i, t, p]`` (pixels of image ``i`` with
target class ``t`` predicted as ``p``), in the two definitions ``segmodels.metrics`` uses:
``"global"`` (sum the images' matrices, IoU per class, classes absent from both target and
prediction left out) and ``"per_image"`` (the course's mean over images of the per-image mean of
``(tp + eps) / (union + eps)``). The global mIoU is not a mean over images, so the bootstrap
recomputes it from resampled sums rather than averaging per-image values.

**Seeds and images together** (``combine_seed_and_image``). Bouthillier et al. (MLSys 2021,
"Accounting for variance in machine learning benchmarks") show that the seed and the data
sample are both sizeable sources of variance and that an honest comparison accounts for both.
The design here is *crossed*, not nested: every seed's model is evaluated on the same validation
images, so the image-sampling error is shared by all seeds and does not average away over
seeds. A nested bootstrap (resample seeds, then images independently within each seed) would
divide that shared error by the number of seeds and be too narrow. A two-way nonparametric
bootstrap (resample seeds and images independently) handles the crossing, but a sweep has 3-5
seeds, and a percentile bootstrap over so few values is far too narrow: it shrinks the spread
by ``sqrt((S - 1) / S)`` and has no small-sample (Student-t) widening; with 3 seeds its 95%
interval is about 0.4 times as wide as the t-interval. So the two levels are combined as two
independent errors, each treated where it is reliable:

    replicate_b = mean over seeds s of mIoU(seed s, images resampled with indices idx_b)
                  + sd(per-seed mIoU) / sqrt(S) * T_b,        T_b ~ Student-t(S - 1)

and the interval is the percentile interval of the replicates around the mean over seeds of
the full-data mIoU. With no image noise it is the seed t-interval (up to Monte Carlo error);
with one seed the seed term is absent (it cannot be estimated) and it is exactly
``bootstrap_miou`` with the same ``seed``. Adding independent symmetric unimodal noise to the
t term widens its central interval (Birnbaum 1948, "On random variables with comparable
peakedness"), so the result is at least as wide as the seed t-interval up to Monte Carlo error
and asymmetry of the image distribution. The seed-by-image interaction is counted in both terms,
which errs on the wide side (as Owen's 2007 pigeonhole bootstrap for crossed data does).

p-values: ``paired_t_p_value`` (scipy's ``ttest_rel``), ``paired_bootstrap_p_value`` (the
two-sided bootstrap share, see ``two_sided_bootstrap_p``; it cannot go below ``2 / (B + 1)``)
and ``paired_bootstrap_normal_p`` (the normal approximation to the same replicates, without
that floor: what the report's tie groups use under Holm); ``holm`` adjusts a family of them.
``verdict`` turns an interval of a difference into the sentence a report prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Definition = Literal["global", "per_image"]
DEFINITIONS: tuple[str, ...] = ("global", "per_image")
COURSE_EPS = 1e-6  # the course's per-image smoothing, as in segmodels.metrics.course_scores
_CHUNK = 1024  # resamples computed at once: bounds memory to _CHUNK x n_images x K^2 floats


@dataclass(frozen=True)
class Interval:
    """A point estimate with its ``confidence`` interval; ``low``/``high`` nan when unavailable.

    ``method`` says how it was obtained (a report prints it next to the number); ``n`` is the
    sample size at the level that was resampled or averaged (seeds, pairs or images).
    """

    estimate: float
    low: float
    high: float
    method: str
    n: int
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not self.method:
            raise ValueError("Interval.method must say how the interval was obtained")
        if self.n < 1:
            raise ValueError(f"Interval.n must be >= 1, got {self.n}")
        _check_confidence(self.confidence)
        if self.low > self.high:  # False when either is nan
            raise ValueError(f"Interval low {self.low} is above high {self.high}")

    @property
    def available(self) -> bool:
        """False where the data gave no interval (one seed, say): no claim can rest on it."""
        return not (math.isnan(self.low) or math.isnan(self.high))

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, x: float) -> bool:
        """``low <= x <= high`` (closed); False for an unavailable interval."""
        return bool(self.low <= x <= self.high)


# --- validation ---------------------------------------------------------------------------------


def _check_confidence(confidence: float) -> float:
    if not (isinstance(confidence, int | float) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be a number strictly between 0 and 1, "
                         f"got {confidence!r}")
    return float(confidence)


def _check_values(values: Sequence[float] | np.ndarray, name: str = "values") -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per seed), "
                         f"got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: at least one value is needed")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds nan or inf: {array.tolist()}")
    return array


def _check_cms(cms: np.ndarray, name: str, ndim: int | None = 3, min_images: int = 1) -> np.ndarray:
    """Non-negative whole-number counts of shape (..., N, K, K), as float64 (exact below 2**53)."""
    array = np.asarray(cms)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must hold pixel counts (numbers), got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        axes = "(N_images, K, K)" if ndim == 3 else "(N_seeds, N_images, K, K)"
        raise ValueError(f"{name} must have shape {axes}, got shape {array.shape}")
    if array.ndim < 3:
        raise ValueError(f"{name} must have shape (..., N_images, K, K), got shape {array.shape}")
    if array.shape[-1] != array.shape[-2] or array.shape[-1] < 1:
        raise ValueError(f"{name}: each confusion matrix must be square K x K with K >= 1, "
                         f"got {array.shape[-2]} x {array.shape[-1]}")
    if array.shape[-3] < min_images:
        raise ValueError(f"{name} holds {array.shape[-3]} image(s); at least {min_images} needed "
                         "(the bootstrap resamples images)")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)) or np.any(array < 0) or np.any(array != np.round(array)):
        raise ValueError(f"{name} must hold non-negative whole pixel counts")
    return array


def _check_bootstrap_cms(cms: np.ndarray, name: str, ndim: int = 3) -> np.ndarray:
    """As ``_check_cms``, for a bootstrap: >= 2 images, each with at least one counted pixel."""
    array = _check_cms(cms, name, ndim=ndim, min_images=2)
    empty = np.flatnonzero((array.sum(axis=(-2, -1)) == 0).reshape(-1, array.shape[-3]).any(0))
    if empty.size:
        raise ValueError(f"{name}: image(s) {empty.tolist()} have no counted pixels; drop them "
                         "before bootstrapping (a resample of only those has no mIoU)")
    return array


def _check_definition(definition: str) -> str:
    if definition not in DEFINITIONS:
        raise ValueError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    return definition


def _check_resamples(n_resamples: int) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer):
        raise ValueError(f"n_resamples must be an int, got {n_resamples!r}")
    if n_resamples < 100:
        raise ValueError(f"n_resamples must be >= 100 for a percentile interval, got {n_resamples}")
    return int(n_resamples)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed (of the resampling generator) must be an int >= 0, got {seed!r}")
    return int(seed)


# --- intervals over seeds -----------------------------------------------------------------------


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean and Student-t interval over seeds: the seeds are few, so not a normal interval.

    One value gives its mean with ``low = high = nan`` (a spread cannot be estimated from one
    seed) and ``method`` says so.
    """
    confidence = _check_confidence(confidence)
    array = _check_values(values)
    n = array.size
    mean = float(array.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, "single value: no interval (n=1)", 1, confidence)
    sem = float(array.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * sem
    return Interval(mean, mean - half, mean + half, f"Student-t over {n} values", n, confidence)


def paired_t_difference(
    values_a: Sequence[float] | np.ndarray,
    values_b: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
) -> Interval:
    """Interval of mean(A - B) over seed-matched pairs: pairing removes what a seed shares.

    ``values_a[i]`` and ``values_b[i]`` must come from the same seed (same data order and
    initialisation where the configurations allow it).
    """
    a, b = _check_values(values_a, "values_a"), _check_values(values_b, "values_b")
    if a.shape != b.shape:
        raise ValueError(f"values_a and values_b must be seed-matched pairs of equal length, "
                         f"got {a.size} and {b.size}")
    result = t_interval(a - b, confidence)
    if not result.available:
        return result
    n = result.n
    return Interval(result.estimate, result.low, result.high,
                    f"paired Student-t over {n} seed-matched pairs", n, result.confidence)


def paired_t_p_value(
    values_a: Sequence[float] | np.ndarray, values_b: Sequence[float] | np.ndarray
) -> float:
    """Two-sided p-value of a paired t-test of mean(A - B) = 0 (scipy's ``ttest_rel``).

    Needs >= 2 pairs. Constant differences have no spread: p is 1.0 when they are all 0 and 0.0
    otherwise (the t statistic is infinite), matching ``paired_t_difference``'s zero-width
    interval.
    """
    a, b = _check_values(values_a, "values_a"), _check_values(values_b, "values_b")
    if a.shape != b.shape:
        raise ValueError(f"values_a and values_b must be seed-matched pairs of equal length, "
                         f"got {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError(f"a paired t-test needs at least 2 pairs, got {a.size}")
    diff = a - b
    if np.all(diff == diff[0]):
        return 1.0 if diff[0] == 0 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


# --- mIoU from per-image confusion matrices -----------------------------------------------------


def _global_miou_of_sums(summed: np.ndarray) -> np.ndarray:
    """mIoU of summed matrices (..., K, K); classes with an empty union left out (nan if all)."""
    tp = np.diagonal(summed, axis1=-2, axis2=-1)
    union = summed.sum(-2) + summed.sum(-1) - tp
    present = union > 0
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=present)
    count = present.sum(-1)
    return np.divide(iou.sum(-1), count, out=np.full(count.shape, np.nan), where=count > 0)


def per_image_scores(image_cms: np.ndarray, eps: float = COURSE_EPS) -> np.ndarray:
    """The course's per-image mIoU, shape (..., N): mean over all K classes of
    (tp + eps) / (union + eps), so a class absent from an image scores 1."""
    cms = _check_cms(image_cms, "image_cms", ndim=None)
    tp = np.diagonal(cms, axis1=-2, axis2=-1)
    union = cms.sum(-2) + cms.sum(-1) - tp
    return ((tp + eps) / (union + eps)).mean(-1)


def miou(
    image_cms: np.ndarray, definition: Definition = "global", eps: float = COURSE_EPS
) -> float | np.ndarray:
    """mIoU of per-image matrices (..., N, K, K): a float for one stack (N, K, K), else one per
    leading replicate index, so resampled stacks are scored in one call.

    ``"global"`` equals ``segmodels.metrics.mean_iou`` of the summed matrix; ``"per_image"``
    equals ``segmodels.metrics.course_scores(...)["miou"]``.
    """
    _check_definition(definition)
    cms = _check_cms(image_cms, "image_cms", ndim=None)
    if definition == "global":
        result = _global_miou_of_sums(cms.sum(-3))
    else:
        result = per_image_scores(cms, eps).mean(-1)
    return float(result) if result.ndim == 0 else result


# --- bootstrap over validation images -----------------------------------------------------------


def _resample_indices(rng: np.random.Generator, n_images: int, n_resamples: int) -> np.ndarray:
    """(n_resamples, n_images) image indices drawn with replacement: one row per resample."""
    return rng.integers(0, n_images, size=(n_resamples, n_images))


def _resampled_sums(indices: np.ndarray, per_image: np.ndarray) -> np.ndarray:
    """Sum of ``per_image[idx]`` over each row of ``indices``: (B, N) x (N, F) -> (B, F).

    Done as (resample counts) @ per_image, in chunks, instead of materialising B x N x F.
    Whole-number inputs give exact sums (float64 below 2**53), independent of order.
    """
    n_resamples, n_images = indices.shape
    out = np.empty((n_resamples, per_image.shape[1]))
    for start in range(0, n_resamples, _CHUNK):
        block = indices[start:start + _CHUNK]
        rows = np.arange(block.shape[0])[:, None] * n_images
        counts = np.bincount((rows + block).ravel(), minlength=block.size)
        out[start:start + _CHUNK] = counts.reshape(block.shape).astype(np.float64) @ per_image
    return out


def _replicates(cms: np.ndarray, definition: str, indices: np.ndarray) -> np.ndarray:
    """mIoU of each resample; ``cms`` is (N, K, K) or (M, N, K, K) for M matrices sharing images.

    Returns (B,) or (B, M).
    """
    stacked = cms if cms.ndim == 4 else cms[None]
    m, n_images, k, _ = stacked.shape
    if definition == "global":
        per_image = stacked.transpose(1, 0, 2, 3).reshape(n_images, m * k * k)
        sums = _resampled_sums(indices, per_image).reshape(-1, m, k, k)
        result = _global_miou_of_sums(sums)
    else:
        scores = per_image_scores(stacked).T  # (N, M)
        result = _resampled_sums(indices, scores) / n_images
    return result if cms.ndim == 4 else result[:, 0]


def _percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval (Efron & Tibshirani 1993, 13.3), linear interpolation like scipy's."""
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_miou(
    image_cms: np.ndarray,
    definition: Definition = "global",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """mIoU with a percentile-bootstrap interval over validation images.

    The images are the sample, so resampling them says how much the score would move on
    another validation set of the same size. ``seed`` seeds the resampling generator (not a
    training seed): equal arguments give equal intervals.
    """
    _check_definition(definition)
    confidence = _check_confidence(confidence)
    n_resamples, seed = _check_resamples(n_resamples), _check_seed(seed)
    cms = _check_bootstrap_cms(image_cms, "image_cms")
    n_images = cms.shape[0]
    indices = _resample_indices(np.random.default_rng(seed), n_images, n_resamples)
    low, high = _percentile_interval(_replicates(cms, definition, indices), confidence)
    method = (f"percentile bootstrap over {n_images} images "
              f"({n_resamples} resamples, {definition} mIoU)")
    return Interval(float(miou(cms, definition)), low, high, method, n_images, confidence)


def _paired_difference_replicates(
    cms_a: np.ndarray, cms_b: np.ndarray, definition: str, n_resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """(checked A and B, replicates of mIoU(A) - mIoU(B) on shared indices, full-data diff)."""
    _check_definition(definition)
    n_resamples, seed = _check_resamples(n_resamples), _check_seed(seed)
    a = _check_bootstrap_cms(cms_a, "cms_a")
    b = _check_bootstrap_cms(cms_b, "cms_b")
    if a.shape != b.shape:
        raise ValueError(f"cms_a and cms_b must be the same images and classes, got shapes "
                         f"{a.shape} and {b.shape}")
    indices = _resample_indices(np.random.default_rng(seed), a.shape[0], n_resamples)
    both = _replicates(np.stack([a, b]), definition, indices)
    estimate = float(miou(a, definition)) - float(miou(b, definition))
    return indices, both[:, 0] - both[:, 1], estimate


def paired_bootstrap_difference(
    cms_a: np.ndarray,
    cms_b: np.ndarray,
    definition: Definition = "global",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Interval of mIoU(A) - mIoU(B) for two models evaluated on the same images.

    Each resample uses the same image indices for both models (paired): an image that is hard
    for both moves both scores, and that shared movement cancels in the difference, which is
    why this interval is much narrower than one built from two separate intervals. Identical
    inputs give exactly [0, 0].
    """
    confidence = _check_confidence(confidence)
    indices, diffs, estimate = _paired_difference_replicates(
        cms_a, cms_b, definition, n_resamples, seed)
    low, high = _percentile_interval(diffs, confidence)
    n_images = indices.shape[1]
    method = (f"paired percentile bootstrap over {n_images} images "
              f"({n_resamples} resamples, {definition} mIoU)")
    return Interval(estimate, low, high, method, n_images, confidence)


def two_sided_bootstrap_p(differences: Sequence[float] | np.ndarray) -> float:
    """Two-sided p-value of "difference = 0" from bootstrap replicates of a difference.

    ``p = min(1, 2 * min(share <= 0, share >= 0))`` with each share counted as
    ``(1 + count) / (1 + B)`` (Davison & Hinkley 1997, *Bootstrap Methods and their
    Application*, ch. 4), so p is never 0: with B
    replicates nothing below ``2 / (B + 1)`` can be claimed. It is the smallest alpha at which
    the (1 - alpha) percentile interval just reaches 0, so p < 0.05 goes with a 95% interval
    that excludes 0 (up to the interpolation at the interval's ends).
    """
    d = _check_values(differences, "differences")
    n = d.size
    below = (1 + np.count_nonzero(d <= 0)) / (1 + n)
    above = (1 + np.count_nonzero(d >= 0)) / (1 + n)
    return float(min(1.0, 2 * min(below, above)))


def paired_bootstrap_p_value(
    cms_a: np.ndarray,
    cms_b: np.ndarray,
    definition: Definition = "global",
    n_resamples: int = 2000,
    seed: int = 0,
) -> float:
    """``two_sided_bootstrap_p`` of the replicates ``paired_bootstrap_difference`` draws with the
    same arguments, so the p-value and the interval come from the same resamples."""
    _, diffs, _ = _paired_difference_replicates(cms_a, cms_b, definition, n_resamples, seed)
    return two_sided_bootstrap_p(diffs)


def paired_bootstrap_normal_p(
    cms_a: np.ndarray,
    cms_b: np.ndarray,
    definition: Definition = "global",
    n_resamples: int = 2000,
    seed: int = 0,
) -> float:
    """Two-sided p of "mIoU(A) = mIoU(B)" from the normal approximation to the paired bootstrap:
    ``2 * (1 - Phi(|estimate| / sd(replicates)))``. Unlike the share-counting p it has no floor
    of ``2 / (B + 1)``, so a Holm correction over many comparisons can still reject (with
    ``m`` comparisons and 2,000 resamples the counted p could never pass once m > 50). An
    identical pair (sd 0, estimate 0) gives 1; a constant non-zero difference gives 0."""
    _, diffs, estimate = _paired_difference_replicates(cms_a, cms_b, definition, n_resamples,
                                                        seed)
    sd = float(diffs.std(ddof=1))
    if sd == 0:
        return 1.0 if estimate == 0 else 0.0
    return float(min(1.0, 2 * stats.norm.sf(abs(estimate) / sd)))


# --- several comparisons ------------------------------------------------------------------------


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order.

    A report makes many comparisons at once; comparing each adjusted p with alpha keeps the
    chance of any false "winner" below alpha without assuming the tests independent (Holm
    1979). Step-down: the i-th smallest of m is multiplied by (m - i + 1), made non-decreasing
    along the sorted order, and capped at 1.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, got shape {p.shape}")
    if p.size and (np.any(np.isnan(p)) or np.any(p < 0) or np.any(p > 1)):
        raise ValueError(f"p_values must lie in [0, 1] and not be nan, got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


# --- seeds and images together ------------------------------------------------------------------


def _crossed_replicates(per_seed_on: Callable[[np.ndarray], np.ndarray], per_seed: np.ndarray,
                        n_images: int, n_resamples: int, seed: int) -> np.ndarray:
    """(B,) replicates of a mean over seeds crossed with images (module docstring): the mean
    over seeds of ``per_seed_on(indices)`` ((B, S): each seed's value on each shared image
    resample) plus, with two or more seeds, a Student-t(S - 1) draw scaled by the standard
    error of ``per_seed`` (the full-data values). The image indices are drawn first, as in
    ``bootstrap_miou``, so one seed reproduces the image bootstrap exactly."""
    rng = np.random.default_rng(seed)
    replicates = per_seed_on(_resample_indices(rng, n_images, n_resamples)).mean(axis=1)
    n_seeds = per_seed.size
    if n_seeds > 1:
        sem = float(per_seed.std(ddof=1)) / math.sqrt(n_seeds)
        replicates = replicates + sem * rng.standard_t(n_seeds - 1, size=n_resamples)
    return replicates


def combine_seed_and_image(
    seed_image_cms: np.ndarray,
    definition: Definition = "global",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Interval of one sweep point's mIoU over both seeds and validation images.

    ``seed_image_cms[s, i]`` is the matrix of image ``i`` under the model trained with seed
    ``s``; every seed is evaluated on the same images. The estimate is the mean over seeds of
    the full-data mIoU. Each replicate is the seed-average on images resampled with one shared
    index set (the images are crossed with the seeds) plus a Student-t(S - 1) draw scaled by the
    seeds' standard error; see the module docstring for why. One seed: exactly
    ``bootstrap_miou`` with the same arguments. ``seed`` seeds the resampling generator.
    """
    _check_definition(definition)
    confidence = _check_confidence(confidence)
    n_resamples, seed = _check_resamples(n_resamples), _check_seed(seed)
    cms = _check_bootstrap_cms(seed_image_cms, "seed_image_cms", ndim=4)
    n_seeds, n_images = cms.shape[:2]
    per_seed = np.asarray(miou(cms, definition))  # (S,)
    replicates = _crossed_replicates(lambda indices: _replicates(cms, definition, indices),
                                     per_seed, n_images, n_resamples, seed)
    estimate = float(per_seed.mean())
    if n_seeds == 1:
        method = (f"percentile bootstrap over {n_images} images ({n_resamples} resamples, "
                  f"{definition} mIoU); one seed: seed variance not accounted for")
    else:
        method = (f"Student-t over {n_seeds} seeds combined with a percentile bootstrap over "
                  f"{n_images} shared images ({n_resamples} resamples, {definition} mIoU)")
    low, high = _percentile_interval(replicates, confidence)
    # The t draw can carry a replicate outside mIoU's range; the parameter cannot be there, so
    # the ends are clipped to [0, 1] (an interval cut to the parameter space keeps its coverage).
    return Interval(estimate, max(low, 0.0), min(high, 1.0), method, n_seeds, confidence)


def _seed_image_difference_replicates(
    seed_image_cms_a: np.ndarray, seed_image_cms_b: np.ndarray, definition: str,
    n_resamples: int, seed: int,
) -> tuple[np.ndarray, float, int, int]:
    """(replicates of the seed-mean difference, its full-data value, seeds, images)."""
    _check_definition(definition)
    n_resamples, seed = _check_resamples(n_resamples), _check_seed(seed)
    a = _check_bootstrap_cms(seed_image_cms_a, "seed_image_cms_a", ndim=4)
    b = _check_bootstrap_cms(seed_image_cms_b, "seed_image_cms_b", ndim=4)
    if a.shape != b.shape:
        raise ValueError(f"seed_image_cms_a and seed_image_cms_b must be the same seeds, images "
                         f"and classes, got shapes {a.shape} and {b.shape}")
    n_seeds, n_images = a.shape[:2]
    both_seeds = np.concatenate([a, b])

    def differences(indices: np.ndarray) -> np.ndarray:  # (B, S): A - B per seed and resample
        both = _replicates(both_seeds, definition, indices)  # (B, 2S)
        return both[:, :n_seeds] - both[:, n_seeds:]

    per_seed = np.asarray(miou(a, definition)) - np.asarray(miou(b, definition))  # (S,)
    replicates = _crossed_replicates(differences, per_seed, n_images, n_resamples, seed)
    return replicates, float(per_seed.mean()), n_seeds, n_images


def seed_image_difference(
    seed_image_cms_a: np.ndarray,
    seed_image_cms_b: np.ndarray,
    definition: Definition = "global",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Interval of mIoU(A) - mIoU(B), two sweep points each trained with the same seeds and
    evaluated on the same images: ``[s, i]`` of A and of B is seed ``s`` on image ``i``.

    ``combine_seed_and_image`` applied to the seed-matched differences: each replicate is the
    seed-mean difference on one shared resample of the images (paired twice: same seeds, same
    images) plus a Student-t(S - 1) draw scaled by the standard error of the per-seed
    differences. One seed: exactly ``paired_bootstrap_difference``'s interval."""
    confidence = _check_confidence(confidence)
    replicates, estimate, n_seeds, n_images = _seed_image_difference_replicates(
        seed_image_cms_a, seed_image_cms_b, definition, n_resamples, seed)
    low, high = _percentile_interval(replicates, confidence)
    low, high = max(low, -1.0), min(high, 1.0)  # a difference of two mIoUs, as above
    method = (f"paired percentile bootstrap over {n_images} images ({n_resamples} resamples, "
              f"{definition} mIoU)" if n_seeds == 1 else
              f"Student-t over {n_seeds} seed-matched differences combined with a paired "
              f"percentile bootstrap over {n_images} shared images ({n_resamples} resamples, "
              f"{definition} mIoU)")
    return Interval(estimate, low, high, method, n_seeds, confidence)


def seed_image_difference_p(
    seed_image_cms_a: np.ndarray,
    seed_image_cms_b: np.ndarray,
    definition: Definition = "global",
    n_resamples: int = 2000,
    seed: int = 0,
) -> float:
    """``two_sided_bootstrap_p`` of the replicates ``seed_image_difference`` draws with the same
    arguments: the p-value and the interval come from the same draws."""
    replicates, _, _, _ = _seed_image_difference_replicates(
        seed_image_cms_a, seed_image_cms_b, definition, n_resamples, seed)
    return two_sided_bootstrap_p(replicates)


# --- words --------------------------------------------------------------------------------------


def verdict(
    interval: Interval,
    name_a: str,
    name_b: str,
    margin: float | None = None,
    digits: int = 4,
) -> str:
    """One sentence on ``interval`` of the difference A - B; a winner only when it excludes 0.

    An interval containing 0 means the data cannot tell the two apart, which is not the same
    as "equal": only with a practical-equivalence ``margin`` (the smallest difference that
    would matter) and the whole interval inside ±margin does it say "equivalent".
    """
    if not (isinstance(name_a, str) and isinstance(name_b, str) and name_a and name_b):
        raise ValueError(f"name_a and name_b must be non-empty strings, got {name_a!r}, {name_b!r}")
    if name_a == name_b:
        raise ValueError(f"name_a and name_b must differ, both are {name_a!r}")
    if margin is not None and not (isinstance(margin, int | float) and 0 < margin < math.inf):
        raise ValueError(f"margin must be a positive finite number or None, got {margin!r}")
    if not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be an int >= 0, got {digits!r}")

    def fmt(x: float) -> str:
        return f"{x:.{digits}f}"

    level = f"{interval.confidence:.0%}"
    rule = "a winner needs an interval of the difference that excludes 0"
    if margin is not None:
        rule += f"; equivalence needs it inside ±{fmt(margin)}"
    if not interval.available or math.isnan(interval.estimate):
        return (f"{name_a} vs {name_b}: {level} interval unavailable ({interval.method}), "
                f"no winner named ({rule})")
    est, lo, hi = interval.estimate, interval.low, interval.high
    equivalent = margin is not None and -margin <= lo and hi <= margin
    if lo > 0 or hi < 0:
        a_wins = lo > 0
        winner, loser = (name_a, name_b) if a_wins else (name_b, name_a)
        sign = 1 if a_wins else -1
        lo_w, hi_w = sorted((sign * lo, sign * hi))
        text = (f"{winner} better than {loser} by {fmt(sign * est)} "
                f"[{fmt(lo_w)}, {fmt(hi_w)}] ({level} interval)")
        if equivalent:
            text += f", but equivalent within ±{fmt(margin)} (a difference too small to matter)"
        return text
    text = (f"{name_a} vs {name_b}: no detectable difference at this data size "
            f"(difference {fmt(est)} [{fmt(lo)}, {fmt(hi)}], {level} interval)")
    if margin is not None:
        text += (f"; equivalent within ±{fmt(margin)}" if equivalent
                 else f"; not shown equivalent within ±{fmt(margin)}")
    return text
