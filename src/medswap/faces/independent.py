"""Face models the swap does not use, for measuring it honestly.

The swap warps onto MediaPipe's face mesh, so MediaPipe would agree with itself. Everything
that judges the output (landmark invariance, re-identification, the leak audit) uses these
instead: dlib's HOG detector, 68-point shape predictor and ResNet descriptor (the network's
forward pass on onnxruntime: :mod:`medswap.faces.dlib_resnet`), and OpenCV-zoo's YuNet detector and
SFace recogniser. Each wrapper loads its model lazily on first use, from the hash-pinned files
in :mod:`medswap.models`, and takes upright RGB ``uint8`` images.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from medswap.faces.dlib_resnet import CHIP_SIZE, DlibResNet
from medswap.faces.yunet import YuNet
from medswap.models import model_path, onnx_session

#: Published operating points: below (dlib) or above (SFace) these, "same person".
DLIB_SAME_PERSON_DISTANCE = 0.6
SFACE_SAME_PERSON_COSINE = 0.363


@dataclass(frozen=True)
class IndependentFace:
    """One face found by an independent detector, in pixel coordinates of the image given."""

    box: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    landmarks: np.ndarray | None = None  # (68, 2) for dlib, (5, 2) for YuNet


def inter_ocular(landmarks68: np.ndarray) -> float:
    """Distance between the outer eye corners (points 36 and 45), the usual NME normaliser."""
    return float(np.linalg.norm(landmarks68[36] - landmarks68[45]))


#: Frames larger than this (longest side, pixels) are also searched by YuNet shrunk to it.
YUNET_MAX_SIDE = 1280


def _scaled(face: IndependentFace, factor: float) -> IndependentFace:
    marks = None if face.landmarks is None else face.landmarks * factor
    return IndependentFace(face.box * factor, face.score, marks)


def overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area: 1 when one box lies inside the other.

    Detectors frame one face differently (YuNet includes the forehead, HOG does not; a
    part of a face sits inside the whole), so IoU of one face is low; this is not.
    """
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(iw * ih / smaller) if smaller > 0 else 0.0


class DlibFaces:
    """dlib HOG face detector, 68-point landmarks and the ResNet 128-D face descriptor."""

    def __init__(self, upsample: int = 1) -> None:
        self.upsample = upsample
        self._detector = None
        self._shape68 = None
        self._resnet = None

    def _load(self) -> None:
        if self._detector is None:
            import dlib

            self._detector = dlib.get_frontal_face_detector()
            self._shape68 = dlib.shape_predictor(str(model_path("dlib_shape_68")))
            self._resnet = DlibResNet(str(model_path("dlib_resnet")))

    def detect(self, image: np.ndarray, upsample: int | None = None) -> list[IndependentFace]:
        """Faces with their 68 landmarks, largest first."""

        self._load()
        image = np.ascontiguousarray(image)
        n_up = self.upsample if upsample is None else upsample
        rects, scores, _ = self._detector.run(image, n_up, 0.0)
        faces = []
        for rect, score in zip(rects, scores):
            shape = self._shape68(image, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            faces.append(
                IndependentFace(
                    box=np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], float),
                    score=float(score),
                    landmarks=pts,
                )
            )
        faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        return faces

    def landmarks_in_box(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """68 landmarks for a given face box (used where the detector itself is not judged)."""
        import dlib

        self._load()
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self._shape68(image, dlib.rectangle(x0, y0, x1, y1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def descriptor(self, image: np.ndarray, face: IndependentFace) -> np.ndarray:
        """The 128-D ResNet descriptor of a detected face (same person below 0.6)."""
        import dlib

        self._load()
        image = np.ascontiguousarray(image)
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        rect = dlib.rectangle(x0, y0, x1, y1)
        shape = self._shape68(image, rect)
        chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=0.25)
        return self._resnet.descriptor(chip)


class SFaceRecogniser:
    """OpenCV-zoo YuNet detector and SFace 128-D recogniser (same person above cosine 0.363)."""

    def __init__(self, score_threshold: float = 0.6) -> None:
        self.score_threshold = score_threshold
        self._det = None
        self._rec = None
        self._net = None
        self._net_feed: dict[str, np.ndarray] = {}

    def _load_detector(self) -> None:
        if self._det is None:
            # The same file and faces as cv2.FaceDetectorYN, on a faster runtime (README).
            self._det = YuNet(self.score_threshold, nms_threshold=0.3, top_k=5000)

    def _load(self) -> None:
        self._load_detector()
        if self._net is None:
            # OpenCV aligns the face (its own five-point similarity transform); the network
            # itself runs on onnxruntime, which takes the same file and gives the same feature.
            self._rec = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")
            self._net, self._net_feed = _sface_session()

    def detect(self, image: np.ndarray) -> list[IndependentFace]:
        """Faces with YuNet's 5 landmarks, largest first.

        YuNet's largest anchors suit faces of a few hundred pixels: a face that fills a 4K
        frame comes back as a box around part of it, and a recogniser then judges the wrong
        crop. So a frame larger than :data:`YUNET_MAX_SIDE` is also searched shrunk to that
        size; a full-resolution face that overlaps one found there is dropped, and faces too
        small to survive the shrinking are still found at full resolution.
        """
        self._load()
        h, w = image.shape[:2]
        scale = min(1.0, YUNET_MAX_SIDE / max(h, w))
        faces = []
        if scale < 1.0:
            small = cv2.resize(
                image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
            )
            faces = [_scaled(f, 1.0 / scale) for f in self._detect_at(small)]
        for face in self._detect_at(image):
            if not any(overlap_of_smaller(face.box, f.box) > 0.3 for f in faces):
                faces.append(face)
        faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        return faces

    def _detect_at(self, image: np.ndarray) -> list[IndependentFace]:
        self._load_detector()
        rows = self._det(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return [
            IndependentFace(
                box=np.array([x, y, x + bw, y + bh], float),
                score=float(row[14]),
                landmarks=row[4:14].reshape(5, 2).astype(float),
            )
            for row in rows
            for x, y, bw, bh in [row[:4]]
        ]

    def descriptor(self, image: np.ndarray, face: IndependentFace) -> np.ndarray:
        """The L2-normalised SFace feature of a YuNet face."""
        self._load()
        x0, y0, x1, y1 = face.box
        row = np.zeros((1, 15), np.float32)
        row[0, :4] = (x0, y0, x1 - x0, y1 - y0)
        row[0, 4:14] = face.landmarks.reshape(-1)
        row[0, 14] = face.score
        # Only the part of the image around the face is aligned. alignCrop is a warp of each
        # channel alike, so the RGB crop gives the RGB chip that FaceRecognizerSF.feature
        # makes from a BGR one (112x112, RGB order, 0..255), without converting either.
        crop, origin = _around(image, face.box)
        row[0, :2] -= origin
        row[0, 4:14] -= np.tile(origin, 5)
        aligned = self._rec.alignCrop(np.ascontiguousarray(crop), row)
        blob = cv2.dnn.blobFromImage(aligned, 1.0, (112, 112), (0, 0, 0), swapRB=False)
        feat = self._net.run(None, {"data": blob, **self._net_feed})[0]
        feat = feat.reshape(-1).astype(np.float64)
        return feat / (np.linalg.norm(feat) + 1e-12)


def _around(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image around ``box`` (the box once more on every side) and that part's origin.

    The aligned 112x112 chip spans about the face box; twice its size on each side leaves room
    for any tilt, so the chip is the same as from the whole image.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh = x1 - x0, y1 - y0
    cx0, cy0 = max(0, int(x0 - bw)), max(0, int(y0 - bh))
    cx1, cy1 = min(w, int(np.ceil(x1 + bw))), min(h, int(np.ceil(y1 + bh)))
    return image[cy0:cy1, cx0:cx1], np.array([cx0, cy0], np.float32)


def _sface_session():
    """SFace on onnxruntime, one thread, and the feed its file needs besides the image.

    onnxruntime runs this network in about half of OpenCV's time. Three quirks of the file:
    its block-quantised weights are folded to floats once at load (``disable_quant_qdq``; the
    quantised kernels re-expand them every call); it lists its stored batch-norm weights among
    its inputs too, which keeps onnxruntime from folding them into the convolutions, so that
    list is pruned in memory (:mod:`medswap.faces.onnx_graph`); and it lists float weights as
    inputs that no node reads, which onnxruntime still asks for: they are fed zeros.
    """
    from medswap.faces.onnx_graph import without_initializer_inputs

    model = without_initializer_inputs(model_path("sface").read_bytes())
    net = onnx_session(model, {"session.disable_quant_qdq": "1"})
    unused = {
        i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
        for i in net.get_inputs()
        if i.name != "data"
    }
    return net, unused


def dlib_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two dlib descriptors."""
    return float(np.linalg.norm(a - b))


def sface_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity between two normalised SFace features."""
    return float(np.dot(a, b))


def five_points_from_68(landmarks68: np.ndarray) -> np.ndarray:
    """YuNet's five points (eyes, nose tip, mouth corners; image-left first) from dlib's 68.

    Lets SFace judge a face that only dlib's HOG detector found, so that the two recognisers
    see the same faces whichever detector found them.
    """
    lm = np.asarray(landmarks68, dtype=np.float64)
    return np.stack([lm[36:42].mean(axis=0), lm[42:48].mean(axis=0), lm[30], lm[48], lm[54]])
