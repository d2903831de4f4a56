"""The records of the text stage: boxes a detector found, and regions with a decision.

Boxes are ``x0, y0, x1, y1`` in pixels of the upright frame, as everywhere in medswap.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class TextReason(str, Enum):
    """Why a text region was redacted or kept; the report carries the value, never the text."""

    DETECTED = "text detected"
    BRIDGED = "text track bridged over a missed detection"
    MOVING = "text moving between detections (covered along its path)"
    DATE = "reads as a date"
    TIME = "reads as a time"
    NUMBER = "reads as a number of 4 or more digits"
    NAME = "reads as a capitalised name-like word"
    UNREADABLE = "too unsure a reading to rule out PHI"
    NO_PHI = "read, and nothing in it looks like PHI"


@dataclass
class TextBoxes:
    """Text lines found in one image: boxes (N, 4) and detector scores (N,)."""

    xyxy: np.ndarray
    score: np.ndarray

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float64).reshape(-1, 4)
        self.score = np.asarray(self.score, dtype=np.float64).reshape(-1)
        if len(self.score) != len(self.xyxy):
            raise ValueError(
                f"xyxy and score must have the same length, got {len(self.xyxy)} and "
                f"{len(self.score)}"
            )

    @classmethod
    def empty(cls) -> TextBoxes:
        return cls(np.zeros((0, 4)), np.zeros(0))

    def __len__(self) -> int:
        return len(self.xyxy)


@dataclass
class TextReading:
    """What the recogniser read in one box. Kept in memory only, never written out."""

    text: str
    confidence: float


@dataclass
class TextRegion:
    """One tracked text region in one frame, decided: redact it or keep it, and why."""

    track_id: int
    box: np.ndarray  # (4,) x0, y0, x1, y1, already grown by the tracker's margin
    redact: bool
    reason: TextReason

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float64).reshape(4)
