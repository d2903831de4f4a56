"""Check a finished output for burned-in text that is still readable.

The redaction stage decides from the input; this check looks at the output itself. On sampled
frames it finds text in the input, finds text in the output, and reads every output line that
lies where the input had text. A line read with confidence is a finding: text the redaction
left readable. Lines that ``--text phi`` kept on purpose are counted apart. It uses the
redaction's own detector (and leaves out faces the same way), so it catches what the pipeline
got wrong in tracking, timing or drawing, not what the detector cannot see: that is what the
tests check with an independent reader (tesseract).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medswap import video
from medswap.text.models import TextDetector, TextRecogniser
from medswap.text.stage import outside_faces
from medswap.text.track import iou
from medswap.types import FrameOutcome

#: A reading counts as readable text with at least this many letters or digits ...
MIN_CHARACTERS = 2
#: ... read with at least this mean confidence.
MIN_CONFIDENCE = 0.6


@dataclass
class TextFinding:
    """Readable text in one output frame where the input had text (never the text itself)."""

    frame_index: int
    box: list[float]
    confidence: float

    def to_json(self) -> dict:
        return {
            "frame_index": self.frame_index,
            "box": [round(v, 1) for v in self.box],
            "confidence": round(self.confidence, 3),
        }


@dataclass
class TextAuditResult:
    """What the text check saw on the frames it sampled."""

    frames_checked: int
    frames_with_text: int  # text in the input
    findings: list[TextFinding] = field(default_factory=list)  # readable in the output
    kept_on_purpose: int = 0  # readable lines --text phi kept

    @property
    def passed(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        frames = len({f.frame_index for f in self.findings})
        head = (
            f"text: {self.frames_checked} frames checked, {self.frames_with_text} with text in "
            f"the input, "
        )
        tail = f"{frames} with text still readable" + (
            f" ({self.kept_on_purpose} lines kept by --text phi)" if self.kept_on_purpose else ""
        )
        return head + tail

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "frames_checked": self.frames_checked,
            "frames_with_text": self.frames_with_text,
            "frames_with_readable_text": len({f.frame_index for f in self.findings}),
            "kept_on_purpose": self.kept_on_purpose,
            "findings": [f.to_json() for f in self.findings],
        }


def _overlaps(box: np.ndarray, others: Sequence[np.ndarray]) -> bool:
    """``box`` shares area with any of ``others`` (half of its own area, or IoU 0.1)."""
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
    for o in others:
        iw = min(box[2], o[2]) - max(box[0], o[0])
        ih = min(box[3], o[3]) - max(box[1], o[1])
        if iw > 0 and ih > 0 and (iw * ih / area >= 0.5 or iou(box, o) >= 0.1):
            return True
    return False


def readable(reading) -> bool:
    """Whether a reading is text a person could read: enough characters, read with confidence."""
    chars = sum(c.isalnum() for c in reading.text)
    return chars >= MIN_CHARACTERS and reading.confidence >= MIN_CONFIDENCE


def audit_text(
    original: str | Path,
    output: str | Path,
    *,
    frames: Sequence[FrameOutcome] | None = None,
    stride: int = 15,
    offset: int = 0,
    max_frames: int | None = None,
    detector: TextDetector | None = None,
    recogniser: TextRecogniser | None = None,
) -> TextAuditResult:
    """Look for readable text in ``output`` where ``original`` has text.

    Frames ``offset``, ``offset + stride``, ... are checked. ``frames`` (the run's outcomes)
    tells which regions ``--text phi`` kept on purpose; their lines are counted, not flagged.
    """
    check = TextCheck(detector, recogniser)
    by_index = {f.frame_index: f for f in frames or ()}
    with (
        closing(video.read_frames(original, max_frames=max_frames)) as originals,
        closing(video.read_frames(output, max_frames=max_frames)) as outputs,
    ):
        for src, out in zip(originals, outputs):
            if is_checked(src.index, stride, offset):
                f = by_index.get(src.index)
                faces = [np.asarray(x.box) for x in f.faces] if f else []
                kept = [np.asarray(t.box) for t in f.text if t.status == "kept"] if f else []
                check.frame(src.index, src.image, out.image, faces, kept)
    return check.result


def is_checked(index: int, stride: int, offset: int) -> bool:
    """Whether frame ``index`` is one of those checked: ``offset``, ``offset + stride``, ..."""
    return index >= offset and (index - offset) % max(1, stride) == 0


class TextCheck:
    """The check of one pair of frames at a time, adding to :attr:`result`.

    :func:`audit_text` runs it over two files; ``deidentify`` runs it on the frames it
    encodes (:class:`TextCheckInStream`), so the check costs no second decode of either video.
    """

    def __init__(
        self, detector: TextDetector | None = None, recogniser: TextRecogniser | None = None
    ) -> None:
        self.detector = detector or TextDetector()
        self.recogniser = recogniser or TextRecogniser()
        self.result = TextAuditResult(0, 0)

    def frame(
        self,
        index: int,
        source: np.ndarray,
        output: np.ndarray,
        faces: Sequence[np.ndarray],
        kept: Sequence[np.ndarray],
    ) -> None:
        """Check one output frame against its source (``faces``: boxes of faces in it, whose
        detections are the face, not text; ``kept``: lines ``--text phi`` kept on purpose)."""
        result = self.result
        result.frames_checked += 1
        source_boxes = list(outside_faces(self.detector(source), faces).xyxy)
        if not source_boxes:
            return  # no text in the input here: nothing the output could leak
        result.frames_with_text += 1
        for box in outside_faces(self.detector(output), faces).xyxy:
            if not _overlaps(box, source_boxes):
                continue
            reading = self.recogniser(output, box)
            if not readable(reading):
                continue
            if _overlaps(box, kept):
                result.kept_on_purpose += 1
            else:
                result.findings.append(
                    TextFinding(index, [float(v) for v in box], reading.confidence)
                )


class TextCheckInStream:
    """:class:`TextCheck` on the frames ``offset``, ``offset + stride``, ... as they are
    encoded, on a thread of its own; two frames wait for it at most, so memory stays flat."""

    def __init__(
        self,
        stride: int,
        offset: int,
        detector: TextDetector | None = None,
        recogniser: TextRecogniser | None = None,
    ) -> None:
        self.stride, self.offset = max(1, stride), offset
        self.check = TextCheck(detector, recogniser)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medswap-text-check")
        self._jobs: deque[Future] = deque()

    def due(self, index: int) -> bool:
        return is_checked(index, self.stride, self.offset)

    def submit(
        self,
        index: int,
        source: np.ndarray,
        output: np.ndarray,
        faces: Sequence[np.ndarray],
        kept: Sequence[np.ndarray],
    ) -> None:
        """Check this frame (its ``output`` pixels must not change any more)."""
        self._jobs.append(self._pool.submit(self.check.frame, index, source, output, faces, kept))
        while len(self._jobs) > 2:
            self._jobs.popleft().result()

    def result(self) -> TextAuditResult:
        """The check of every frame submitted (waits for the last ones)."""
        while self._jobs:
            self._jobs.popleft().result()
        return self.check.result

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
