"""The records that flow between medswap's stages.

One convention everywhere: images are upright RGB ``uint8`` arrays (H, W, 3); coordinates are
pixels in that image, x right and y down; a missing value is NaN, never zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum

import numpy as np

#: De-identification methods: the face swap, and the traditional baselines it is judged against.
METHODS: tuple[str, ...] = ("swap", "blur", "pixelate", "mask")


class FaceStatus(str, Enum):
    """What happened to one face region in one frame."""

    SWAPPED = "swapped"  # replaced by the donor face
    OBSCURED = "obscured"  # a face may be there but could not be swapped: hidden instead
    BASELINE = "baseline"  # blurred / pixelated / masked on purpose (--method)


#: Faces narrower than this many pixels are obscured: too few pixels for a faithful swap.
MIN_SWAP_WIDTH = 24


class Reason(StrEnum):
    """Why a face was obscured instead of swapped; the value is what the report says.

    A failed warp adds the error after the value: ``f"{Reason.SWAP_FAILED} (<error>)"``.
    """

    BRIDGED = "face lost for a few frames (track bridged)"
    DETECTOR_ONLY = "face seen by the safety-net detector only"
    TOO_SMALL = f"face narrower than {MIN_SWAP_WIDTH} px"
    TURNED_AWAY = "head turned too far for the swap"
    SWAP_FAILED = "swap failed"
    #: The release gate: the audit still re-identified the face after re-rendering.
    REIDENTIFIED = "re-identified by the audit; still after re-rendering: obscured"
    #: The release gate: a face the tracker missed, found and re-identified by the audit.
    UNTRACKED = "a face the tracker missed, re-identified by the audit: obscured"


#: Reasons that mean no face mesh was found: the face is only a possible one.
NOT_MESH_REASONS = (Reason.BRIDGED, Reason.DETECTOR_ONLY)


@dataclass
class FaceTrackState:
    """One face in one frame, as the tracker sees it.

    ``landmarks`` are the 478 face-mesh points (x, y in pixels; z in the same scale) when the
    mesh found this face in this frame; ``None`` when the track is only bridged over a gap or
    seen by the safety-net detector, which is why such a face can only be obscured.
    """

    track_id: int
    box: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    landmarks: np.ndarray | None = None  # (478, 3)
    source: str = "mesh"  # mesh | detector | bridged

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float64).reshape(4)
        if self.landmarks is not None:
            lm = np.asarray(self.landmarks, dtype=np.float64)
            if lm.ndim != 2 or lm.shape[1] not in (2, 3):
                raise ValueError(f"landmarks must be (K, 2|3), got {lm.shape}")
            self.landmarks = lm


@dataclass
class FaceOutcome:
    """What medswap did to one face in one frame, for the report and the audit."""

    track_id: int
    box: list[float]
    score: float
    status: FaceStatus
    reason: str = ""
    donor: str | None = None
    #: Hands over this face's box, kept in front of the swap: the reviewer looks at these frames.
    hands_in_front: int = 0

    def to_json(self) -> dict:
        return {
            "track_id": self.track_id,
            "box": [round(v, 1) for v in self.box],
            "score": round(self.score, 3),
            "status": self.status.value,
            "reason": self.reason,
            **({"donor": self.donor} if self.donor else {}),
            **({"hands_in_front": self.hands_in_front} if self.hands_in_front else {}),
        }


@dataclass
class TextOutcome:
    """What medswap did to one region of burned-in text in one frame (see medswap.text).

    ``status`` is ``redacted`` or ``kept`` (``--text phi``: nothing in it read as PHI);
    ``reason`` says why, as one of :class:`medswap.text.TextReason`'s values. The text itself is
    never recorded: the report must not carry what was redacted.
    """

    track_id: int
    box: list[float]
    status: str
    reason: str

    def to_json(self) -> dict:
        return {
            "track_id": self.track_id,
            "box": [round(v, 1) for v in self.box],
            "status": self.status,
            "reason": self.reason,
        }


@dataclass
class FrameOutcome:
    """Every face decision in one frame. An empty ``faces`` list means no face was seen.

    ``text`` holds the burned-in text regions of the frame (empty with ``--text keep``).
    """

    frame_index: int
    pts: int | None
    time_s: float
    faces: list[FaceOutcome] = field(default_factory=list)
    text: list[TextOutcome] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The frame's overall state: obscured beats swapped beats baseline beats no_face."""
        states = {f.status for f in self.faces}
        for s in (FaceStatus.OBSCURED, FaceStatus.SWAPPED, FaceStatus.BASELINE):
            if s in states:
                return s.value
        return "no_face"

    def to_json(self) -> dict:
        return {
            "frame_index": self.frame_index,
            "pts": self.pts,
            "time_s": round(self.time_s, 6),
            "status": self.status,
            "faces": [f.to_json() for f in self.faces],
            "text": [t.to_json() for t in self.text],
        }


#: Keypoint groups and their sizes. Layouts follow MediaPipe (body 33, hands 21, face mesh 478)
#: and dlib/iBUG 300-W (68). "left"/"right" are the person's own sides, as MediaPipe reports
#: them on an un-mirrored video.
KEYPOINT_GROUPS: dict[str, int] = {
    "body": 33,
    "left_hand": 21,
    "right_hand": 21,
    "face_mesh": 478,
    "face_dlib68": 68,
}

#: Per-frame scores that are not points, and how many each frame has: the Tasks face
#: landmarker's 52 blendshapes (0..1; see :mod:`medswap.keypoints.blendshapes`).
SCORE_SETS: dict[str, int] = {"face_blendshapes": 52}


@dataclass
class KeypointSeries:
    """Whole-body keypoints of one video, frame by frame.

    ``groups[name]`` is an array (N, K, 3) of x, y in pixels of the upright frame and a
    confidence in 0..1. A point that was not detected, or that the model only guessed (low
    visibility), is NaN in x and y; it is never zero.
    """

    frame_index: np.ndarray  # (N,) int
    time_s: np.ndarray  # (N,) float
    groups: dict[str, np.ndarray]
    width: int
    height: int
    fps: float
    meta: dict = field(default_factory=dict)  # video sha256, model versions, ...
    #: ``scores[name]`` is (N, K) float32 per :data:`SCORE_SETS`, NaN where no face was found.
    #: Optional: a series without them (an older keypoint file) is still a complete series.
    scores: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.frame_index)
        for name, arr in self.scores.items():
            k = SCORE_SETS.get(name)
            if k is None or arr.shape != (n, k):
                raise ValueError(f"scores '{name}' must be ({n}, {k or 'K'}), got {arr.shape}")
        for name, arr in self.groups.items():
            k = KEYPOINT_GROUPS.get(name)
            if (
                arr.ndim != 3
                or arr.shape[0] != n
                or arr.shape[2] != 3
                or (k is not None and arr.shape[1] != k)
            ):
                raise ValueError(f"group '{name}' must be ({n}, {k or 'K'}, 3), got {arr.shape}")

    def __len__(self) -> int:
        return len(self.frame_index)
