"""PP-OCRv4 text detector and recogniser, run with onnxruntime from hash-pinned files.

The detector (DBNet) gives a per-pixel text probability; boxes are the connected areas above a
threshold, widened the way DBNet was trained to expect ("unclip"), because the model marks a
shrunk core of each text line. The recogniser (SVTR, CTC) reads one cropped line; its
character dictionary is stored in the model file's own metadata, so the two cannot disagree.
OpenCV's DNN module runs the detector (to within 3e-5 of onnxruntime) but fails on a reshape in
the recogniser, so both run on onnxruntime, each on one thread: medswap's other models already
keep the cores busy. Wrappers load lazily and take upright RGB ``uint8`` images.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from medswap.models import model_path, onnx_session
from medswap.text.regions import TextBoxes, TextReading

#: The detector's input: the frame scaled so its long side is this many pixels (a multiple of 32).
DETECT_SIDE = 640
#: DBNet's published post-processing settings (PaddleOCR's defaults for PP-OCRv4).
PIXEL_THRESHOLD = 0.3
BOX_THRESHOLD = 0.5
UNCLIP_RATIO = 1.6
#: Only boxes at least this many times as wide as tall are lines of text. PP-OCRv4 was trained
#: for Chinese too, and takes a face, a patterned tie or a hand for a column of characters.
MIN_ASPECT = 1.0
#: The recogniser's input height, and the widest crop it is given (longer lines are squeezed).
REC_HEIGHT = 48
REC_MAX_WIDTH = 1280


def _normalise(bgr: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) to the models' float input (1, 3, H, W) in -1..1 (PaddleOCR's BGR order)."""
    x = bgr.astype(np.float32) * (2.0 / 255.0) - 1.0
    return x.transpose(2, 0, 1)[None]


def detector_input_size(width: int, height: int, side: int = DETECT_SIDE) -> tuple[int, int]:
    """(w, h) the detector sees: long side ``side``, both multiples of 32 (DBNet's stride)."""
    scale = side / max(width, height)
    return (
        max(32, int(round(width * scale / 32)) * 32),
        max(32, int(round(height * scale / 32)) * 32),
    )


def boxes_from_probability(
    prob: np.ndarray,
    scale_xy: tuple[float, float],
    image_size: tuple[int, int],
    pixel_threshold: float = PIXEL_THRESHOLD,
    box_threshold: float = BOX_THRESHOLD,
    min_aspect: float = MIN_ASPECT,
) -> TextBoxes:
    """DBNet post-processing: probability map (h, w) to upright boxes in image pixels.

    Each connected area above ``pixel_threshold`` whose mean probability reaches
    ``box_threshold`` becomes its bounding rectangle, grown by DBNet's unclip distance
    (area * ratio / perimeter) on every side, then scaled by ``scale_xy`` to the image and
    clipped to ``image_size`` (w, h). Boxes narrower than ``min_aspect`` times their height
    are dropped: burned-in text runs across the frame.
    """
    mask = (prob > pixel_threshold).astype(np.uint8)
    mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    boxes, scores = [], []
    for i in range(1, n):
        x, y, w, h, _ = stats[i]
        if min(w, h) < 3:
            continue
        score = float(prob[y : y + h, x : x + w][labels[y : y + h, x : x + w] == i].mean())
        if score < box_threshold:
            continue
        d = w * h * UNCLIP_RATIO / (2.0 * (w + h))
        sx, sy = scale_xy
        if (w + 2 * d) * sx < min_aspect * (h + 2 * d) * sy:
            continue
        boxes.append([(x - d) * sx, (y - d) * sy, (x + w + d) * sx, (y + h + d) * sy])
        scores.append(score)
    if not boxes:
        return TextBoxes.empty()
    xyxy = np.asarray(boxes)
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, image_size[0])
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, image_size[1])
    return TextBoxes(xyxy, np.asarray(scores))


class TextDetector:
    """Finds lines of text in an image (any script the detector was trained on)."""

    def __init__(self, side: int = DETECT_SIDE) -> None:
        self.side = side
        self._session = None
        self._lock = threading.Lock()

    def probability(self, image: np.ndarray) -> np.ndarray:
        """The text probability map at the detector's input size (h, w), values 0..1."""
        if self._session is None:
            self._session = onnx_session(model_path("ppocr_det"))
        h, w = image.shape[:2]
        size = detector_input_size(w, h, self.side)
        small = cv2.resize(image[..., ::-1], size, interpolation=cv2.INTER_AREA)
        with self._lock:  # one session, possibly shared by the stage and the audit
            out = self._session.run(None, {"x": _normalise(small)})[0]
        return out[0, 0]

    def __call__(self, image: np.ndarray) -> TextBoxes:
        h, w = image.shape[:2]
        prob = self.probability(image)
        scale = (w / prob.shape[1], h / prob.shape[0])
        return boxes_from_probability(prob, scale, (w, h))


class TextRecogniser:
    """Reads one line of text from a box of an image."""

    def __init__(self) -> None:
        self._session = None
        self._chars: list[str] = []
        self._lock = threading.Lock()

    def _load(self) -> None:
        if self._session is None:
            session = onnx_session(model_path("ppocr_rec"))
            meta = session.get_modelmeta().custom_metadata_map
            # CTC class 0 is the blank; the dictionary follows; the last class is a space.
            self._chars = ["", *meta["character"].splitlines(), " "]
            self._session = session

    def __call__(self, image: np.ndarray, box: np.ndarray) -> TextReading:
        """The text in ``box`` (x0, y0, x1, y1) and the mean confidence of its characters."""
        self._load()
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        crop = image[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)]
        if crop.shape[0] < 2 or crop.shape[1] < 2:
            return TextReading("", 0.0)
        width = int(np.ceil(REC_HEIGHT * crop.shape[1] / crop.shape[0]))
        width = min(REC_MAX_WIDTH, max(REC_HEIGHT // 4, width))
        line = cv2.resize(crop[..., ::-1], (width, REC_HEIGHT), interpolation=cv2.INTER_AREA)
        with self._lock:
            probs = self._session.run(None, {"x": _normalise(line)})[0][0]
        return ctc_decode(probs, self._chars)


def ctc_decode(probs: np.ndarray, chars: list[str]) -> TextReading:
    """Greedy CTC: the best class per step, repeats merged, blanks dropped."""
    best = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    keep = (best != 0) & np.concatenate([[True], best[1:] != best[:-1]])
    if not keep.any():
        return TextReading("", 0.0)
    text = "".join(chars[i] for i in best[keep])
    return TextReading(text.strip(), float(conf[keep].mean()))
