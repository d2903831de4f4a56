"""The text stage of ``deidentify``: detect at key frames, track, and redact every frame.

Detection costs several times a frame's whole swap, so it runs on key frames only: every
``stride``-th frame, every scene cut, and the last frame, on a worker thread of its own. Frames
wait in a short queue until the key frame *after* them has been analysed; a frame between two
key frames is then covered by every region alive at either (see
:func:`medswap.text.track.regions_between`). So text that stays on screen for ``stride`` frames
or more is covered from its first frame to its last, although the detector saw only some of
them, and a region the detector misses at one key frame is still covered (bridged).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from medswap.text.models import TextDetector, TextRecogniser
from medswap.text.phi import classify
from medswap.text.redact import redact
from medswap.text.regions import TextBoxes, TextReason, TextRegion
from medswap.text.track import TextTrack, TextTracker, regions_between

if TYPE_CHECKING:
    from medswap.text.audit import TextCheckInStream

#: ``--text`` values: redact all text (default), keep it, or redact only what reads as PHI.
TEXT_MODES: tuple[str, ...] = ("redact", "keep", "phi")
#: A detection with at least this share of its area inside a face's box (grown by
#: ``FACE_GROWTH`` of its size on every side) belongs to the face, which is swapped or obscured
#: anyway: PP-OCRv4 takes a face for a column of (Chinese) text.
FACE_SHARE = 0.5
FACE_GROWTH = 0.1
#: A box narrower than this (width / height) holds three characters or fewer: it is redacted
#: only if the recogniser reads two letters or digits in it. Ties, necks and leaves come out
#: this shape; a date, a time, a name or a 4-digit number is wider and never needs reading.
SHORT_ASPECT = 1.6
SHORT_MIN_CHARS = 2
SHORT_MIN_CONFIDENCE = 0.5
#: A frame this different from the one before (mean absolute difference of small grey
#: thumbnails, 0..255) is a scene cut, and a key frame.
CUT_DIFFERENCE = 20.0
_THUMB = (32, 18)


@dataclass
class TextFrame:
    """A frame leaving the stage: its redacted image, the caller's payload, the regions."""

    image: np.ndarray
    payload: object
    regions: list[TextRegion]


@dataclass
class _Waiting:
    index: int
    image: np.ndarray
    payload: object
    # Kept for frames the in-stream text check looks at: the input pixels and face boxes.
    source: np.ndarray | None = None
    faces: list[np.ndarray] | None = None


def outside_faces(boxes: TextBoxes, faces: Sequence[np.ndarray]) -> TextBoxes:
    """The detections that are not mostly inside one of the ``faces`` boxes."""
    if not faces or not len(boxes):
        return boxes
    keep = np.ones(len(boxes), dtype=bool)
    for face in faces:
        pad = FACE_GROWTH * np.array([-1, -1, 1, 1]) * np.tile(face[2:] - face[:2], 2)
        f = face + pad
        iw = (np.minimum(boxes.xyxy[:, 2], f[2]) - np.maximum(boxes.xyxy[:, 0], f[0])).clip(0)
        ih = (np.minimum(boxes.xyxy[:, 3], f[3]) - np.maximum(boxes.xyxy[:, 1], f[1])).clip(0)
        area = np.prod(boxes.xyxy[:, 2:] - boxes.xyxy[:, :2], axis=1).clip(1e-6)
        keep &= iw * ih / area < FACE_SHARE
    return TextBoxes(boxes.xyxy[keep], boxes.score[keep])


def confirm_short(boxes: TextBoxes, image: np.ndarray, recogniser) -> TextBoxes:
    """The boxes, less the short ones (``SHORT_ASPECT``) in which nothing reads as text."""
    keep = np.ones(len(boxes), dtype=bool)
    for i, (x0, y0, x1, y1) in enumerate(boxes.xyxy):
        if x1 - x0 >= SHORT_ASPECT * (y1 - y0):
            continue
        reading = recogniser(image, boxes.xyxy[i])
        chars = sum(c.isascii() and c.isalnum() for c in reading.text)
        keep[i] = chars >= SHORT_MIN_CHARS and reading.confidence >= SHORT_MIN_CONFIDENCE
    return TextBoxes(boxes.xyxy[keep], boxes.score[keep])


def key_frame_stride(fps: float, seconds: float = 0.5) -> int:
    """Frames between scheduled key frames: about ``seconds`` of video, at least 1."""
    return max(1, int(round(float(fps or 25) * seconds)))


class TextStage:
    """Delays frames until their text regions are known, then redacts them in place.

    ``push`` takes each frame in order (the input pixels to look at, the output pixels to
    redact, and anything the caller wants back) and returns the frames that are ready, in
    order; ``flush`` returns the rest at the end. With ``mode="keep"`` frames pass straight
    through.
    """

    def __init__(
        self,
        mode: str,
        method: str,
        frame_size: tuple[int, int],
        stride: int,
        detector: TextDetector | None = None,
        recogniser: TextRecogniser | None = None,
        check: TextCheckInStream | None = None,
    ) -> None:
        if mode not in TEXT_MODES:
            raise ValueError(f"unknown text mode '{mode}'; choose one of {TEXT_MODES}")
        self.mode, self.method, self.stride = mode, method, max(1, stride)
        self.detector = detector or TextDetector()
        self.recogniser = recogniser or TextRecogniser()
        self.tracker = TextTracker(frame_size)
        self.check = check if mode != "keep" else None  # each frame it is due for, on release
        self._worker = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="medswap-text")
            if mode != "keep"
            else None
        )
        self._waiting: deque[_Waiting] = deque()
        self._keys: deque[tuple[int, Future]] = deque()  # key frames not yet behind us
        self._last_key: tuple[int, list[TextTrack]] | None = None
        self._last_thumb: np.ndarray | None = None
        self._last_source: tuple[int, np.ndarray, list[np.ndarray]] | None = None
        self._last_submitted: int | None = None

    # -- the caller's side -----------------------------------------------------------------
    def push(
        self,
        index: int,
        source: np.ndarray,
        image: np.ndarray,
        payload: object,
        faces: Sequence[np.ndarray] = (),
    ) -> list[TextFrame]:
        """Add frame ``index``; returns the frames now ready (possibly none).

        ``faces`` are the boxes of the faces hidden in this frame: text detected inside one is
        the face itself (see ``FACE_SHARE``), not text to redact.
        """
        if self._worker is None:
            return [TextFrame(image, payload, [])]
        thumb = cv2.cvtColor(
            cv2.resize(source, _THUMB, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY
        ).astype(np.float32)
        cut = (
            self._last_thumb is not None
            and float(np.abs(thumb - self._last_thumb).mean()) > CUT_DIFFERENCE
        )
        self._last_thumb = thumb
        faces = [np.asarray(f, dtype=np.float64) for f in faces]
        if self._last_submitted is None or index - self._last_submitted >= self.stride or cut:
            self._submit(index, source, faces)
            self._last_source = None
        else:
            self._last_source = (index, source, faces)
        due = self.check is not None and self.check.due(index)
        self._waiting.append(
            _Waiting(index, image, payload, source if due else None, faces if due else None)
        )
        # Let the detector run behind the caller, but never hold more than ~1.5 strides.
        block = len(self._waiting) > self.stride + self.stride // 2 + 1
        return list(self._release(block=block))

    def flush(self) -> list[TextFrame]:
        """Every frame still waiting, redacted; the last frame is analysed as a key frame."""
        if self._worker is None:
            return []
        if self._last_source is not None:
            self._submit(*self._last_source)
            self._last_source = None
        return list(self._release(block=True, everything=True))

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
        if self.check is not None:
            self.check.close()

    # -- inside ----------------------------------------------------------------------------
    def _submit(self, index: int, source: np.ndarray, faces: list[np.ndarray]) -> None:
        self._keys.append((index, self._worker.submit(self._analyse, source, faces)))
        self._last_submitted = index

    def _analyse(self, source: np.ndarray, faces: list[np.ndarray]) -> list[TextTrack]:
        """Detect (and in phi mode read) the text of one key frame; runs on the worker."""
        boxes = outside_faces(self.detector(source), faces)
        boxes = confirm_short(boxes, source, self.recogniser)
        readings = None
        if self.mode == "phi":
            readings = [classify(self.recogniser(source, b)) for b in boxes.xyxy]
        return self.tracker.update(boxes, readings)

    def _release(self, block: bool, everything: bool = False) -> Iterator[TextFrame]:
        while self._waiting:
            w = self._waiting[0]
            # Move past key frames at or before this frame: they become "the last key".
            while self._keys and self._keys[0][0] <= w.index:
                k, fut = self._keys[0]
                if not fut.done() and not (block or everything):
                    return
                self._last_key = (k, fut.result())
                self._keys.popleft()
            if self._last_key is not None and self._last_key[0] == w.index:
                pairs = [(t, t.box) for t in self._last_key[1]]
            else:
                if not self._keys:
                    return  # the next key frame is not scheduled yet
                fut = self._keys[0][1]
                if not fut.done() and not (block or everything):
                    return
                after = fut.result()
                before = self._last_key[1] if self._last_key is not None else []
                pairs = regions_between(before, after)
            self._waiting.popleft()
            block = everything  # one forced step per push keeps the queue bounded
            regions = self._decide(w.image, pairs)
            if w.source is not None:
                kept = [r.box for r in regions if not r.redact]
                self.check.submit(w.index, w.source, w.image, w.faces, kept)
            yield TextFrame(w.image, w.payload, regions)

    def _decide(self, image: np.ndarray, pairs) -> list[TextRegion]:
        regions = []
        for track, box in pairs:
            if track.phi is TextReason.NO_PHI and self.mode == "phi":
                regions.append(TextRegion(track.track_id, box, False, TextReason.NO_PHI))
                continue
            reason = track.phi if track.phi is not None else track.reason
            redact(image, box, self.method)
            regions.append(TextRegion(track.track_id, box, True, reason))
        return regions
