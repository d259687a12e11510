"""analysis.statistics: intervals, paired differences, p-values and verdicts.

Every interval is checked against an independent computation: scipy's t-interval and
``ttest_rel`` for the seed level, ``scipy.stats.bootstrap`` for the image bootstrap, and
``segmodels.metrics`` (torch) for the two mIoU definitions. The inputs are fixed: matrices are
made by seeded generators here, so every run sees the same numbers.

Tolerance against ``scipy.stats.bootstrap``: both sides draw their own 5000 resamples, so their
percentile ends differ by Monte Carlo error only. For a roughly normal bootstrap distribution
(sd s, 95% width 3.92 s) the 2.5% sample quantile of B draws has standard error
sqrt(0.025 * 0.975 / B) / phi(1.96) * s = 0.038 s at B = 5000, about 1% of the width; the
difference of two independent estimates about 1.4%. ``MC_TOL`` = 6% of the width is over 4 of
those standard errors, and still far below any error in the method (a wrong pairing or
definition moves the ends by tens of % of the width).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis import statistics as st

MC_TOL = 0.06  # share of the interval width; see the module docstring
SCIPY_RESAMPLES = 5000


def fake_images(accuracy, n_classes: int = 4, pixels: int = 400, seed: int = 0) -> np.ndarray:
    """Per-image matrices (N, K, K) of a model right on share ``accuracy[i]`` of image i's pixels.

    Each image's pixels fall on the classes by a Dirichlet draw; per class, the wrong pixels are
    spread over the other classes at random. Deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    accuracy = np.asarray(accuracy, dtype=float)
    cms = np.zeros((accuracy.size, n_classes, n_classes), dtype=np.int64)
    for i, acc in enumerate(accuracy):
        support = rng.multinomial(pixels, rng.dirichlet(np.ones(n_classes)))
        for t, count in enumerate(support):
            right = int(round(acc * count))
            others = [c for c in range(n_classes) if c != t]
            cms[i, t, t] = right
            spread = np.full(len(others), 1 / len(others))
            cms[i, t, others] = rng.multinomial(count - right, spread)
    return cms


def random_cms(n_images: int = 12, n_classes: int = 5, seed: int = 3) -> np.ndarray:
    """Arbitrary counts, class 4 absent everywhere and class 3 absent from image 0."""
    cms = np.random.default_rng(seed).integers(0, 50, size=(n_images, n_classes, n_classes))
    cms[:, 4, :] = cms[:, :, 4] = 0
    cms[0, 3, :] = cms[0, :, 3] = 0
    return cms


# Two models on the same 30 images: A clearly better than B; C equal to A up to per-image
# noise that cancels overall (+-0.05 accuracy alternating by image).
N_IMAGES = 30
BASE = np.linspace(0.55, 0.95, N_IMAGES)
A = fake_images(BASE, seed=1)
B_WORSE = fake_images(BASE - 0.3, seed=1)
C_NOISY = fake_images(BASE + 0.05 * (-1) ** np.arange(N_IMAGES), seed=1)


def scipy_percentile(statistic, data, paired: bool = False):
    """scipy's percentile bootstrap of ``statistic`` over image-index arrays ``data``."""
    return stats.bootstrap(data, statistic, n_resamples=SCIPY_RESAMPLES, method="percentile",
                           vectorized=True, paired=paired, batch=1000,
                           rng=np.random.default_rng(12345)).confidence_interval


def assert_close_interval(ours: st.Interval, low: float, high: float) -> None:
    tol = MC_TOL * (high - low)
    assert abs(ours.low - low) <= tol, (ours, low, high)
    assert abs(ours.high - high) <= tol, (ours, low, high)


@pytest.fixture(scope="module")
def torch_metrics():
    """segmodels.metrics, imported only by the tests that compare with it (torch is slow)."""
    from segmodels import metrics

    return metrics


# --- Interval -----------------------------------------------------------------------------------


def test_interval_contains_width_and_availability():
    iv = st.Interval(0.5, 0.4, 0.7, "test", 3)
    assert iv.width == pytest.approx(0.3)
    assert iv.contains(0.4) and iv.contains(0.7) and iv.contains(0.5)
    assert not iv.contains(0.39) and not iv.contains(0.71)
    assert iv.available and iv.confidence == 0.95
    nan = st.Interval(0.5, math.nan, math.nan, "single value", 1)
    assert not nan.available and not nan.contains(0.5) and math.isnan(nan.width)


@pytest.mark.parametrize("kwargs, message", [
    (dict(low=0.7, high=0.4), "above high"),
    (dict(n=0), "n must be >= 1"),
    (dict(method=""), "method"),
    (dict(confidence=1.0), "confidence"),
])
def test_interval_rejects_inconsistent_fields(kwargs, message):
    fields = dict(estimate=0.5, low=0.4, high=0.7, method="m", n=3) | kwargs
    with pytest.raises(ValueError, match=message):
        st.Interval(**fields)


# --- t-intervals over seeds ---------------------------------------------------------------------


def test_t_interval_by_hand():
    # [1, 2, 3]: mean 2, sd 1, sem 1/sqrt(3). With df = 2 the t quantile has a closed form,
    # t_q = (2q - 1) / sqrt(2q(1 - q)): q = 0.975 gives 0.95 / sqrt(0.04875) = 4.30265.
    iv = st.t_interval([1.0, 2.0, 3.0])
    half = 0.95 / math.sqrt(0.04875) / math.sqrt(3)  # 2.48414
    assert (iv.estimate, iv.n) == (2.0, 3)
    assert iv.low == pytest.approx(2 - half, rel=1e-12)
    assert iv.high == pytest.approx(2 + half, rel=1e-12)
    assert iv.method.startswith("Student-t")


@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99])
def test_t_interval_matches_scipy(confidence):
    values = np.array([0.612, 0.634, 0.598, 0.641, 0.620])
    iv = st.t_interval(values, confidence)
    low, high = stats.t.interval(confidence, df=4, loc=values.mean(), scale=stats.sem(values))
    assert (iv.low, iv.high) == pytest.approx((low, high), rel=1e-12)
    assert iv.confidence == confidence


def test_t_interval_of_one_seed_has_no_interval_and_says_so():
    iv = st.t_interval([0.61])
    assert iv.estimate == 0.61 and iv.n == 1
    assert math.isnan(iv.low) and math.isnan(iv.high) and not iv.available
    assert "n=1" in iv.method and "no interval" in iv.method


def test_t_interval_of_equal_values_has_zero_width():
    iv = st.t_interval([0.5, 0.5, 0.5])
    assert (iv.low, iv.estimate, iv.high) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("values, confidence, message", [
    ([], 0.95, "empty"),
    ([[0.1, 0.2]], 0.95, "one-dimensional"),
    ([0.1, math.nan], 0.95, "nan or inf"),
    ([0.1, 0.2], 1.5, "confidence"),
    ([0.1, 0.2], 0.0, "confidence"),
])
def test_t_interval_validates(values, confidence, message):
    with pytest.raises(ValueError, match=message):
        st.t_interval(values, confidence)


# --- paired t over seed-matched pairs -----------------------------------------------------------

SEEDS_A = np.array([0.642, 0.655, 0.631, 0.660, 0.648])
SEEDS_B = np.array([0.630, 0.641, 0.628, 0.645, 0.633])


@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_paired_t_difference_matches_ttest_rel_and_t_interval(confidence):
    iv = st.paired_t_difference(SEEDS_A, SEEDS_B, confidence)
    ci = stats.ttest_rel(SEEDS_A, SEEDS_B).confidence_interval(confidence)
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    d = SEEDS_A - SEEDS_B
    low, high = stats.t.interval(confidence, df=d.size - 1, loc=d.mean(), scale=stats.sem(d))
    assert (iv.low, iv.high) == pytest.approx((low, high), rel=1e-10)
    assert iv.estimate == pytest.approx(d.mean()) and iv.n == 5
    assert "paired" in iv.method


def test_pairing_removes_what_a_seed_shares():
    # B = A - 0.01 exactly up to tiny noise: paired, a clear difference; unpaired, none.
    b = SEEDS_A - 0.01 + np.array([0.001, -0.001, 0.0005, -0.0005, 0.0])
    paired = st.paired_t_difference(SEEDS_A, b)
    assert paired.low > 0
    welch = stats.ttest_ind(SEEDS_A, b, equal_var=False).confidence_interval()
    assert welch.low < 0 < welch.high


def test_paired_t_of_one_pair_is_unavailable():
    iv = st.paired_t_difference([0.6], [0.5])
    assert iv.estimate == pytest.approx(0.1) and not iv.available and "n=1" in iv.method


def test_paired_t_validates_lengths():
    with pytest.raises(ValueError, match="seed-matched pairs of equal length"):
        st.paired_t_difference([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="seed-matched pairs of equal length"):
        st.paired_t_p_value([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        st.paired_t_p_value([0.1], [0.2])


def test_paired_t_p_value():
    assert st.paired_t_p_value(SEEDS_A, SEEDS_B) == pytest.approx(
        stats.ttest_rel(SEEDS_A, SEEDS_B).pvalue, rel=1e-12)
    assert st.paired_t_p_value([0.5, 0.6], [0.5, 0.6]) == 1.0  # all differences 0
    assert st.paired_t_p_value([0.6, 0.7], [0.5, 0.6]) == 0.0  # constant 0.1: t infinite


# --- mIoU definitions ---------------------------------------------------------------------------


def test_miou_by_hand():
    # Two classes, one image: tp = (3, 4), fp = (1, 2), fn = (2, 1).
    cm = np.array([[[3, 2], [1, 4]]])
    assert st.miou(cm) == pytest.approx((3 / 6 + 4 / 7) / 2)
    # A third class absent from target and prediction is left out of the global mean...
    cm3 = np.zeros((1, 3, 3), dtype=int)
    cm3[0, :2, :2] = cm[0]
    assert st.miou(cm3) == pytest.approx((3 / 6 + 4 / 7) / 2)
    # ...but scores (0 + eps) / (0 + eps) = 1 in the course's per-image definition.
    assert st.miou(cm3, "per_image") == pytest.approx((3 / 6 + 4 / 7 + 1) / 3)
    assert math.isnan(st.miou(np.zeros((2, 3, 3), dtype=int)))


@pytest.mark.parametrize("seed", [3, 4])
def test_miou_equals_segmodels_metrics(torch_metrics, seed):
    import torch

    cms = random_cms(seed=seed)
    summed = torch.from_numpy(cms).sum(0)
    assert st.miou(cms, "global") == pytest.approx(torch_metrics.mean_iou(summed), rel=1e-12)
    course = torch_metrics.course_scores(torch.from_numpy(cms))["miou"]
    assert st.miou(cms, "per_image") == pytest.approx(course, rel=1e-12)


@pytest.mark.parametrize("definition", st.DEFINITIONS)
def test_miou_is_vectorised_over_leading_replicate_axes(definition):
    stack = np.stack([random_cms(seed=s) for s in range(6)]).reshape(2, 3, 12, 5, 5)
    result = st.miou(stack, definition)
    assert result.shape == (2, 3)
    expected = [[st.miou(stack[i, j], definition) for j in range(3)] for i in range(2)]
    np.testing.assert_allclose(result, expected, rtol=1e-14)


@pytest.mark.parametrize("cms, definition, message", [
    (np.zeros((3, 3)), "global", "shape"),
    (np.zeros((2, 3, 4)), "global", "square"),
    (-np.ones((2, 3, 3)), "global", "non-negative whole"),
    (np.full((2, 3, 3), 0.5), "global", "non-negative whole"),
    (np.full((2, 3, 3), "a"), "global", "pixel counts"),
    (np.ones((2, 3, 3)), "macro", "definition"),
])
def test_miou_validates(cms, definition, message):
    with pytest.raises(ValueError, match=message):
        st.miou(cms, definition)


# --- bootstrap over images ----------------------------------------------------------------------


@pytest.mark.parametrize("definition", st.DEFINITIONS)
def test_bootstrap_miou_agrees_with_scipy(definition):
    cms = random_cms(n_images=30)
    ours = st.bootstrap_miou(cms, definition, n_resamples=SCIPY_RESAMPLES)
    ci = scipy_percentile(lambda idx, axis=-1: st.miou(cms[idx], definition),
                          (np.arange(cms.shape[0]),))
    assert_close_interval(ours, ci.low, ci.high)
    assert ours.estimate == st.miou(cms, definition)
    assert ours.low < ours.estimate < ours.high and ours.n == 30


@pytest.mark.parametrize("definition", st.DEFINITIONS)
def test_bootstrap_miou_is_the_percentile_interval_of_literal_index_resamples(definition):
    """The resample-count shortcut gives what indexing the images literally gives."""
    cms = random_cms(n_images=10)
    indices = np.random.default_rng(7).integers(0, 10, size=(500, 10))
    literal = np.quantile(st.miou(cms[indices], definition), [0.05, 0.95])
    ours = st.bootstrap_miou(cms, definition, confidence=0.9, n_resamples=500, seed=7)
    assert (ours.low, ours.high) == pytest.approx(tuple(literal), rel=1e-12)
    assert ours.confidence == 0.9


def test_bootstrap_miou_is_reproducible_and_seeded():
    first, again = st.bootstrap_miou(A, seed=5), st.bootstrap_miou(A, seed=5)
    assert first == again
    assert (st.bootstrap_miou(A, seed=6).low, st.bootstrap_miou(A, seed=6).high) != (
        first.low, first.high)


def test_bootstrap_interval_narrows_with_more_images():
    # The same images four times over: the sampling error of a mean halves (1 / sqrt(4)).
    few = st.bootstrap_miou(A, "per_image", n_resamples=4000)
    many = st.bootstrap_miou(np.tile(A, (4, 1, 1)), "per_image", n_resamples=4000)
    assert 0.4 < many.width / few.width < 0.6


@pytest.mark.parametrize("cms, kwargs, message", [
    (A[:1], {}, "at least 2 needed"),
    (np.concatenate([A[:3], np.zeros((1, 4, 4), dtype=int)]), {}, r"image\(s\) \[3\]"),
    (A, dict(n_resamples=50), "n_resamples must be >= 100"),
    (A, dict(n_resamples=2000.0), "n_resamples must be an int"),
    (A, dict(seed=-1), "seed"),
    (A, dict(confidence=95), "confidence"),
    (A[None], {}, r"shape \(N_images, K, K\)"),
])
def test_bootstrap_miou_validates(cms, kwargs, message):
    with pytest.raises(ValueError, match=message):
        st.bootstrap_miou(cms, **kwargs)


# --- paired bootstrap difference ----------------------------------------------------------------


@pytest.mark.parametrize("definition", st.DEFINITIONS)
def test_paired_difference_of_a_clearly_better_model(definition):
    better = st.paired_bootstrap_difference(A, B_WORSE, definition)
    assert better.low > 0 and better.estimate > 0.1
    assert better.estimate == pytest.approx(st.miou(A, definition) - st.miou(B_WORSE, definition))
    worse = st.paired_bootstrap_difference(B_WORSE, A, definition)  # same resamples, negated
    assert worse.high < 0
    assert (worse.low, worse.high) == pytest.approx((-better.high, -better.low), rel=1e-12)


@pytest.mark.parametrize("definition", st.DEFINITIONS)
def test_paired_difference_of_identical_models_is_exactly_zero(definition):
    iv = st.paired_bootstrap_difference(A, A.copy(), definition)
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0)
    assert st.paired_bootstrap_p_value(A, A.copy(), definition) == 1.0


@pytest.mark.parametrize("definition", st.DEFINITIONS)
def test_paired_difference_within_noise_contains_zero(definition):
    iv = st.paired_bootstrap_difference(A, C_NOISY, definition)
    assert iv.contains(0.0) and iv.width > 0
    assert st.paired_bootstrap_p_value(A, C_NOISY, definition) > 0.05


def test_pairing_cancels_what_the_images_share():
    """Per-image difficulty moves both models alike: the paired interval is far narrower than
    each model's own interval, which is why comparisons pair."""
    paired = st.paired_bootstrap_difference(A, C_NOISY)
    assert paired.width < 0.5 * min(st.bootstrap_miou(A).width, st.bootstrap_miou(C_NOISY).width)


@pytest.mark.parametrize("a, b, definition", [
    (A, B_WORSE, "global"), (A, C_NOISY, "global"), (A, C_NOISY, "per_image"),
])
def test_paired_difference_agrees_with_scipy_paired_bootstrap(a, b, definition):
    ours = st.paired_bootstrap_difference(a, b, definition, n_resamples=SCIPY_RESAMPLES)
    ci = scipy_percentile(
        lambda ia, ib, axis=-1: st.miou(a[ia], definition) - st.miou(b[ib], definition),
        (np.arange(N_IMAGES), np.arange(N_IMAGES)), paired=True)
    assert_close_interval(ours, ci.low, ci.high)


def test_paired_difference_validates():
    with pytest.raises(ValueError, match="same images and classes"):
        st.paired_bootstrap_difference(A, A[:-1])
    with pytest.raises(ValueError, match="cms_b"):
        st.paired_bootstrap_difference(A, A[:, :3, :3].astype(float) + 0.5)


# --- p-values -----------------------------------------------------------------------------------


def test_two_sided_bootstrap_p_by_hand():
    # 99 replicates all > 0: share <= 0 is (1 + 0) / 100, p = 2 * 0.01.
    assert st.two_sided_bootstrap_p(np.linspace(0.1, 1, 99)) == pytest.approx(0.02)
    # 19 of 99 <= 0: (1 + 19) / 100 = 0.2 below, 0.81 above -> p = 0.4.
    assert st.two_sided_bootstrap_p(np.r_[-np.ones(19), np.ones(80)]) == pytest.approx(0.4)
    assert st.two_sided_bootstrap_p(np.zeros(10)) == 1.0  # capped
    assert st.two_sided_bootstrap_p(np.r_[-np.ones(50), np.ones(50)]) == 1.0
    with pytest.raises(ValueError, match="empty"):
        st.two_sided_bootstrap_p([])


def test_paired_bootstrap_p_value_goes_with_the_interval():
    p = st.paired_bootstrap_p_value(A, B_WORSE, n_resamples=999)
    assert p == pytest.approx(2 / 1000)  # no replicate at or below 0: the smallest p it can give
    assert not st.paired_bootstrap_difference(A, B_WORSE, n_resamples=999).contains(0.0)


def test_holm_by_hand():
    # p = [0.01, 0.04, 0.03, 0.005], m = 4. Sorted: 0.005 (#3), 0.01 (#0), 0.03 (#2), 0.04 (#1).
    # Times (m - i + 1) = 4, 3, 2, 1:  0.02, 0.03, 0.06, 0.04.
    # Running maximum (step-down):     0.02, 0.03, 0.06, 0.06.
    # Back in input order: #0 0.03, #1 0.06, #2 0.06, #3 0.02.
    adjusted = st.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)


def test_holm_caps_at_one_and_keeps_order():
    # Sorted 0.2, 0.6, 0.7 -> 0.6, 1.2, 0.7 -> running max 0.6, 1.2, 1.2 -> capped 0.6, 1, 1.
    np.testing.assert_allclose(st.holm([0.7, 0.2, 0.6]), [1.0, 0.6, 1.0])
    p = np.array([0.04, 0.001, 0.02, 0.5, 0.03, 0.011])
    adjusted = st.holm(p)
    assert np.all(adjusted >= p) and np.all(adjusted <= 1)
    assert np.all(np.diff(adjusted[np.argsort(p)]) >= 0)
    assert st.holm([0.03]).tolist() == [0.03]
    assert st.holm([]).size == 0


@pytest.mark.parametrize("p, message", [
    ([0.1, 1.2], r"\[0, 1\]"), ([0.1, math.nan], "nan"), ([[0.1]], "one-dimensional"),
])
def test_holm_validates(p, message):
    with pytest.raises(ValueError, match=message):
        st.holm(p)


# --- verdicts -----------------------------------------------------------------------------------


def test_verdict_names_the_winner_only_when_the_interval_excludes_zero():
    assert st.verdict(st.Interval(0.02, 0.01, 0.03, "m", 30), "UNet+aug", "UNet") == (
        "UNet+aug better than UNet by 0.0200 [0.0100, 0.0300] (95% interval)")
    # A negative difference A - B names B, with B - A's numbers.
    assert st.verdict(st.Interval(-0.02, -0.03, -0.01, "m", 30), "UNet+aug", "UNet") == (
        "UNet better than UNet+aug by 0.0200 [0.0100, 0.0300] (95% interval)")
    text = st.verdict(st.Interval(0.004, -0.001, 0.009, "m", 30), "UNet+aug", "UNet")
    assert text == ("UNet+aug vs UNet: no detectable difference at this data size "
                    "(difference 0.0040 [-0.0010, 0.0090], 95% interval)")
    assert "better" not in text


def test_verdict_with_a_practical_equivalence_margin():
    inside = st.Interval(0.001, -0.004, 0.006, "m", 30)
    assert st.verdict(inside, "a", "b", margin=0.01).endswith("; equivalent within ±0.0100")
    wide = st.Interval(0.001, -0.02, 0.022, "m", 30)
    assert st.verdict(wide, "a", "b", margin=0.01).endswith("; not shown equivalent within ±0.0100")
    small_but_clear = st.Interval(0.002, 0.001, 0.003, "m", 30)
    text = st.verdict(small_but_clear, "a", "b", margin=0.01)
    assert text.startswith("a better than b by 0.0020") and "equivalent within ±0.0100" in text
    identical = st.paired_bootstrap_difference(A, A)
    assert "equivalent within ±0.0100" in st.verdict(identical, "a", "b", margin=0.01)


def test_verdict_of_an_unavailable_interval_names_no_winner():
    one_seed = st.paired_t_difference([0.7], [0.5])
    text = st.verdict(one_seed, "a", "b")
    assert "interval unavailable" in text and "n=1" in text and "better" not in text
    assert "excludes 0" in text
    with_margin = st.verdict(one_seed, "a", "b", margin=0.01)
    assert "better" not in with_margin and "inside ±0.0100" in with_margin


@pytest.mark.parametrize("kwargs, message", [
    (dict(name_b="a"), "must differ"),
    (dict(name_a=""), "non-empty"),
    (dict(margin=0), "margin"),
    (dict(margin=math.nan), "margin"),
    (dict(digits=-1), "digits"),
])
def test_verdict_validates(kwargs, message):
    args = dict(interval=st.Interval(0.0, -0.1, 0.1, "m", 3), name_a="a", name_b="b") | kwargs
    with pytest.raises(ValueError, match=message):
        st.verdict(**args)


# --- seeds and images together ------------------------------------------------------------------


@pytest.mark.parametrize("definition", st.DEFINITIONS)
def test_combined_with_one_seed_is_the_image_bootstrap(definition):
    combined = st.combine_seed_and_image(A[None], definition, seed=4)
    image = st.bootstrap_miou(A, definition, seed=4)
    assert (combined.estimate, combined.low, combined.high) == (
        image.estimate, image.low, image.high)
    assert "one seed" in combined.method and combined.n == 1


def test_combined_with_identical_seeds_keeps_the_whole_image_error():
    """The images are shared by the seeds, so their error must not shrink with more seeds (a
    nested bootstrap, images resampled per seed, would divide it by sqrt(S))."""
    combined = st.combine_seed_and_image(np.stack([A] * 4), seed=2)
    image = st.bootstrap_miou(A, seed=2)
    assert (combined.low, combined.estimate, combined.high) == pytest.approx(
        (image.low, image.estimate, image.high), rel=1e-12)


def test_combined_without_image_noise_is_the_seed_t_interval():
    """Every image of a seed alike: resampling images changes nothing, what is left is the
    seed level, a Student-t(S - 1). 20000 resamples: the t(4) 2.5% quantile's Monte Carlo
    error is about 1.6% of the half-width; 6% allowed."""
    per_seed_acc = [0.70, 0.74, 0.71, 0.77, 0.73]
    cms = np.stack([np.repeat(fake_images([acc], seed=9), 10, axis=0) for acc in per_seed_acc])
    combined = st.combine_seed_and_image(cms, n_resamples=20000)
    seed_only = st.t_interval([st.miou(seed_cms) for seed_cms in cms])
    assert combined.estimate == pytest.approx(seed_only.estimate, rel=1e-12)
    half = seed_only.width / 2
    assert abs(combined.low - seed_only.low) < MC_TOL * half
    assert abs(combined.high - seed_only.high) < MC_TOL * half


@pytest.mark.parametrize("definition", st.DEFINITIONS)
def test_combined_is_wider_than_either_source_alone(definition):
    # Three seeds of A with per-seed accuracy shifts, evaluated on the same 30 images.
    cms = np.stack([fake_images(BASE + shift, seed=1) for shift in (-0.02, 0.0, 0.03)])
    combined = st.combine_seed_and_image(cms, definition)
    seed_only = st.t_interval([st.miou(seed_cms, definition) for seed_cms in cms])
    image_only = st.bootstrap_miou(cms[1], definition)
    assert combined.estimate == pytest.approx(seed_only.estimate, rel=1e-12)
    assert combined.width > seed_only.width and combined.width > image_only.width
    # Independent errors: the width is below the sum of the two and near their root sum of
    # squares (exact for normal errors; here within a few %).
    assert combined.width < seed_only.width + image_only.width
    assert combined.width == pytest.approx(math.hypot(seed_only.width, image_only.width), rel=0.1)
    assert combined.n == 3 and "3 seeds" in combined.method


@pytest.mark.parametrize("definition", st.DEFINITIONS)
def test_seed_matched_difference_with_one_seed_is_the_paired_image_bootstrap(definition):
    ours = st.seed_image_difference(A[None], B_WORSE[None], definition, seed=5)
    paired = st.paired_bootstrap_difference(A, B_WORSE, definition, seed=5)
    assert (ours.estimate, ours.low, ours.high) == (paired.estimate, paired.low, paired.high)
    assert st.seed_image_difference_p(A[None], B_WORSE[None], definition, seed=5) == \
        st.paired_bootstrap_p_value(A, B_WORSE, definition, seed=5)


def test_seed_matched_difference_without_image_noise_is_scipys_paired_t_interval():
    """Every image of a seed alike: what is left is the t-interval of the per-seed
    differences, checked against scipy's t.interval (Monte Carlo tolerance as above)."""
    acc_a, acc_b = [0.70, 0.74, 0.71, 0.77, 0.73], [0.69, 0.70, 0.72, 0.71, 0.68]

    def seeds(accs, seed):
        return np.stack([np.repeat(fake_images([acc], seed=seed), 10, axis=0) for acc in accs])

    a, b = seeds(acc_a, 9), seeds(acc_b, 9)
    ours = st.seed_image_difference(a, b, n_resamples=20000)
    diffs = np.array([st.miou(x) - st.miou(y) for x, y in zip(a, b)])
    low, high = stats.t.interval(0.95, diffs.size - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    assert ours.estimate == pytest.approx(diffs.mean(), rel=1e-12)
    assert abs(ours.low - low) < MC_TOL * (high - low) / 2
    assert abs(ours.high - high) < MC_TOL * (high - low) / 2
    assert ours.n == 5 and "5 seed-matched differences" in ours.method


def test_seed_matched_difference_p_goes_with_its_interval():
    shifts = (-0.02, 0.0, 0.03)
    better = np.stack([fake_images(BASE + s, seed=1) for s in shifts])
    worse = np.stack([fake_images(BASE - 0.3 + s, seed=1) for s in shifts])
    clear = st.seed_image_difference(better, worse)
    assert clear.low > 0 and st.seed_image_difference_p(better, worse) < 0.05
    wobble = 0.05 * (-1) ** np.arange(N_IMAGES)  # per-image noise that cancels overall
    noisy = np.stack([fake_images(np.clip(BASE + wobble + s, 0, 1), seed=1) for s in shifts])
    unclear = st.seed_image_difference(better, noisy)
    assert unclear.low < 0 < unclear.high and st.seed_image_difference_p(better, noisy) > 0.05
    assert st.seed_image_difference_p(better, better) == 1.0
    with pytest.raises(ValueError, match="same seeds, images and classes"):
        st.seed_image_difference(better, worse[:2])


def test_combined_interval_stays_within_mious_range():
    """Three very different seeds near 0: the t draw reaches below 0, the interval does not."""
    cms = np.stack([fake_images(np.full(N_IMAGES, acc), seed=1) for acc in (0.02, 0.3, 0.05)])
    combined = st.combine_seed_and_image(cms)
    seed_only = st.t_interval([st.miou(seed_cms) for seed_cms in cms])
    assert seed_only.low < 0 and combined.low == 0.0 and combined.high <= 1.0


def test_combined_validates():
    with pytest.raises(ValueError, match=r"shape \(N_seeds, N_images, K, K\)"):
        st.combine_seed_and_image(A)
    with pytest.raises(ValueError, match="at least 2 needed"):
        st.combine_seed_and_image(A[None, :1])
