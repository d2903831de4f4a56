"""Summary statistics across videos: median and IQR, and the paired Wilcoxon signed-rank test.

Everything here ignores NaN (a video where a group was never detected has no error to
summarise) and says how many values it used, so a table never hides a small sample.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class MedianIQR:
    """Median and inter-quartile range of the finite values, and how many there were."""

    median: float
    q1: float
    q3: float
    n: int

    def format(self, digits: int = 3) -> str:
        if self.n == 0:
            return "n/a"
        if self.n == 1:
            return f"{self.median:.{digits}f}"
        return f"{self.median:.{digits}f} [{self.q1:.{digits}f}-{self.q3:.{digits}f}]"

    def to_json(self) -> dict:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def median_iqr(values) -> MedianIQR:
    """Median, 25th and 75th percentiles of the finite values."""
    arr = np.asarray(list(values), dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return MedianIQR(math.nan, math.nan, math.nan, 0)
    q1, med, q3 = np.percentile(arr, [25, 50, 75])
    return MedianIQR(float(med), float(q1), float(q3), int(arr.size))


@dataclass(frozen=True)
class PairedTest:
    """Wilcoxon signed-rank test of ``a`` against ``b``, paired by video."""

    n: int
    statistic: float
    p_value: float
    median_difference: float  # median of a - b
    note: str = ""

    def to_json(self) -> dict:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def wilcoxon_paired(a, b) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test on the pairs where both values are finite.

    With fewer than 6 pairs no two-sided p-value can fall below 0.05; the note says so, so a
    three-video comparison is read as a description, not as evidence.
    """
    from scipy.stats import wilcoxon

    x = np.asarray(list(a), dtype=np.float64)
    y = np.asarray(list(b), dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    if n == 0:
        return PairedTest(0, math.nan, math.nan, math.nan, "no video where both were measured")
    diff = x - y
    med = float(np.median(diff))
    if np.all(diff == 0):
        return PairedTest(n, math.nan, 1.0, med, "all paired values equal")
    res = wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    note = "fewer than 6 videos: p cannot fall below 0.05" if n < 6 else ""
    return PairedTest(n, float(res.statistic), float(res.pvalue), med, note)
