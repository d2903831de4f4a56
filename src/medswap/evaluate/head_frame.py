"""One face in its own head frame: the head's pose taken out, and the face's neutral shape.

Steps 1 and 2 of :mod:`medswap.evaluate.motion`: each frame's landmarks are mapped by a
similarity fit on points that move with the skull (eye corners and nose) onto the face's own
reference, eye line level and inter-ocular distance 1, so what remains is expression; the
neutral shape is the per-point median of those aligned frames over the clip. Which points
carry the pose and which carry expression is said per layout (dlib 68, the face mesh).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from medswap.geometry import similarity_transform, transform_points
from medswap.keypoints.schema import DLIB68_NAMES, LAYOUTS, MESH_NAMES

#: A face seen in fewer frames has no neutral shape worth the name, nor a trajectory.
MIN_FRAMES = 10
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
