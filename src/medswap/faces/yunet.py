"""YuNet, OpenCV-zoo's face detector, run on onnxruntime with OpenCV's pre- and post-processing.

The audit runs YuNet on every output frame, so its cost is paid per frame. OpenCV's
``FaceDetectorYN`` and this class run the same hash-pinned file; onnxruntime runs it faster
(README, Models) once the file's block-quantised weights are turned into floats at load
(:func:`medswap.faces.onnx_graph.with_weights_dequantized`: OpenCV computes the same floats) and
its declared 640x640 input is freed (OpenCV feeds any size padded to a multiple of 32).

What OpenCV does around the network (``modules/objdetect/src/face_detect.cpp``), and this class
does the same way, so the two give the same faces: the image in BGR order, 0..255, padded with
black at the bottom and right to a multiple of 32. For each stride (8, 16, 32) and each cell
(row, col) of that grid, score = sqrt(clip(cls) * clip(obj)); a cell at or above the score
threshold is a face whose centre is (col + dx, row + dy) * stride, whose size is
(exp(dw), exp(dh)) * stride and whose five points are (col + kx, row + ky) * stride. Overlaps are
removed by OpenCV's ``NMSBoxes`` on the boxes cut to whole pixels.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from medswap.models import model_path, onnx_session

STRIDES = (8, 16, 32)
#: YuNet's grid: the padded input is a multiple of the coarsest stride.
DIVISOR = 32
_INPUT = "input"


def _session():
    from medswap.faces.onnx_graph import with_free_image_size, with_weights_dequantized

    model = with_free_image_size(with_weights_dequantized(model_path("yunet").read_bytes()), _INPUT)
    return onnx_session(model)


def padded_size(width: int, height: int) -> tuple[int, int]:
    """(w, h) of the network's input: each side rounded up to a multiple of :data:`DIVISOR`."""
    return (
        ((width - 1) // DIVISOR + 1) * DIVISOR,
        ((height - 1) // DIVISOR + 1) * DIVISOR,
    )


def decode(
    outputs: dict[str, np.ndarray], padded: tuple[int, int], score_threshold: float
) -> np.ndarray:
    """Candidate faces from the network's outputs: rows (x, y, w, h, 5 points x/y, score)."""
    rows = []
    for stride in STRIDES:
        cols = padded[0] // stride
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
        score = np.sqrt(cls * obj)
        keep = np.flatnonzero(score >= score_threshold)
        if not keep.size:
            continue
        col = (keep % cols).astype(np.float32)[:, None]
        row = (keep // cols).astype(np.float32)[:, None]
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep]
        kps = outputs[f"kps_{stride}"].reshape(-1, 10)[keep]
        cx = (col[:, 0] + bbox[:, 0]) * stride
        cy = (row[:, 0] + bbox[:, 1]) * stride
        w = np.exp(bbox[:, 2]) * stride
        h = np.exp(bbox[:, 3]) * stride
        points = np.empty_like(kps)
        points[:, 0::2] = (kps[:, 0::2] + col) * stride
        points[:, 1::2] = (kps[:, 1::2] + row) * stride
        rows.append(
            np.column_stack([cx - w / 2, cy - h / 2, w, h, points, score[keep]]).astype(np.float32)
        )
    return np.concatenate(rows) if rows else np.zeros((0, 15), np.float32)


def suppress(
    faces: np.ndarray, score_threshold: float, nms_threshold: float, top_k: int
) -> np.ndarray:
    """OpenCV's overlap removal: ``NMSBoxes`` on the boxes truncated to whole pixels."""
    if len(faces) <= 1:
        return faces
    boxes = [[int(x), int(y), int(w), int(h)] for x, y, w, h in faces[:, :4]]
    scores = faces[:, 14].tolist()
    keep = cv2.dnn.NMSBoxes(boxes, scores, score_threshold, nms_threshold, 1.0, top_k)
    return faces[np.asarray(keep, dtype=int).reshape(-1)]


class YuNet:
    """Faces in a BGR image, as rows like ``cv2.FaceDetectorYN.detect`` gives them.

    Each row: box (x, y, w, h), five points (right eye, left eye, nose tip, right and left mouth
    corner; x, y each), score. One session serves every thread.
    """

    def __init__(
        self, score_threshold: float = 0.6, nms_threshold: float = 0.3, top_k: int = 5000
    ) -> None:
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self._net = None
        self._outputs: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        if self._net is None:
            with self._lock:
                if self._net is None:
                    net = _session()
                    self._outputs = [o.name for o in net.get_outputs()]
                    self._net = net
        h, w = bgr.shape[:2]
        padded = padded_size(w, h)
        blob = np.zeros((1, 3, padded[1], padded[0]), np.float32)
        blob[0, :, :h, :w] = bgr.transpose(2, 0, 1)
        names = self._outputs
        outputs = dict(zip(names, self._net.run(names, {_INPUT: blob})))
        faces = decode(outputs, padded, self.score_threshold)
        return suppress(faces, self.score_threshold, self.nms_threshold, self.top_k)
