"""Hand motor measures: finger tapping (MDS-UPDRS 3.4), hand movements (3.5) and tremor.

All three are computed from MediaPipe's 21 hand keypoints (0 wrist, 4 thumb tip, 8 index tip,
9 middle-finger MCP, 12/16/20 other fingertips) and normalised by the hand's own size, the
wrist to middle-MCP distance, so that the values do not depend on how far the hand is from the
camera or on the video's resolution, and can be compared between an original and its
de-identified copy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy import signal as sps

from medswap.errors import MeasureError
from medswap.measures.signals import (
    Signal,
    longest_segment,
    lowpass,
    refine_peak,
    resample_uniform,
    robust_range,
    sampling_rate,
    segments,
)
from medswap.types import KeypointSeries

WRIST, THUMB_TIP, INDEX_MCP, INDEX_TIP, MIDDLE_MCP = 0, 4, 5, 8, 9
FINGERTIPS = (4, 8, 12, 16, 20)
HANDS = ("left_hand", "right_hand")

#: A movement cycle must rise above its neighbouring troughs by this share of the signal's
#: 5-95 % range to count; smaller wiggles are keypoint jitter, not taps.
MIN_PROMINENCE = 0.15
#: ...and by at least this many hand sizes, so that a still hand's jitter never makes taps.
MIN_AMPLITUDE_NORM = 0.05
#: No voluntary repetitive hand movement is faster than this (Hz); it sets the minimum spacing.
MAX_MOVEMENT_HZ = 8.0
#: Keypoint jitter above this is smoothed away (4th-order, zero phase): high enough to keep a
#: fast 6 Hz tap's full amplitude (99 %), low enough to remove frame-to-frame jitter.
SMOOTH_HZ = 10.0
#: Intervals longer than these multiples of the median interval are hesitations / halts.
HESITATION_FACTOR, HALT_FACTOR = 2.0, 4.0
#: Two opening peaks (one full interval) give a rate; rhythm values need more intervals.
MIN_CYCLES = 2
MIN_INTERVALS_FOR_RHYTHM = 3
TREMOR_BAND_HZ = (3.0, 12.0)
#: Shortest continuous stretch for a tremor spectrum: several cycles of the lowest frequency.
MIN_TREMOR_S = 2.0


@dataclass
class MeasureResult:
    """Values of one measure (JSON-ready, units in the keys) and the signals behind them."""

    values: dict
    signals: list[Signal] = field(default_factory=list)


def hand_points(series: KeypointSeries, hand: str) -> np.ndarray:
    """(N, 21, 2) x, y of one hand; raises :class:`MeasureError` when it is never visible."""
    if hand not in HANDS:
        raise ValueError(f"hand must be one of {HANDS}, got {hand!r}")
    arr = series.groups.get(hand)
    side = hand.split("_")[0]
    if arr is None:
        raise MeasureError(f"no {side} hand keypoints in this series")
    xy = np.asarray(arr[:, :, :2], dtype=float)
    n_seen = int(np.isfinite(xy[:, [WRIST, MIDDLE_MCP]]).all(axis=(1, 2)).sum())
    if n_seen == 0:
        raise MeasureError(f"no {side} hand visible in any frame")
    if n_seen < 3:
        raise MeasureError(f"the {side} hand is visible in only {n_seen} frame(s)")
    return xy


def hand_size(xy: np.ndarray) -> float:
    """Median wrist to middle-MCP distance in pixels: the length that normalises every value.

    The median over the clip, not the per-frame length, because the per-frame length shrinks
    when the hand turns (foreshortening) and would then modulate the very signal it normalises.
    """
    d = np.linalg.norm(xy[:, MIDDLE_MCP] - xy[:, WRIST], axis=1)
    d = d[np.isfinite(d) & (d > 0)]
    if d.size == 0:
        raise MeasureError("hand size (wrist to middle MCP) is never measurable")
    return float(np.median(d))


def tapping_signal(xy: np.ndarray) -> np.ndarray:
    """Thumb-tip to index-tip distance per frame, in hand sizes (MDS-UPDRS 3.4)."""
    return np.linalg.norm(xy[:, THUMB_TIP] - xy[:, INDEX_TIP], axis=1) / hand_size(xy)


def spread_signal(xy: np.ndarray) -> np.ndarray:
    """Mean fingertip distance from the wrist per frame, in hand sizes (MDS-UPDRS 3.5)."""
    tips = xy[:, list(FINGERTIPS)] - xy[:, [WRIST]]
    return np.linalg.norm(tips, axis=2).mean(axis=1) / hand_size(xy)


@dataclass
class Cycles:
    """Movement cycles found in a uniform signal: opening peaks and closing troughs."""

    peak_t: np.ndarray  # refined times of opening peaks (s)
    trough_t: np.ndarray  # times of the closing troughs between peaks (s)
    amplitude: np.ndarray  # per-cycle amplitude: peak height above its neighbouring troughs
    intervals: np.ndarray  # peak-to-peak intervals within continuous stretches (s)
    smooth: np.ndarray  # the smoothed signal the cycles were found in
    prominence: float  # the prominence threshold used


def find_cycles(grid: np.ndarray, y: np.ndarray, fs: float) -> Cycles:
    """Opening peaks, closing troughs and per-cycle amplitudes of a repetitive movement.

    The threshold is relative (a share of the 5-95 % range), so the same code serves a wide
    healthy tap and a small hypokinetic one; the minimum spacing stops keypoint jitter at a
    peak from counting twice. Stretches separated by an unbridged gap are analysed apart and
    no interval is measured across a gap.
    """
    smooth = lowpass(y, fs, SMOOTH_HZ, order=4)
    spread = robust_range(smooth)
    if not np.isfinite(spread):
        raise MeasureError("the signal is never measurable")
    prom = max(MIN_PROMINENCE * spread, MIN_AMPLITUDE_NORM)
    dist = max(1, int(np.floor(fs / MAX_MOVEMENT_HZ)))
    peak_t, trough_t, amps, intervals = [], [], [], []
    for a, b in segments(np.isfinite(smooth)):
        seg = smooth[a:b]
        if seg.size < 3:
            continue
        pk, _ = sps.find_peaks(seg, prominence=prom, distance=dist)
        if pk.size == 0:
            continue
        refined = [refine_peak(seg, int(i)) for i in pk]
        pos = np.array([r[0] for r in refined])
        hgt = np.array([r[1] for r in refined])
        # Troughs: the minimum between consecutive peaks, plus the deepest point before the
        # first and after the last peak when the stretch extends there.
        inner = [a0 + int(np.argmin(seg[a0:b0])) for a0, b0 in itertools.pairwise(pk)]
        # An edge minimum that sits on the stretch's boundary is not a trough (the movement
        # was cut off there), so it does not set an amplitude.
        before = int(np.argmin(seg[: pk[0] + 1]))
        before = before if 0 < before < pk[0] else None
        after = pk[-1] + int(np.argmin(seg[pk[-1] :]))
        after = after if pk[-1] < after < seg.size - 1 else None
        lefts = [before, *inner]
        rights = [*inner, after]
        for j in range(pk.size):
            adj = [seg[i] for i in (lefts[j], rights[j]) if i is not None]
            if adj:
                amps.append(hgt[j] - float(np.mean(adj)))
            else:
                amps.append(np.nan)
        peak_t.extend(grid[a] + pos / fs)
        trough_t.extend(grid[a] + np.array(inner, dtype=float) / fs)
        intervals.extend(np.diff(pos) / fs)
    return Cycles(
        peak_t=np.array(peak_t),
        trough_t=np.array(trough_t),
        amplitude=np.array(amps),
        intervals=np.array(intervals),
        smooth=smooth,
        prominence=float(prom),
    )


def cycle_values(cyc: Cycles, duration_s: float) -> dict:
    """Rate, amplitude, decrement and rhythm values of a cycle sequence (JSON-ready)."""
    n = cyc.peak_t.size
    if n < MIN_CYCLES or cyc.intervals.size < 1:
        raise MeasureError(
            f"only {n} movement cycle(s) found in {duration_s:.1f} s; need {MIN_CYCLES}"
        )
    iti = cyc.intervals
    med = float(np.median(iti))
    amp = cyc.amplitude
    ok = np.isfinite(amp)
    slope = float(np.polyfit(np.flatnonzero(ok), amp[ok], 1)[0]) if ok.sum() >= 2 else np.nan
    mean_amp = float(np.nanmean(amp))
    rhythm = iti.size >= MIN_INTERVALS_FOR_RHYTHM
    return {
        "tap_count": int(n),
        "frequency_hz": float(1.0 / np.mean(iti)),
        "interval_median_s": med,
        "interval_cv": float(np.std(iti) / np.mean(iti)) if rhythm else None,
        "amplitude_norm": mean_amp,
        "amplitude_cv": float(np.nanstd(amp) / mean_amp) if mean_amp > 0 else np.nan,
        # Positive when the amplitude shrinks from tap to tap (the sequence effect).
        "decrement_per_tap": -slope,
        "decrement_pct_per_tap": 100.0 * -slope / mean_amp if mean_amp > 0 else np.nan,
        # Against the median of fewer than 3 intervals nothing is "far longer": not reported.
        "hesitations": int(np.sum((iti > HESITATION_FACTOR * med) & (iti <= HALT_FACTOR * med)))
        if rhythm
        else None,
        "halts": int(np.sum(iti > HALT_FACTOR * med)) if rhythm else None,
        "duration_s": float(duration_s),
    }


def _repetitive(series: KeypointSeries, hand: str, kind: str) -> MeasureResult:
    xy = hand_points(series, hand)
    raw = tapping_signal(xy) if kind == "finger_tapping" else spread_signal(xy)
    fs = sampling_rate(series.time_s)
    grid, y = resample_uniform(series.time_s, raw, fs)
    seen = float(np.isfinite(y).sum() / fs)
    if seen < 1.0:
        raise MeasureError(f"the {hand.split('_')[0]} hand is visible for only {seen:.2f} s")
    cyc = find_cycles(grid, y, fs)
    values = cycle_values(cyc, seen)
    values["hand_size_px"] = hand_size(xy)
    values["visible_fraction"] = float(np.isfinite(raw).mean())
    label = "thumb-index distance" if kind == "finger_tapping" else "fingertip spread"
    sig = Signal(
        name=f"{kind}_{hand}",
        time_s=grid,
        columns={f"{kind}_norm": y, "smoothed_norm": cyc.smooth},
        events={"opening": cyc.peak_t, "closing": cyc.trough_t},
        ylabel=f"{label} / hand size",
    )
    return MeasureResult(values=values, signals=[sig])


def finger_tapping(series: KeypointSeries, hand: str) -> MeasureResult:
    """Finger tapping (MDS-UPDRS 3.4) of one hand from the thumb-index distance.

    ``tap_count`` counts opening peaks (one per tap cycle). Raises :class:`MeasureError` when
    the hand is not visible, or fewer than two cycles are found.
    """
    return _repetitive(series, hand, "finger_tapping")


def hand_movements(series: KeypointSeries, hand: str) -> MeasureResult:
    """Hand opening and closing (MDS-UPDRS 3.5) from the fingertip spread; same values."""
    return _repetitive(series, hand, "hand_movements")


def _tremor_point(
    grid: np.ndarray, xy: np.ndarray, fs: float, size: float
) -> tuple[dict, np.ndarray, np.ndarray]:
    a, b = longest_segment(xy)
    dur = (b - a) / fs
    lo, hi = TREMOR_BAND_HZ
    nyq = fs / 2.0
    if nyq <= lo + 0.5:
        raise MeasureError(f"{fs:.1f} fps is too slow for the {lo:g}-{hi:g} Hz tremor band")
    if dur < MIN_TREMOR_S:
        raise MeasureError(
            f"too few frames for the {lo:g}-{hi:g} Hz band: {dur:.2f} s of continuous hand, "
            f"need {MIN_TREMOR_S:g} s"
        )
    seg = xy[a:b] - xy[a:b].mean(axis=0)
    nper = min(seg.shape[0], int(round(4 * fs)))
    nfft = int(2 ** np.ceil(np.log2(nper * 8)))
    f, pxx = sps.welch(seg, fs=fs, nperseg=nper, nfft=nfft, detrend="linear", axis=0)
    p = pxx.sum(axis=1)
    top = min(hi, 0.98 * nyq)
    band = (f >= lo) & (f <= top)
    i = int(np.flatnonzero(band)[np.argmax(p[band])])
    pos, _ = refine_peak(p, i)
    freq = float(np.interp(pos, np.arange(f.size), f))
    sos = sps.butter(4, [lo, top], btype="band", fs=fs, output="sos")
    bp = sps.sosfiltfilt(sos, seg, axis=0)
    rms_px = float(np.sqrt(np.mean(np.sum(bp**2, axis=1))))
    above = f >= 0.5
    values = {
        "frequency_hz": freq,
        # Amplitude of the equivalent sinusoid (half peak-to-peak): sqrt(2) x band RMS.
        "amplitude_norm": float(np.sqrt(2.0) * rms_px / size),
        "amplitude_px": float(np.sqrt(2.0) * rms_px),
        "band_power_fraction": float(p[band].sum() / p[above].sum()) if p[above].sum() else 0.0,
        "band_hz": [lo, float(top)],
        "duration_s": float(dur),
    }
    full = np.full((grid.size, 2), np.nan)
    full[a:b] = bp
    return values, full, f


def tremor(series: KeypointSeries, hand: str) -> MeasureResult:
    """Dominant 3-12 Hz oscillation of the wrist and the index fingertip of one hand.

    The positions are resampled to a uniform grid, the longest continuous stretch is taken,
    and a linearly-detrended Welch spectrum (zero-padded, peak refined by a parabola) gives the
    dominant frequency; the amplitude is that of the 3-12 Hz band-passed displacement.
    Voluntary movement in the band (fast tapping) also shows here: the measure is meant for
    rest and postural recordings.
    """
    xy = hand_points(series, hand)
    size = hand_size(xy)
    fs = sampling_rate(series.time_s)
    values: dict = {}
    sigs = []
    for name, k in (("wrist", WRIST), ("index_tip", INDEX_TIP)):
        grid, r = resample_uniform(series.time_s, xy[:, k], fs)
        v, bp, _ = _tremor_point(grid, r, fs, size)
        values[name] = v
        sigs.append(
            Signal(
                name=f"tremor_{hand}_{name}",
                time_s=grid,
                columns={
                    f"{name}_bandpassed_x_norm": bp[:, 0] / size,
                    f"{name}_bandpassed_y_norm": bp[:, 1] / size,
                },
                ylabel=f"{name} 3-12 Hz displacement / hand size",
            )
        )
    values["hand_size_px"] = size
    return MeasureResult(values=values, signals=sigs)
