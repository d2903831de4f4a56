"""Follow faces across frames: stable ids, bridged gaps, smoothed landmarks.

Landmarks are smoothed in two parts. The head's pose (a similarity fit of the rigid points)
is smoothed strongly, which removes the shimmer of a still face; the expression on top of it
only lightly, because it is the clinical signal: one strong filter over every point, as the
tracker first had, took 50% of the facial motion energy out of the swapped expression_c.mp4
(face mesh on the output against the original, benchmarks/measures_clips.py --swap; 6% with
this split) and 21% out of expression_b.mp4 (now within 5%).

A per-frame detector flickers: it misses a face for a frame, or finds a face the mesh did not.
For de-identification, a miss is the dangerous case, because that frame would show the patient.
The tracker therefore keeps a track alive for ``max_gap`` frames after its last sighting and
reports it as ``bridged``; the pipeline obscures bridged faces. Detector-only faces (no mesh)
are reported as ``detector`` and are obscured too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medswap.faces.mesh import INNER_LIPS, LEFT_EYE, RIGHT_EYE, RIGID_POINTS, landmarks_box
from medswap.geometry import similarity_transform, transform_points
from medswap.types import FaceTrackState


def _intersection(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise intersection areas of boxes a (N, 4) and b (M, 4), and each set's areas."""
    a = a.reshape(-1, 4)[:, None, :]
    b = b.reshape(-1, 4)[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return w * h, area_a, area_b


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection-over-union of boxes a (N, 4) and b (M, 4)."""
    inter, area_a, area_b = _intersection(a, b)
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def coverage(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """Fraction of each ``inner`` box (N, 4) covered by each ``outer`` box (M, 4)."""
    inter, area_inner, _ = _intersection(inner, outer)
    return inter / np.maximum(area_inner, 1e-9)


class OneEuroFilter:
    """Speed-adaptive low-pass filter (Casiez et al., CHI 2012) for landmark jitter.

    Slow motion is smoothed strongly (no shimmer on a still face); fast motion passes almost
    unfiltered (no lag on a blink or a quick head turn).

    ``beta`` sets how fast the cut-off rises with speed. At 0.05 a head starting to turn at
    half a face width per second trailed by 2% of the face width (about 0.05 inter-ocular
    distance, the whole landmark budget), and the swapped face lagged the patient's: dlib's
    median landmark error on expression_b.mp4 (a child moving constantly) was 0.055, 0.042 at
    0.5, 0.039 with no smoothing at all (every 3rd frame, benchmarks/swap_quality.py). 0.5
    keeps most of the still-face smoothing: white noise of 0.1% of the face width on a still
    point at 30 fps comes out at 41% of its standard deviation, against 36% at 0.05 (0.2%: 46%
    against 37%).
    """

    def __init__(self, min_cutoff: float = 1.5, beta: float = 0.5, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x
        dt = t - self._t
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        # Speed in face-sizes per second, so the filter behaves the same at any resolution.
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx) / max(scale, 1e-6) * 100
        a = self._alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x.copy()


#: Fast local motions that smoothing must not flatten: (anchor points, moving points). The
#: moving points keep their raw position relative to their anchors, which are smoothed.
#: Measured on expression_a.mp4: smoothing every point alike cut a blink's depth in half on
#: the landmarks the swap follows (eye aspect ratio 0.08 instead of 0.05) and delayed it by
#: a frame, so the swapped face's blink was shallower and late.
FAST_GROUPS = (
    ([RIGHT_EYE[0], RIGHT_EYE[8]], RIGHT_EYE[1:8] + RIGHT_EYE[9:]),
    ([LEFT_EYE[0], LEFT_EYE[8]], LEFT_EYE[1:8] + LEFT_EYE[9:]),
    ([INNER_LIPS[0], INNER_LIPS[10]], INNER_LIPS[1:10] + INNER_LIPS[11:]),
)


#: The expression's filter: a cut-off this high still takes frame-to-frame shimmer out, but
#: passes what faces do (the motion measure itself low-passes at 6 Hz).
EXPRESSION_CUTOFF_HZ = 6.0


def at_pose(raw: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """``raw`` landmarks moved by the similarity that puts their rigid points on ``pose``'s.

    The result has the head pose of ``pose`` (a smoothed estimate) and the expression of
    ``raw`` (the measurement of this frame).
    """
    if len(raw) < 468:
        return pose.copy()
    return transform_points(similarity_transform(raw[RIGID_POINTS], pose[RIGID_POINTS]), raw)


def keep_fast_motion(raw: np.ndarray, smoothed: np.ndarray) -> np.ndarray:
    """Smoothed landmarks with the eyelids and inner lips moving as in ``raw``.

    Each group's moving points are placed at their raw offset from the group's anchors (eye
    or mouth corners), and the anchors are where smoothing put them: the face keeps its
    steady position and the blinks and mouth openings keep their speed and depth.
    """
    out = smoothed.copy()
    if len(raw) < 468:
        return out
    for anchors, moving in FAST_GROUPS:
        shift = smoothed[anchors].mean(axis=0) - raw[anchors].mean(axis=0)
        out[moving] = raw[moving] + shift
    return out


@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    score: float
    last_seen: int
    hits: int = 1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    smoother: OneEuroFilter = field(default_factory=OneEuroFilter)  # the head's pose
    expression: OneEuroFilter = field(
        default_factory=lambda: OneEuroFilter(min_cutoff=EXPRESSION_CUTOFF_HZ)
    )


#: A track not seen for up to this many frames is bridged (obscured where it was heading).
MAX_GAP = 8


class FaceTracker:
    """Assigns stable track ids to mesh faces and safety-net detections, frame by frame."""

    def __init__(self, max_gap: int = MAX_GAP, iou_match: float = 0.2, smooth: bool = True) -> None:
        self.max_gap = max_gap
        self.iou_match = iou_match
        self.smooth = smooth
        self.reset()

    def reset(self) -> None:
        """Forget every track (call at a scene cut)."""
        self._tracks: list[_Track] = []
        self._next_id = 0

    def _match(self, boxes: np.ndarray, tracks: list[_Track]) -> dict[int, int]:
        """Greedy IoU matching: detection index -> track index."""
        if len(boxes) == 0 or not tracks:
            return {}
        scores = iou(boxes, np.stack([t.box for t in tracks]))
        pairs: dict[int, int] = {}
        used: set[int] = set()
        for flat in np.argsort(-scores, axis=None):
            i, j = np.unravel_index(flat, scores.shape)
            if scores[i, j] < self.iou_match:
                break
            if i in pairs or j in used:
                continue
            pairs[int(i)] = int(j)
            used.add(int(j))
        return pairs

    def _new_track(self, box: np.ndarray, score: float, frame_index: int) -> _Track:
        track = _Track(self._next_id, box.copy(), score, frame_index)
        self._next_id += 1
        self._tracks.append(track)
        return track

    def update(
        self,
        frame_index: int,
        time_s: float,
        meshes: list[np.ndarray],
        det_boxes: np.ndarray,
        det_scores: np.ndarray,
    ) -> list[FaceTrackState]:
        """Every face that may be in this frame, each with its track id and source."""
        states: list[FaceTrackState] = []
        mesh_boxes = np.stack([landmarks_box(m) for m in meshes]) if meshes else np.zeros((0, 4))
        seen: set[int] = set()
        matches = self._match(mesh_boxes, self._tracks)
        for i, lm in enumerate(meshes):
            box = mesh_boxes[i]
            if i in matches:
                track = self._tracks[matches[i]]
                track.velocity = 0.5 * track.velocity + 0.5 * (box - track.box)
                track.box, track.last_seen, track.score = box.copy(), frame_index, 1.0
                track.hits += 1
            else:
                track = self._new_track(box, 1.0, frame_index)
            seen.add(track.track_id)
            if self.smooth:
                scale = float(box[2] - box[0])
                pose = track.smoother(lm, time_s, scale)
                posed = at_pose(lm, pose)
                lm = keep_fast_motion(posed, pose + track.expression(posed - pose, time_s, scale))
                box = landmarks_box(lm)
            states.append(FaceTrackState(track.track_id, box, 1.0, lm, "mesh"))
        # Safety-net detections that no mesh face covers: a face the mesh missed.
        for box, score in zip(det_boxes, det_scores):
            if len(mesh_boxes) and coverage(box[None], mesh_boxes).max() > 0.3:
                continue
            open_tracks = [t for t in self._tracks if t.track_id not in seen]
            m = self._match(box[None], open_tracks)
            if m:
                track = open_tracks[m[0]]
                track.box, track.last_seen, track.score = box.copy(), frame_index, float(score)
            else:
                track = self._new_track(box, float(score), frame_index)
            seen.add(track.track_id)
            states.append(FaceTrackState(track.track_id, box, float(score), None, "detector"))
        # Tracks not seen this frame: bridged over the gap, or dropped once it is too long.
        alive = []
        for track in self._tracks:
            gap = frame_index - track.last_seen
            if track.track_id in seen:
                alive.append(track)
            elif gap <= self.max_gap:
                track.box = track.box + track.velocity
                track.velocity *= 0.8
                states.append(FaceTrackState(track.track_id, track.box, 0.0, None, "bridged"))
                alive.append(track)
        self._tracks = alive
        return states
