"""Faces and their descriptors: the audit's two detectors and two recognisers.

Both recognisers are independent of the swap (:mod:`medswap.faces.independent`) and both are
read as a *distance*, lower meaning more alike, so one rule serves every other part of the
audit: "same person" when the distance is below the recogniser's published threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from medswap.faces.independent import (
    DLIB_SAME_PERSON_DISTANCE,
    SFACE_SAME_PERSON_COSINE,
    DlibFaces,
    IndependentFace,
    SFaceRecogniser,
    five_points_from_68,
)
from medswap.faces.independent import (
    overlap_of_smaller as overlap,
)

#: The recognisers, and the distance below which each judges two faces the same person.
RECOGNISERS = ("dlib", "sface")


THRESHOLDS: dict[str, float] = {
    "dlib": DLIB_SAME_PERSON_DISTANCE,
    "sface": 1.0 - SFACE_SAME_PERSON_COSINE,
}


METRICS = {"dlib": "euclidean distance", "sface": "cosine distance (1 - cosine)"}


@dataclass
class FaceRecord:
    """One face found by the independent detectors, with both recognisers' descriptors."""

    box: np.ndarray  # (4,) x0, y0, x1, y1 in pixels of the upright frame
    detectors: tuple[str, ...]  # which detectors found it: "yunet", "hog"
    dlib: np.ndarray | None = None  # (128,) or None when not computed
    sface: np.ndarray | None = None  # (128,) L2-normalised


def merge_detections(
    yunet: list[IndependentFace], hog: list[IndependentFace], min_overlap: float = 0.5
) -> list[tuple[IndependentFace | None, IndependentFace | None]]:
    """Pair the faces two detectors found; a face found by one only is kept on its own."""
    pairs: list[tuple[IndependentFace | None, IndependentFace | None]] = []
    used: set[int] = set()
    for y in yunet:
        best, best_j = min_overlap, None
        for j, h in enumerate(hog):
            if j not in used and (o := overlap(y.box, h.box)) >= best:
                best, best_j = o, j
        if best_j is not None:
            used.add(best_j)
        pairs.append((y, None if best_j is None else hog[best_j]))
    pairs.extend((None, h) for j, h in enumerate(hog) if j not in used)
    return pairs


def _hog_like_box(face: IndependentFace) -> np.ndarray:
    """A dlib-style square box (brows to chin, centred on the nose) from a YuNet face.

    dlib's shape predictor was trained on HOG boxes; YuNet's taller box shifts its landmarks.
    """
    pts = face.landmarks
    cx, cy = pts[:, 0].mean(), pts[:, 1].mean()
    side = 0.95 * (face.box[2] - face.box[0])
    return np.array([cx - side / 2, cy - side / 2.2, cx + side / 2, cy + side / 1.8])


class FaceAnalyser:
    """Both independent detectors and both recognisers, loaded lazily, over RGB images."""

    def __init__(self, hog_upsample: int = 0) -> None:
        self.hog_upsample = hog_upsample
        self.dlib = DlibFaces(upsample=hog_upsample)
        self.sface = SFaceRecogniser()

    def detect(
        self, image: np.ndarray, hog: bool = True, upsample: int | None = None
    ) -> list[tuple[IndependentFace | None, IndependentFace | None]]:
        """YuNet and (optionally) HOG faces, paired, largest first."""
        yunet = self.sface.detect(image)
        found = self.dlib.detect(image, upsample) if hog else []
        pairs = merge_detections(yunet, found)
        pairs.sort(key=lambda p: -_area(_box_of(p)))
        return pairs

    def describe(
        self,
        image: np.ndarray,
        pair: tuple[IndependentFace | None, IndependentFace | None],
        want_dlib: bool = True,
    ) -> FaceRecord:
        """Descriptors of one detected face; each recogniser uses whichever detector found it."""
        y, h = pair
        detectors = tuple(n for n, f in (("yunet", y), ("hog", h)) if f is not None)
        if y is not None:
            sface = self.sface.descriptor(image, y)
        else:
            five = IndependentFace(h.box, h.score, five_points_from_68(h.landmarks))
            sface = self.sface.descriptor(image, five)
        dlib_desc = self.dlib.descriptor(image, _dlib_face(pair)) if want_dlib else None
        return FaceRecord(_box_of(pair), detectors, dlib_desc, sface)

    def add_dlib(self, image: np.ndarray, record: FaceRecord, pair) -> None:
        """Compute the dlib descriptor of a face described earlier without it."""
        record.dlib = self.dlib.descriptor(image, _dlib_face(pair))


def _dlib_face(pair) -> IndependentFace:
    """The box dlib's descriptor aligns from: YuNet's (made dlib-like) when YuNet found the face.

    The original's faces come from YuNet alone (HOG there would only add cost), so taking the
    output's box the same way means an unchanged face gets exactly the same descriptor.
    """
    y, h = pair
    return IndependentFace(_hog_like_box(y), y.score) if y is not None else h


def _box_of(pair) -> np.ndarray:
    y, h = pair
    return np.asarray((y if y is not None else h).box, dtype=np.float64)


def _area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def distance(recogniser: str, a: np.ndarray, b: np.ndarray) -> float:
    """The recogniser's distance between two descriptors (lower = more alike)."""
    if recogniser == "dlib":
        return float(np.linalg.norm(a - b))
    return float(1.0 - np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def distances(recogniser: str, a: np.ndarray, many: np.ndarray) -> np.ndarray:
    """:func:`distance` from ``a`` to each row of ``many``, in one pass (a frame's lineup)."""
    if recogniser == "dlib":
        return np.linalg.norm(many - a, axis=1)
    return 1.0 - (many @ a) / (np.linalg.norm(many, axis=1) * np.linalg.norm(a) + 1e-12)


def same_person(recogniser: str, dist: float) -> bool:
    """The recogniser's published decision rule."""
    return dist < THRESHOLDS[recogniser]


def mean_descriptor(recogniser: str, descs: Sequence[np.ndarray]) -> np.ndarray:
    """Enrolment template: the mean descriptor (re-normalised for SFace's cosine)."""
    m = np.mean(np.stack(descs), axis=0)
    return m / (np.linalg.norm(m) + 1e-12) if recogniser == "sface" else m


def prepare_still(image: np.ndarray, min_side: int = 300) -> np.ndarray:
    """Enlarge a small still (gallery crop, donor thumbnail) so both detectors find its face.

    HOG needs faces of about 80 px and YuNet loses faces that fill a small image edge to edge,
    so small images are scaled up and padded with their own border.
    """
    if image.ndim == 2:
        image = np.dstack([image] * 3)
    h, w = image.shape[:2]
    if max(h, w) >= min_side:
        return np.ascontiguousarray(image[..., :3])
    scale = min_side / max(h, w)
    big = cv2.resize(
        image[..., :3], (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC
    )
    pad = min_side // 4
    return cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)


def describe_still(analyser: FaceAnalyser, image: np.ndarray) -> FaceRecord | None:
    """The largest face of a still image with both descriptors, or None when none is found."""
    image = prepare_still(image)
    pairs = analyser.detect(image, upsample=1)
    return analyser.describe(image, pairs[0]) if pairs else None


def read_image(path: Path) -> np.ndarray | None:
    """An image file as RGB uint8, or None when it is not a readable image."""
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else np.zeros(0, np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
