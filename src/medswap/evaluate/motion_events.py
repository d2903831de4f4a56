"""Face events matched in time: blink onsets and mouth-opening peaks, original against copy.

Step 3's third comparison in :mod:`medswap.evaluate.motion`: a clinician counts blinks and
reads speech from the mouth, so each event in the original should appear in the copy at the
same moment. Blinks are the clinical measure's own; mouth openings are peaks of the inner-lip
gap in the face's head frame. Events of the two videos are paired one to one, closest first,
within a tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from medswap.errors import MeasureError
from medswap.evaluate.head_frame import MIN_FRAMES, HeadFrame
from medswap.measures.face import blinks
from medswap.measures.signals import mad_sigma, resample_uniform, sampling_rate, segments
from medswap.types import KeypointSeries

#: Events closer than this in time are the same event seen in both videos.
EVENT_TOLERANCE_S = 0.1
#: A mouth-opening peak rises at least this far (inter-ocular distances) above the troughs
#: on either side, or this many robust SDs of the frame-to-frame jitter if that is larger.
MIN_MOUTH_PROMINENCE = 0.05
NOISE_SDS = 6.0
#: Two mouth-opening peaks are at least this far apart (syllables come at 4-5 per second).
MIN_MOUTH_PEAK_GAP_S = 0.15
#: dlib 68 inner lips: the middle of the upper and of the lower lip.
DLIB_INNER_LIP_MID = (62, 66)


@dataclass(frozen=True)
class EventMatch:
    """One kind of event in both videos, and which pairs fall within the tolerance.

    A side's times are ``None`` when they could not be measured there (``reason`` says why):
    not the same as finding no event.
    """

    kind: str  # blink_onsets | mouth_peaks
    original_s: np.ndarray | None
    deidentified_s: np.ndarray | None
    pairs: tuple[tuple[int, int], ...] = ()  # (index in original, index in copy)
    tolerance_s: float = EVENT_TOLERANCE_S
    reason: str = ""

    @property
    def n_original(self) -> int | None:
        return None if self.original_s is None else int(self.original_s.size)

    @property
    def n_deidentified(self) -> int | None:
        return None if self.deidentified_s is None else int(self.deidentified_s.size)

    @property
    def matched(self) -> int | None:
        if self.original_s is None or self.deidentified_s is None:
            return None
        return len(self.pairs)

    def _errors_ms(self) -> np.ndarray:
        if not self.pairs or self.original_s is None or self.deidentified_s is None:
            return np.zeros(0)
        i, j = np.array(self.pairs).T
        return 1000.0 * (self.deidentified_s[j] - self.original_s[i])

    @property
    def timing_error_ms_median(self) -> float:
        """Median |time in copy - time in original| of the matched events (NaN if none)."""
        e = self._errors_ms()
        return float(np.median(np.abs(e))) if e.size else math.nan

    @property
    def timing_offset_ms_mean(self) -> float:
        """Mean signed offset (copy later is positive) of the matched events."""
        e = self._errors_ms()
        return float(e.mean()) if e.size else math.nan

    def figures(self) -> dict[str, float | int | None]:
        return {
            "original": self.n_original,
            "deidentified": self.n_deidentified,
            "matched": self.matched,
            "timing_error_ms_median": self.timing_error_ms_median,
            "timing_offset_ms_mean": self.timing_offset_ms_mean,
        }


def match_events(
    a: np.ndarray, b: np.ndarray, tolerance_s: float = EVENT_TOLERANCE_S
) -> tuple[tuple[int, int], ...]:
    """One-to-one pairs of times within ``tolerance_s``, closest pairs first."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not a.size or not b.size:
        return ()
    dt = np.abs(a[:, None] - b[None, :])
    used_a, used_b, pairs = set(), set(), []
    for flat in np.argsort(dt, axis=None, kind="stable"):
        i, j = divmod(int(flat), b.size)
        if dt[i, j] > tolerance_s:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    return tuple(sorted(pairs))


def blink_onsets(series: KeypointSeries, source: str = "face_dlib68") -> np.ndarray:
    """Blink onsets (s): where the closure passes half its depth going down.

    The blinks are the clinical measure's own (:func:`medswap.measures.face.blinks`: both
    eyes, adaptive threshold), on dlib 68 (a model the swap does not use) or on the face
    mesh (the swap's own); its time is the middle of the closure, so the onset is half a
    duration earlier. Raises MeasureError when the eyes cannot be measured.
    """
    values = blinks(series, source).values
    mid = np.asarray(values["blink_times_s"], dtype=float)
    return mid - np.asarray(values["blink_durations_ms"], dtype=float) / 2000.0


def mouth_opening(head: HeadFrame) -> np.ndarray:
    """(N,) inner-lip gap of a dlib 68 face in its head frame (inter-ocular distances)."""
    top, bottom = DLIB_INNER_LIP_MID
    return np.linalg.norm(head.aligned[:, top] - head.aligned[:, bottom], axis=1)


def mouth_peaks(time_s: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """Times (s) of mouth openings: prominent peaks, at least ``MIN_MOUTH_PEAK_GAP_S`` apart.

    A peak's time is the middle of its width at half its prominence, as a blink's is the
    middle of its closure: a mouth held open has a plateau whose highest sample is wherever
    the tracker's pixel steps put it, which differs between a video and its own re-encode
    (README, "Face motion"). The prominence bar adapts like the blink threshold: a
    jittery tracker raises it rather than inventing openings.
    """
    fs = sampling_rate(time_s)
    grid, y = resample_uniform(time_s, opening, fs)
    if np.isfinite(y).sum() < MIN_FRAMES:
        raise MeasureError(f"the mouth is seen in fewer than {MIN_FRAMES} frames")
    noise = mad_sigma(np.diff(y)) / np.sqrt(2.0)
    prominence = max(MIN_MOUTH_PROMINENCE, NOISE_SDS * noise) if math.isfinite(noise) else 0.0
    gap = max(1, int(MIN_MOUTH_PEAK_GAP_S * fs))
    times: list[float] = []
    for a, b in segments(np.isfinite(y)):
        _, props = sps.find_peaks(
            y[a:b], prominence=prominence, distance=gap, width=0, rel_height=0.5
        )
        mids = (props["left_ips"] + props["right_ips"]) / 2.0
        times += [float(grid[a] + m / fs) for m in mids]
    return np.asarray(times, dtype=float)


def events_of_both(kind: str, measure, original, deidentified) -> EventMatch:
    """Measure one kind of event on both sides and match them; a side that fails says why."""
    times, reasons = [], []
    for side, item in (("original", original), ("de-identified", deidentified)):
        try:
            times.append(measure(item))
        except MeasureError as exc:
            times.append(None)
            reasons.append(f"{side}: {exc}")
    a, b = times
    pairs = match_events(a, b) if a is not None and b is not None else ()
    return EventMatch(kind, a, b, pairs, reason="; ".join(reasons))
