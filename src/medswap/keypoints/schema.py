"""Keypoint layouts as data: names, skeleton edges, normalisers and evaluation groups.

Each layout says what its points are called, which pairs are drawn as a skeleton, and which
two points give the distance that errors are divided by (the normaliser), so that an error of
0.05 means the same thing on a 320 px webcam and a 4K camera:

- faces: inter-ocular distance, outer eye corners (dlib 36/45; mesh 33/263);
- body: shoulder width (MediaPipe pose 11/12);
- hands: palm size, wrist (0) to the middle finger's MCP joint (9).

"left" and "right" are the person's own sides (MediaPipe's convention on an un-mirrored video).
The body layout is also split into its facial points (MediaPipe pose 0-10: nose, eyes, ears,
mouth), which a face swap is expected to move a little, and the non-facial rest (shoulders
down), which it must not move at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BODY_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
BODY_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1),
    (0, 4),
    (1, 2),
    (2, 3),
    (3, 7),
    (4, 5),
    (5, 6),
    (6, 8),
    (9, 10),
    (11, 12),
    (11, 13),
    (11, 23),
    (12, 14),
    (12, 24),
    (13, 15),
    (14, 16),
    (15, 17),
    (15, 19),
    (15, 21),
    (16, 18),
    (16, 20),
    (16, 22),
    (17, 19),
    (18, 20),
    (23, 24),
    (23, 25),
    (24, 26),
    (25, 27),
    (26, 28),
    (27, 29),
    (27, 31),
    (28, 30),
    (28, 32),
    (29, 31),
    (30, 32),
)
#: MediaPipe pose points 0-10 lie on the face; a face swap may move them, nothing else may.
BODY_FACIAL: tuple[int, ...] = tuple(range(11))
BODY_NONFACIAL: tuple[int, ...] = tuple(range(11, 33))

_FINGERS = ("thumb", "index_finger", "middle_finger", "ring_finger", "pinky")
_THUMB = ("cmc", "mcp", "ip", "tip")
_FINGER = ("mcp", "pip", "dip", "tip")
HAND_NAMES: tuple[str, ...] = (
    "wrist",
    *(
        f"{finger}_{joint}"
        for finger in _FINGERS
        for joint in (_THUMB if finger == "thumb" else _FINGER)
    ),
)
HAND_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1),
    (0, 5),
    (0, 17),
    (1, 2),
    (2, 3),
    (3, 4),
    (5, 6),
    (5, 9),
    (6, 7),
    (7, 8),
    (9, 10),
    (9, 13),
    (10, 11),
    (11, 12),
    (13, 14),
    (13, 17),
    (14, 15),
    (15, 16),
    (17, 18),
    (18, 19),
    (19, 20),
)

# iBUG 300-W 68-point layout (dlib). "right" is the person's right: points 36-41 are the
# right eye, which appears on the left of an un-mirrored image.
_DLIB_PARTS = (
    ("jaw", 0, 17),
    ("right_brow", 17, 22),
    ("left_brow", 22, 27),
    ("nose_bridge", 27, 31),
    ("nose_lower", 31, 36),
    ("right_eye", 36, 42),
    ("left_eye", 42, 48),
    ("mouth_outer", 48, 60),
    ("mouth_inner", 60, 68),
)
DLIB68_NAMES: tuple[str, ...] = tuple(
    f"{part}_{i - start}" for part, start, end in _DLIB_PARTS for i in range(start, end)
)
_DLIB_CLOSED = {"right_eye", "left_eye", "mouth_outer", "mouth_inner"}
DLIB68_EDGES: tuple[tuple[int, int], ...] = tuple(
    edge
    for part, start, end in _DLIB_PARTS
    for edge in [(i, i + 1) for i in range(start, end - 1)]
    + ([(end - 1, start)] if part in _DLIB_CLOSED else [])
)

MESH_NAMES: tuple[str, ...] = tuple(f"mesh_{i:03d}" for i in range(478))
#: Refined mesh: 468-472 are the person's right iris (centre first), 473-477 the left.
MESH_RIGHT_IRIS = 468
MESH_LEFT_IRIS = 473


@dataclass(frozen=True)
class Layout:
    """One keypoint layout: what its points are and how errors on it are normalised."""

    name: str
    names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    normaliser: tuple[int, int]
    normaliser_name: str

    def __len__(self) -> int:
        return len(self.names)


LAYOUTS: dict[str, Layout] = {
    "body": Layout("body", BODY_NAMES, BODY_EDGES, (11, 12), "shoulder width"),
    "left_hand": Layout("left_hand", HAND_NAMES, HAND_EDGES, (0, 9), "palm size"),
    "right_hand": Layout("right_hand", HAND_NAMES, HAND_EDGES, (0, 9), "palm size"),
    # The mesh is drawn as its points; MediaPipe's contour edges are fetched lazily by
    # mesh_edges() so this module stays importable without loading MediaPipe.
    "face_mesh": Layout("face_mesh", MESH_NAMES, (), (33, 263), "inter-ocular distance"),
    "face_dlib68": Layout(
        "face_dlib68", DLIB68_NAMES, DLIB68_EDGES, (36, 45), "inter-ocular distance"
    ),
}


@dataclass(frozen=True)
class EvalGroup:
    """A set of points evaluated together: a layout, or a subset of one (the body split)."""

    name: str
    layout: str
    indices: tuple[int, ...] | None = None  # None: every point of the layout

    def select(self, arr: np.ndarray) -> np.ndarray:
        """The group's points from an (N, K, C) array of its layout."""
        return arr if self.indices is None else arr[:, list(self.indices)]


#: The rows of the invariance table, in order. Group names use "-" as the paper does.
EVAL_GROUPS: tuple[EvalGroup, ...] = (
    EvalGroup("face-dlib68", "face_dlib68"),
    EvalGroup("face-mesh", "face_mesh"),
    EvalGroup("body", "body"),
    EvalGroup("body-facial", "body", BODY_FACIAL),
    EvalGroup("body-nonfacial", "body", BODY_NONFACIAL),
    EvalGroup("left-hand", "left_hand"),
    EvalGroup("right-hand", "right_hand"),
)


def mesh_edges() -> tuple[tuple[int, int], ...]:
    """MediaPipe's face-mesh contour edges (eyes, brows, lips, oval), for drawing only."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_CONTOURS

    return tuple(sorted(FACEMESH_CONTOURS))


def edges(layout: str) -> tuple[tuple[int, int], ...]:
    """The skeleton edges of a layout (the mesh's contours are loaded on demand)."""
    return mesh_edges() if layout == "face_mesh" else LAYOUTS[layout].edges
