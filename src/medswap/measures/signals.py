"""Signal plumbing shared by every measure: a uniform time grid, gaps, smoothing, cycles.

Keypoints arrive at the video's frame times, which may be variable-rate, and with NaN where a
hand or face was not seen. Every spectral or rate estimate assumes evenly spaced samples, so
each signal is first put on a uniform grid: short gaps are bridged by linear interpolation
(a dropped frame or two must not split a tapping sequence), long gaps stay NaN so that a hand
that left the picture never turns into an invented movement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal as sps

from medswap.errors import MeasureError

#: Gaps up to this long are bridged by interpolation; longer ones stay missing.
MAX_BRIDGE_S = 0.25


@dataclass
class Signal:
    """One measure's trace on a uniform grid, with the events found in it (for CSV and plots).

    ``columns`` maps a column name to an array the length of ``time_s``; the first column is the
    main trace. ``events`` maps an event kind ("tap", "blink") to event times in seconds, and
    ``thresholds`` holds horizontal reference lines worth drawing (name -> value).
    """

    name: str
    time_s: np.ndarray
    columns: dict[str, np.ndarray]
    events: dict[str, np.ndarray] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    ylabel: str = ""

    @property
    def main(self) -> np.ndarray:
        return next(iter(self.columns.values()))


def sampling_rate(time_s: np.ndarray) -> float:
    """The median frame rate of (possibly variable-rate) timestamps, in Hz."""
    t = np.asarray(time_s, dtype=float)
    dt = np.diff(t[np.isfinite(t)])
    dt = dt[dt > 0]
    if dt.size == 0:
        raise MeasureError("fewer than two distinct frame timestamps")
    return float(1.0 / np.median(dt))


def resample_uniform(
    time_s: np.ndarray,
    values: np.ndarray,
    fs: float | None = None,
    max_bridge_s: float = MAX_BRIDGE_S,
) -> tuple[np.ndarray, np.ndarray]:
    """Put ``values`` (N,) or (N, D) sampled at ``time_s`` on a uniform grid at ``fs`` Hz.

    The grid runs from the first to the last finite sample. Points inside a gap in the input
    longer than ``max_bridge_s`` are NaN; everything else is linearly interpolated. ``fs``
    defaults to the median frame rate, so nothing is invented on a constant-rate clip.
    """
    t = np.asarray(time_s, dtype=float)
    v = np.asarray(values, dtype=float)
    squeeze = v.ndim == 1
    v2 = v.reshape(len(t), -1)
    ok = np.isfinite(t) & np.all(np.isfinite(v2), axis=1)
    if ok.sum() < 2:
        raise MeasureError(f"only {int(ok.sum())} frame(s) with the keypoints needed")
    tv, vv = t[ok], v2[ok]
    order = np.argsort(tv, kind="stable")
    tv, vv = tv[order], vv[order]
    keep = np.concatenate([[True], np.diff(tv) > 0])
    tv, vv = tv[keep], vv[keep]
    if fs is None:
        fs = sampling_rate(t)
    n = int(np.floor((tv[-1] - tv[0]) * fs + 1e-9)) + 1
    grid = tv[0] + np.arange(n) / fs
    out = np.column_stack([np.interp(grid, tv, vv[:, j]) for j in range(vv.shape[1])])
    # Mark grid points that fall in a gap of the input longer than max_bridge_s.
    pos = np.searchsorted(tv, grid, side="right")
    pos = np.clip(pos, 1, len(tv) - 1)
    gap = tv[pos] - tv[pos - 1]
    inside = (grid > tv[pos - 1]) & (grid < tv[pos])
    out[inside & (gap > max_bridge_s)] = np.nan
    return grid, (out[:, 0] if squeeze else out)


def segments(valid: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a boolean array as half-open (start, stop) index pairs."""
    v = np.concatenate([[False], np.asarray(valid, bool), [False]])
    d = np.diff(v.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def longest_segment(x: np.ndarray) -> tuple[int, int]:
    """The longest NaN-free run of a 1-D or (N, D) array."""
    valid = np.all(np.isfinite(x.reshape(len(x), -1)), axis=1)
    runs = segments(valid)
    if not runs:
        return 0, 0
    return max(runs, key=lambda r: r[1] - r[0])


def lowpass(x: np.ndarray, fs: float, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth low-pass applied to each NaN-free run separately.

    Zero phase matters: a causal filter would delay taps and blinks and bias their timing.
    A run too short to filter is left as it is.
    """
    y = np.array(x, dtype=float, copy=True)
    if cutoff_hz >= 0.45 * fs:
        return y
    sos = sps.butter(order, cutoff_hz, btype="low", fs=fs, output="sos")
    for a, b in segments(np.isfinite(y)):
        if b - a > 15:
            y[a:b] = sps.sosfiltfilt(sos, y[a:b], padlen=min(3 * (2 * order + 1), b - a - 1))
    return y


def refine_peak(y: np.ndarray, i: int) -> tuple[float, float]:
    """Sub-sample position and height of a local extremum by parabolic interpolation.

    Frame-quantised peak times would limit a rate estimate to the frame period; the parabola
    through the three samples around the peak recovers the vertex to a small fraction of it.
    """
    if i <= 0 or i >= len(y) - 1 or not np.all(np.isfinite(y[i - 1 : i + 2])):
        return float(i), float(y[i])
    a, b, c = y[i - 1], y[i], y[i + 1]
    den = a - 2 * b + c
    if den == 0:
        return float(i), float(b)
    off = 0.5 * (a - c) / den
    off = float(np.clip(off, -0.5, 0.5))
    return i + off, float(b - 0.25 * (a - c) * off)


def robust_range(x: np.ndarray, lo: float = 5, hi: float = 95) -> float:
    """Spread of a signal between two percentiles, ignoring NaN (outliers do not set scales)."""
    f = x[np.isfinite(x)]
    if f.size == 0:
        return float("nan")
    return float(np.percentile(f, hi) - np.percentile(f, lo))


def mad_sigma(x: np.ndarray) -> float:
    """Robust standard deviation: 1.4826 x the median absolute deviation."""
    f = x[np.isfinite(x)]
    if f.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(f - np.median(f))))
