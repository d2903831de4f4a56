"""Summary statistics across videos: median and IQR, the paired Wilcoxon signed-rank test,
and their 95 % confidence intervals.

Everything here ignores NaN (a video where a group was never detected has no error to
summarise) and says how many values it used, so a table never hides a small sample.

A spread, an interval or a test across videos needs at least :data:`MIN_VIDEOS` (3) of them:
with two videos the "IQR" is the two values and a limit of agreement is a guess. Below that
nothing is computed and the note says ``needs at least 3 videos, had N``; the median is still
given (with one video it is that video's value), marked with its ``n``.

Confidence intervals of a median are a percentile bootstrap over videos (:data:`N_BOOT`
resamples of the videos with replacement, fixed seed :data:`SEED`, so a report is the same
run to run). Videos are the unit: frames of one video are not independent samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

from medswap.measures import MIN_VIDEOS, too_few
from medswap.outputs import json_safe

__all__ = [
    "MIN_VIDEOS",
    "MedianIQR",
    "PairedTest",
    "bootstrap_ci",
    "median_iqr",
    "too_few",
    "wilcoxon_paired",
]

#: Bootstrap resamples and seed of every confidence interval over videos.
N_BOOT = 2000
SEED = 0
LEVEL = 0.95
CI_METHOD = (
    f"95 % percentile bootstrap over videos ({N_BOOT} resamples, seed {SEED}); "
    f"needs at least {MIN_VIDEOS} videos"
)


def bootstrap_ci(
    values: Iterable[float],
    statistic: Callable[[np.ndarray], float] = np.median,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    level: float = LEVEL,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the finite values (one per video).

    NaN, NaN below :data:`MIN_VIDEOS` values. The resampling is vectorised: 2000 x n draws.
    """
    arr = np.asarray(list(values), dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size < MIN_VIDEOS:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))]
    stats = (
        np.median(draws, axis=1)
        if statistic is np.median
        else np.apply_along_axis(statistic, 1, draws)
    )
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)


@dataclass(frozen=True)
class MedianIQR:
    """Median, inter-quartile range and 95 % CI of the median of the finite values.

    With fewer than :data:`MIN_VIDEOS` values only the median is given; ``note`` says why.
    """

    median: float
    q1: float
    q3: float
    n: int
    ci_low: float = math.nan
    ci_high: float = math.nan
    note: str = ""

    def format(self, digits: int = 3) -> str:
        if self.n == 0:
            return "n/a"
        med = f"{self.median:.{digits}f}"
        if self.n < MIN_VIDEOS:
            return f"{med} (IQR, CI: {too_few(self.n)})"
        return (
            f"{med} [{self.q1:.{digits}f}-{self.q3:.{digits}f}]; "
            f"CI {self.ci_low:.{digits}f}-{self.ci_high:.{digits}f}"
        )

    def to_json(self) -> dict:
        return json_safe(asdict(self))


def median_iqr(values) -> MedianIQR:
    """Median, 25th and 75th percentiles and the bootstrap CI of the median (n >= 3)."""
    arr = np.asarray(list(values), dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return MedianIQR(math.nan, math.nan, math.nan, 0, note="no video measured")
    med = float(np.median(arr))
    if arr.size < MIN_VIDEOS:
        return MedianIQR(med, math.nan, math.nan, int(arr.size), note=too_few(int(arr.size)))
    q1, q3 = np.percentile(arr, [25, 75])
    lo, hi = bootstrap_ci(arr)
    return MedianIQR(med, float(q1), float(q3), int(arr.size), lo, hi)


@dataclass(frozen=True)
class PairedTest:
    """Wilcoxon signed-rank test of ``a`` against ``b``, paired by video.

    ``ci_low``/``ci_high``: 95 % bootstrap interval of the median paired difference.
    """

    n: int
    statistic: float
    p_value: float
    median_difference: float  # median of a - b
    note: str = ""
    ci_low: float = math.nan
    ci_high: float = math.nan

    def to_json(self) -> dict:
        return json_safe(asdict(self))


def wilcoxon_paired(a, b) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test on the pairs where both values are finite.

    Not computed on fewer than :data:`MIN_VIDEOS` pairs. With fewer than 6 pairs no two-sided
    p-value can fall below 0.05; the note says so, so a three-video comparison is read as a
    description, not as evidence.
    """
    from scipy.stats import wilcoxon

    x = np.asarray(list(a), dtype=np.float64)
    y = np.asarray(list(b), dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    if n == 0:
        return PairedTest(0, math.nan, math.nan, math.nan, "no video where both were measured")
    if n < MIN_VIDEOS:
        return PairedTest(n, math.nan, math.nan, math.nan, too_few(n))
    diff = x - y
    med = float(np.median(diff))
    lo, hi = bootstrap_ci(diff)
    if np.all(diff == 0):
        return PairedTest(n, math.nan, 1.0, med, "all paired values equal", lo, hi)
    res = wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    note = "fewer than 6 videos: p cannot fall below 0.05" if n < 6 else ""
    return PairedTest(n, float(res.statistic), float(res.pvalue), med, note, lo, hi)
