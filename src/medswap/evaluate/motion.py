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

Steps 1 and 2 live in :mod:`medswap.evaluate.head_frame`, the events in
:mod:`medswap.evaluate.motion_events`; the displacement comparison and the whole result here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from medswap.errors import MeasureError
from medswap.evaluate.head_frame import (
    DLIB68_MOTION,
    MIN_FRAMES,
    HeadFrame,
    MotionLayout,
    absent_head,
    head_frame,
    motion_layouts,
)
from medswap.evaluate.motion_events import (
    EVENT_TOLERANCE_S,
    MIN_MOUTH_PEAK_GAP_S,
    MIN_MOUTH_PROMINENCE,
    EventMatch,
    blink_onsets,
    events_of_both,
    mouth_opening,
    mouth_peaks,
)
from medswap.faces.mesh import DLIB68_ON_MESH
from medswap.measures.face import MOTION_SMOOTH_HZ
from medswap.measures.signals import sampling_rate, segments
from medswap.types import KeypointSeries

#: A point whose original displacement varies less than this (SD, inter-ocular distances) does
#: not move: its trajectory is tracker jitter, and a correlation of jitter says nothing.
MIN_MOTION = 0.01
#: Runs of frames shorter than this are not low-passed (the filter needs some history).
MIN_SMOOTH_RUN = 15


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
    #: dlib 68 against the face mesh's matching points, both on the original (:func:`readers`):
    #: how far two readers of the same pixels agree on the motion, the reference for a copy
    #: whose face has new pixels.
    readers: DisplacementComparison

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
            "readers": {**self.readers.figures(), "reason": self.readers.reason},
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
    "readers": "dlib 68 against the face mesh's matching points, both read on the original "
    "and compared as a copy is: how far two readers of the same pixels agree; a copy's face has "
    "new pixels, and can follow the original's reading only as far as that reading is motion "
    "rather than the reader's own jitter (an estimate: the readers' jitter may be partly shared)",
    "matched": f"events of the two videos paired one to one within {EVENT_TOLERANCE_S * 1000:.0f}"
    " ms, closest first",
}


def compare_motion(
    original: KeypointSeries,
    deidentified: KeypointSeries,
    reference: DisplacementComparison | None = None,
) -> MotionResult:
    """Every motion figure of one de-identified series against the original (aligned).

    Each face is put in its own head frame once; the displacements, the mouth opening and
    the blinks are read from that. ``reference``: the original's :func:`readers`, when another
    copy of the same original has already computed it (it depends on the original alone).
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
        events_of_both("blink_onsets", blink_onsets, original, deidentified),
        events_of_both("mouth_peaks", mouth, head_o, head_d),
        events_of_both("blink_onsets_mesh", _mesh_blinks, original, deidentified),
        readers(original, head_o, fs) if reference is None else reference,
    )


def readers(
    original: KeypointSeries, dlib_head: HeadFrame | None = None, fs: float | None = None
) -> DisplacementComparison:
    """dlib's 68 points against the face mesh's matching points (``DLIB68_ON_MESH``), both read
    on the original, compared as a copy is: the figures two readers of the same pixels reach.

    A re-encode keeps the original's pixels, so a reader's jitter on them comes back with them
    and its correlations sit near 1 whatever the face does. A swap puts new pixels where the
    face is; what a reader finds there can follow the original's reading only as far as that
    reading is motion rather than the reader's own jitter, and two different readers of one
    video tell how far that is. An estimate, not a bound: the two readers' jitter may be
    partly shared, and the mesh's is smaller than dlib's.
    """
    n = len(original)
    dlib = original.groups.get(DLIB68_MOTION.layout)
    mesh = original.groups.get("face_mesh")
    if dlib is None or mesh is None:
        return _nothing(DLIB68_MOTION, n, "the original has no dlib 68 or no face mesh keypoints")
    if dlib_head is None:
        dlib_head = head_frame(dlib, DLIB68_MOTION)
    mesh_head = head_frame(mesh[:, list(DLIB68_ON_MESH)], DLIB68_MOTION)
    if mesh_head.reason:
        return _nothing(DLIB68_MOTION, n, f"face mesh: {mesh_head.reason}")
    return compare_displacements(dlib_head, mesh_head, DLIB68_MOTION, fs)


def _mesh_blinks(series: KeypointSeries) -> np.ndarray:
    return blink_onsets(series, "face_mesh")
