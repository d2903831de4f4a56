"""Face motion kept by de-identification: each face judged against its own resting shape.

The absolute landmark error (:mod:`medswap.evaluate.invariance`) asks whether the output face
has the patient's landmarks where the patient had them. A swap that gives the output the
donor's resting geometry fails that by design, while keeping what a clinician needs from the
face: blinks, mouth opening, the amplitude and timing of expressions. So the face is also
judged by its motion:

1. **Head frame.** Each frame's landmarks are mapped by a similarity fit (Umeyama, on points
   that move with the skull, not with expression: eye corners and nose) onto the face's own
   reference, scaled so the inter-ocular distance is 1 and the eye line is horizontal. What
   remains is expression, in inter-ocular distances, with the head's translation, in-plane
   rotation and distance to the camera taken out (turns out of the image plane are not).
2. **Neutral shape.** The per-point median of the head-frame landmarks over the clip, computed
   separately for the original and for the de-identified face. A median, not the frame of
   least expression energy: energy needs a neutral to be measured from, and a median ignores
   whatever the face does less than half the time (blinks, speech, a smile), without a
   threshold to tune. A face that smiles through most of the clip has its smile as neutral:
   both videos then measure motion from the same smile.
3. **Displacement** of each landmark from its neutral, per frame, and three comparisons of
   original and copy: the NME of displacements, the per-point trajectory correlation with the
   amplitude ratio, and events (blink onsets, mouth-opening peaks) matched in time.

:class:`~medswap.types.KeypointSeries` holds one face per frame, so one face track is the
clip: frames where the face is missing are left out, not bridged. Absent faces give NaN and a
reason, never zeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import signal as sps

from medswap.errors import MeasureError
from medswap.geometry import similarity_transform, transform_points
from medswap.keypoints.schema import DLIB68_NAMES, LAYOUTS, MESH_NAMES
from medswap.measures.face import MOTION_SMOOTH_HZ, blinks
from medswap.measures.signals import (
    mad_sigma,
    resample_uniform,
    sampling_rate,
    segments,
)
from medswap.types import KeypointSeries

#: A face seen in fewer frames has no neutral shape worth the name, nor a trajectory.
MIN_FRAMES = 10
#: A point whose original displacement varies less than this (SD, inter-ocular distances) does
#: not move: its trajectory is tracker jitter, and a correlation of jitter says nothing.
MIN_MOTION = 0.01
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
#: Runs of frames shorter than this are not low-passed (the filter needs some history).
MIN_SMOOTH_RUN = 15
#: Refinement rounds of the reference shape (first frame, then medians of aligned frames).
REFERENCE_ROUNDS = 3


@dataclass(frozen=True)
class MotionLayout:
    """Which points of a face layout carry the head's pose and which carry expression."""

    group: str  # the evaluation group's name, as in the invariance table
    layout: str  # the KeypointSeries group
    names: tuple[str, ...]
    rigid: tuple[int, ...]  # move with the skull: the similarity fit uses only these
    expressive: tuple[int, ...]  # eyelids, brows, lips
    eyes: tuple[int, int]  # outer eye corners: the inter-ocular distance


def _span(start: int, stop: int) -> tuple[int, ...]:
    return tuple(range(start, stop))


DLIB68_MOTION = MotionLayout(
    group="face-dlib68",
    layout="face_dlib68",
    names=DLIB68_NAMES,
    # nose bridge and lower nose (27-35), eye corners (36, 39, 42, 45); not the jaw (it opens)
    rigid=(*_span(27, 36), 36, 39, 42, 45),
    expressive=(*_span(17, 27), *_span(36, 48), *_span(48, 68)),
    eyes=LAYOUTS["face_dlib68"].normaliser,
)


@cache
def mesh_motion_layout() -> MotionLayout:
    """The face mesh's layout; its feature contours come from MediaPipe's own tables."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    from medswap.faces.mesh import RIGID_POINTS

    sets = (
        fmc.FACEMESH_LIPS,
        fmc.FACEMESH_LEFT_EYE,
        fmc.FACEMESH_RIGHT_EYE,
        fmc.FACEMESH_LEFT_EYEBROW,
        fmc.FACEMESH_RIGHT_EYEBROW,
    )
    expressive = tuple(sorted({i for edges in sets for edge in edges for i in edge}))
    return MotionLayout(
        "face-mesh",
        "face_mesh",
        MESH_NAMES,
        tuple(RIGID_POINTS),
        expressive,
        LAYOUTS["face_mesh"].normaliser,
    )


def motion_layouts() -> tuple[MotionLayout, ...]:
    """The face groups judged by motion: dlib 68 first (the swap does not use it)."""
    return (DLIB68_MOTION, mesh_motion_layout())


# -- one face in its own head frame -----------------------------------------------------------


@dataclass(frozen=True)
class HeadFrame:
    """One face's landmarks with the head's pose taken out, and its own neutral shape.

    ``aligned`` is (N, K, 2) in inter-ocular distances of the neutral face, NaN in frames
    without the face; ``neutral`` is (K, 2). ``reason`` says why there is none (then both are
    NaN).
    """

    aligned: np.ndarray
    neutral: np.ndarray
    reason: str = ""

    @property
    def seen(self) -> np.ndarray:
        """(N,) True in frames where the face was found."""
        return np.isfinite(self.aligned).all(axis=(1, 2))

    @property
    def displacement(self) -> np.ndarray:
        """(N, K, 2) each landmark's offset from its neutral position."""
        return self.aligned - self.neutral[None]


def _align_all(xy: np.ndarray, frames: np.ndarray, ref: np.ndarray, rigid: list[int]) -> np.ndarray:
    out = np.full(xy.shape, np.nan)
    for i in frames:
        m = similarity_transform(xy[i, rigid], ref[rigid])
        out[i] = transform_points(m, xy[i])
    return out


def _canonical(shape: np.ndarray, eyes: tuple[int, int]) -> np.ndarray:
    """``shape`` with its outer eye corners at (-0.5, 0) and (0.5, 0): eye line level, IOD 1."""
    target = np.array([[-0.5, 0.0], [0.5, 0.0]])
    return transform_points(similarity_transform(shape[list(eyes)], target), shape)


def head_frame(xy: np.ndarray, layout: MotionLayout) -> HeadFrame:
    """The face's landmarks (N, K, 2+) in its own head frame, and its neutral shape.

    The reference starts as the first frame with the face and is refined as the median of
    the aligned frames, so it does not depend on which frame came first.
    """
    xy = np.asarray(xy, dtype=np.float64)[..., :2]
    n, k = xy.shape[:2]
    frames = np.flatnonzero(np.isfinite(xy).all(axis=(1, 2)))
    if frames.size < MIN_FRAMES:
        return absent_head(n, k, _few(frames.size))
    rigid = list(layout.rigid)
    ref = _canonical(xy[frames[0]], layout.eyes)
    for _ in range(REFERENCE_ROUNDS):
        aligned = _align_all(xy, frames, ref, rigid)
        ref = _canonical(np.median(aligned[frames], axis=0), layout.eyes)
    aligned = _align_all(xy, frames, ref, rigid)
    return HeadFrame(aligned, np.median(aligned[frames], axis=0))


def absent_head(n: int, k: int, reason: str) -> HeadFrame:
    """The head frame of a face that cannot be measured: NaN, with the reason."""
    return HeadFrame(np.full((n, k, 2), np.nan), np.full((k, 2), np.nan), reason)


def _few(count: int) -> str:
    return f"face found in {count} frame(s), fewer than {MIN_FRAMES}"


# -- displacements of the original against the copy -------------------------------------------


@dataclass(frozen=True)
class DisplacementComparison:
    """How one face layout's motion in the copy follows the original's.

    Arrays are per frame (N,) or per point (K,); NaN where not comparable. Figures are NaN
    with ``reason`` set when there was nothing to compare.
    """

    layout: MotionLayout
    nme: np.ndarray  # (N,) mean |displacement error| over points, inter-ocular distances
    correlation: np.ndarray  # (K,) Pearson over time, x and y pooled; NaN if it does not move
    correlation_x: np.ndarray  # (K,)
    correlation_y: np.ndarray  # (K,)
    amplitude_ratio: np.ndarray  # (K,) SD of the copy's displacement / the original's
    motion_original: np.ndarray  # (K,) SD of the original's displacement (x and y pooled)
    frames_compared: int
    reason: str = ""

    @property
    def group(self) -> str:
        return self.layout.group

    def _stat(self, values: np.ndarray, fn) -> float:
        finite = values[np.isfinite(values)]
        return float(fn(finite)) if finite.size else math.nan

    @property
    def nme_median(self) -> float:
        return self._stat(self.nme, np.median)

    @property
    def nme_mean(self) -> float:
        return self._stat(self.nme, np.mean)

    @property
    def nme_p95(self) -> float:
        return self._stat(self.nme, lambda v: np.percentile(v, 95))

    @property
    def moving(self) -> np.ndarray:
        """(K,) points that move in the original (their correlation means something)."""
        return np.isfinite(self.motion_original) & (self.motion_original >= MIN_MOTION)

    def _expressive(self, values: np.ndarray) -> np.ndarray:
        return values[list(self.layout.expressive)]

    @property
    def correlation_median(self) -> float:
        return self._stat(self.correlation, np.median)

    @property
    def correlation_expressive_median(self) -> float:
        return self._stat(self._expressive(self.correlation), np.median)

    @property
    def amplitude_ratio_median(self) -> float:
        return self._stat(self.amplitude_ratio, np.median)

    @property
    def amplitude_ratio_expressive_median(self) -> float:
        return self._stat(self._expressive(self.amplitude_ratio), np.median)

    @property
    def points_moving(self) -> int:
        return int(self.moving.sum())

    @property
    def expressive_points_moving(self) -> int:
        return int(self._expressive(self.moving).sum())

    def figures(self) -> dict[str, float | int]:
        """The summary numbers, by name (for metrics.json and the CSV table)."""
        return {
            "displacement_nme_median": self.nme_median,
            "displacement_nme_mean": self.nme_mean,
            "displacement_nme_p95": self.nme_p95,
            "correlation_median": self.correlation_median,
            "correlation_expressive_median": self.correlation_expressive_median,
            "amplitude_ratio_median": self.amplitude_ratio_median,
            "amplitude_ratio_expressive_median": self.amplitude_ratio_expressive_median,
            "points_moving": self.points_moving,
            "expressive_points_moving": self.expressive_points_moving,
            "frames_compared": self.frames_compared,
        }


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson over axis 0 of (M, K, D) arrays, the D axes pooled: (K,). NaN if flat."""
    ca, cb = a - a.mean(axis=0), b - b.mean(axis=0)
    num = (ca * cb).sum(axis=(0, 2))
    den = np.sqrt((ca**2).sum(axis=(0, 2)) * (cb**2).sum(axis=(0, 2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _spread(d: np.ndarray) -> np.ndarray:
    """(K,) SD over time of (M, K, 2) displacements, x and y pooled."""
    return np.sqrt(((d - d.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0))


def _nothing(layout: MotionLayout, n: int, reason: str) -> DisplacementComparison:
    k = len(layout.names)
    nan_k = np.full(k, np.nan)
    return DisplacementComparison(
        layout, np.full(n, np.nan), nan_k, nan_k, nan_k, nan_k, nan_k, 0, reason
    )


def smooth_runs(d: np.ndarray, valid: np.ndarray, fs: float | None) -> np.ndarray:
    """(N, ...) ``d`` low-passed at ``MOTION_SMOOTH_HZ`` (zero phase) over each run of valid
    frames; runs too short to filter, and a frame rate too low, leave it as it is.

    Expressions and blinks are slower than that; a tracker's frame-to-frame jitter is not,
    and in a correlation it would read as disagreement between two faces that move alike.
    """
    out = d.copy()
    if fs is None or not 0.45 * fs > MOTION_SMOOTH_HZ:
        return out
    sos = sps.butter(2, MOTION_SMOOTH_HZ, btype="low", fs=fs, output="sos")
    for a, b in segments(valid):
        if b - a >= MIN_SMOOTH_RUN:
            out[a:b] = sps.sosfiltfilt(sos, d[a:b], axis=0)
    return out


def compare_displacements(
    original: HeadFrame,
    deidentified: HeadFrame,
    layout: MotionLayout,
    fs: float | None = None,
) -> DisplacementComparison:
    """Displacement error, trajectory correlation and amplitude ratio of one layout.

    The error is taken frame by frame on the displacements as measured; the correlation and
    the amplitude ratio on trajectories low-passed at ``MOTION_SMOOTH_HZ`` (``fs``: the frame
    rate; None leaves them unfiltered), because they are about the motion, not the jitter.
    """
    n = original.aligned.shape[0]
    if original.reason:
        return _nothing(layout, n, f"original: {original.reason}")
    if deidentified.reason:
        return _nothing(layout, n, f"de-identified: {deidentified.reason}")
    both = original.seen & deidentified.seen
    if both.sum() < MIN_FRAMES:
        return _nothing(layout, n, f"face in both videos in {int(both.sum())} frame(s)")
    do, dd = original.displacement[both], deidentified.displacement[both]
    nme = np.full(n, np.nan)
    nme[both] = np.linalg.norm(do - dd, axis=2).mean(axis=1)
    do = smooth_runs(original.displacement, both, fs)[both]
    dd = smooth_runs(deidentified.displacement, both, fs)[both]
    spread_o = _spread(do)
    moving = spread_o >= MIN_MOTION
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(moving, _spread(dd) / spread_o, np.nan)

    def r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(moving, _pearson(a, b), np.nan)

    return DisplacementComparison(
        layout,
        nme,
        r(do, dd),
        r(do[..., :1], dd[..., :1]),
        r(do[..., 1:], dd[..., 1:]),
        ratio,
        spread_o,
        int(both.sum()),
    )


# -- events matched in time ---------------------------------------------------------------------


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


def _events(kind: str, measure, original, deidentified) -> EventMatch:
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


# -- the whole comparison ------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionResult:
    """Face motion of one de-identified video against the original."""

    groups: dict[str, DisplacementComparison]  # by group name: face-dlib68, face-mesh
    blinks: EventMatch  # on dlib 68
    mouth_peaks: EventMatch  # on dlib 68
    #: Blinks on the face mesh, the swap's own landmarks: beside dlib's, it tells a blink the
    #: output lacks from one that only an independent model does not read.
    blinks_mesh: EventMatch

    @property
    def events(self) -> tuple[EventMatch, ...]:
        return (self.blinks, self.mouth_peaks, self.blinks_mesh)

    @property
    def headline(self) -> DisplacementComparison:
        """dlib 68: a model the swap does not use."""
        return self.groups[DLIB68_MOTION.group]

    def to_json(self) -> dict:
        """Figures and reasons as plain JSON values (NaN stays NaN: the writer makes it null)."""
        return {
            "groups": {
                name: {**g.figures(), "reason": g.reason} for name, g in self.groups.items()
            },
            "events": {
                e.kind: {
                    **e.figures(),
                    "original_s": None if e.original_s is None else e.original_s.round(3),
                    "deidentified_s": (
                        None if e.deidentified_s is None else e.deidentified_s.round(3)
                    ),
                    "tolerance_s": e.tolerance_s,
                    "reason": e.reason,
                }
                for e in self.events
            },
        }


DEFINITIONS = {
    "face_track": "one face per frame (the keypoints hold one), so the track is the clip; "
    "frames without the face are left out",
    "head_frame": "landmarks mapped by a similarity fit on eye corners and nose onto the "
    "face's own reference (eye line level, inter-ocular distance 1): head position, in-plane "
    "rotation and scale removed",
    "neutral": "per-point median of the head-frame landmarks over the clip, for the original "
    "and the de-identified face separately",
    "displacement": "a landmark's offset from its neutral position, in inter-ocular distances",
    "displacement_nme": "per frame, mean distance between the original's and the copy's "
    "displacements over all points; median, mean and 95th percentile over frames",
    "correlation": "per point, Pearson correlation over time of the original's and the "
    f"copy's displacement (x and y pooled; both low-passed at {MOTION_SMOOTH_HZ:g} Hz, zero "
    "phase, so tracker jitter does not count), for points whose displacement SD is at least "
    f"{MIN_MOTION} inter-ocular distances in the original; median over points, and over the "
    "expressive points (eyelids, brows, lips)",
    "amplitude_ratio": "per moving point, SD of the copy's displacement / the original's; "
    "1 keeps the motion's size, 0.5 halves it",
    "blink_onsets": "dlib 68 blinks (both eyes close to half their open aspect ratio); onset "
    "= where the closure passes half its depth",
    "blink_onsets_mesh": "the same blinks on the face mesh (the swap's own landmarks)",
    "mouth_peaks": "openings of the dlib 68 inner-lip gap (62-66) in the head frame: peaks "
    f"with a prominence of at least {MIN_MOUTH_PROMINENCE} inter-ocular distances, "
    f"{MIN_MOUTH_PEAK_GAP_S} s apart, timed at the middle of their width at half prominence",
    "matched": f"events of the two videos paired one to one within {EVENT_TOLERANCE_S * 1000:.0f}"
    " ms, closest first",
}


def compare_motion(original: KeypointSeries, deidentified: KeypointSeries) -> MotionResult:
    """Every motion figure of one de-identified series against the original (aligned).

    Each face is put in its own head frame once; the displacements, the mouth opening and
    the blinks are read from that.
    """
    n = len(original)
    try:
        fs: float | None = sampling_rate(original.time_s)
    except MeasureError:  # one frame: nothing to filter
        fs = None
    groups, heads = {}, {}
    for layout in motion_layouts():
        pair = []
        for side, series in (("original", original), ("de-identified", deidentified)):
            arr = series.groups.get(layout.layout)
            if arr is None:
                reason = f"no {layout.layout} keypoints in the {side} series"
                pair.append(absent_head(n, len(layout.names), reason))
            else:
                pair.append(head_frame(arr, layout))
        heads[layout.group] = pair
        groups[layout.group] = compare_displacements(pair[0], pair[1], layout, fs)

    def mouth(head: HeadFrame) -> np.ndarray:
        if head.reason:
            raise MeasureError(head.reason)
        return mouth_peaks(original.time_s, mouth_opening(head))

    head_o, head_d = heads[DLIB68_MOTION.group]
    return MotionResult(
        groups,
        _events("blink_onsets", blink_onsets, original, deidentified),
        _events("mouth_peaks", mouth, head_o, head_d),
        _events("blink_onsets_mesh", _mesh_blinks, original, deidentified),
    )


def _mesh_blinks(series: KeypointSeries) -> np.ndarray:
    return blink_onsets(series, "face_mesh")
