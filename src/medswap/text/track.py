"""Text regions followed over the frames the detector looked at (key frames).

Burned-in text mostly stays put (a camera's date stamp, a title card) while what it says may
change every second, and a detector can miss a line in one frame. So the tracker fails closed:
a region that stays put keeps the union of everything seen in it (a stamp whose digits change
width stays covered), a region the detector misses is kept where it was for ``max_miss`` more
key frames, and a region that moves is followed and covered along its path between key frames
(see :func:`regions_between`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from medswap.text.regions import TextBoxes, TextReason

#: Each detected box grows by this fraction of its height on every side before it is tracked.
MARGIN = 0.25
#: A region unseen for this many key frames in a row is dropped (until then: bridged).
MAX_MISS = 2
#: Overlap (IoU) with the previous box above which a region is taken as staying put.
STATIC_IOU = 0.5


def grow(box: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """``box`` widened by ``margin`` times its height on every side (at least 2 px)."""
    pad = max(2.0, margin * float(box[3] - box[1]))
    return np.asarray(box, dtype=np.float64) + np.array([-pad, -pad, pad, pad])


def span(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest box holding both ``a`` and ``b``."""
    return np.concatenate([np.minimum(a[:2], b[:2]), np.maximum(a[2:], b[2:])])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / area) if area > 0 else 0.0


def _same_line(track_box: np.ndarray, box: np.ndarray, frame_diag: float) -> float | None:
    """A matching cost for a track's last box and a new box, or None if they cannot match.

    Overlapping boxes match; so do boxes of similar size whose centres are closer than a
    third of the frame's diagonal (text moving across the frame between two key frames).
    """
    o = iou(track_box, box)
    if o > 0:
        return 1.0 - o
    size0, size1 = track_box[2:] - track_box[:2], box[2:] - box[:2]
    ratio = size1 / np.maximum(size0, 1e-6)
    if not ((ratio >= 0.6) & (ratio <= 1.0 / 0.6)).all():
        return None
    c0 = (track_box[:2] + track_box[2:]) / 2
    c1 = (box[:2] + box[2:]) / 2
    dist = float(np.linalg.norm(c1 - c0)) / max(frame_diag, 1.0)
    return 1.0 + dist if dist < 1 / 3 else None


@dataclass
class TextTrack:
    """One region of text followed across key frames."""

    track_id: int
    box: np.ndarray  # the box to cover at the last key frame (grown, unions for still text)
    misses: int = 0  # key frames in a row without a detection
    moved: bool = False  # it moved at its last key frame (covered along the path)
    #: ``--text phi``: the first PHI reason any reading of it gave (it sticks), or NO_PHI while
    #: every reading was clean; None when nothing was read (plain redaction).
    phi: TextReason | None = None

    @property
    def reason(self) -> TextReason:
        if self.misses:
            return TextReason.BRIDGED
        return TextReason.MOVING if self.moved else TextReason.DETECTED


class TextTracker:
    """Follows text regions from key frame to key frame; ``update`` once per key frame."""

    def __init__(self, frame_size: tuple[int, int], max_miss: int = MAX_MISS) -> None:
        self.width, self.height = frame_size
        self.max_miss = max_miss
        self.tracks: list[TextTrack] = []
        self._next_id = 0

    def reset(self) -> None:
        self.tracks, self._next_id = [], 0

    def update(self, boxes: TextBoxes, readings: list[TextReason] | None = None) -> list[TextTrack]:
        """Match this key frame's detections to the tracks; returns the tracks now alive.

        ``readings`` (``--text phi``) says per box what its text read as. Returned tracks are
        snapshots (copies): later updates do not change them.
        """
        grown = [self._clip(grow(b)) for b in boxes.xyxy]
        diag = float(np.hypot(self.width, self.height))
        pairs = sorted(
            (cost, ti, di)
            for ti, t in enumerate(self.tracks)
            for di, b in enumerate(grown)
            if (cost := _same_line(t.box, b, diag)) is not None
        )
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            t, b = self.tracks[ti], grown[di]
            t.moved = iou(t.box, b) < STATIC_IOU
            # Still text keeps everything it has covered; moving text is covered where it is.
            t.box = b if t.moved else span(t.box, b)
            t.misses = 0
            if readings is not None:
                t.phi = _sticky(t.phi, readings[di])
        for ti, t in enumerate(self.tracks):
            if ti not in used_t:
                t.misses += 1
                t.moved = False
        self.tracks = [t for t in self.tracks if t.misses <= self.max_miss]
        for di, b in enumerate(grown):
            if di not in used_d:
                phi = readings[di] if readings is not None else None
                self.tracks.append(TextTrack(self._next_id, b, phi=phi))
                self._next_id += 1
        return [replace(t, box=t.box.copy()) for t in self.tracks]

    def _clip(self, box: np.ndarray) -> np.ndarray:
        return np.clip(box, 0, [self.width, self.height, self.width, self.height])


def _sticky(old: TextReason | None, new: TextReason) -> TextReason:
    """A region once read as PHI (or unreadable) stays redacted, whatever it reads as later."""
    return new if old in (None, TextReason.NO_PHI) else old


def regions_between(
    before: list[TextTrack], after: list[TextTrack]
) -> list[tuple[TextTrack, np.ndarray]]:
    """What to cover in a frame between two key frames: every track alive at either.

    A track alive at both is covered by the box spanning both positions, so text that moved
    between the two key frames is covered wherever it went in a straight line. Each track is
    returned once, in its later state (which knows everything the earlier one did).
    """
    by_id = {t.track_id: t for t in before}
    out: list[tuple[TextTrack, np.ndarray]] = []
    for t in after:
        prev = by_id.pop(t.track_id, None)
        box = t.box
        if prev is not None:
            box = span(prev.box, box)
        out.append((t, box))
    out.extend((t, t.box) for t in by_id.values())
    return out
