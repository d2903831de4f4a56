"""Training material for the learned engine: aligned face crops, masks, loss weights.

Every crop is cut with the same similarity alignment the mesh engine uses to pose-normalise a
face (least squares on the stable mesh points ``RIGID_POINTS``: eye corners, nose bridge and tip,
forehead, cheek edges) onto a canonical template, so patient and donor crops line up feature
by feature and the shared encoder sees one kind of input. The template is stored in the model
file, so a model is applied with the alignment it was trained with.

Augmentation: a small random similarity (rotation, scale, shift) and colour jitter. No
horizontal flips: a flipped face is a different face for this task. Parkinson's hypomimia,
facial palsy and hemifacial spasm are asymmetric, and the asymmetry (one mouth corner lagging,
one eye blinking harder) is what the clinician rates; flipped training pairs would teach the
decoders to render the patient's left-side motion on the right side as well as on the left,
which blurs exactly the signal that must survive. Flips would also swap the left/right eye
and mouth-corner weights that the loss relies on.

This module needs numpy, OpenCV and MediaPipe only (no torch), so data can be inspected and
tested without the optional extra.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from medswap import video
from medswap.faces.mesh import (
    FACE_OVAL,
    LEFT_EYE,
    OUTER_LIPS,  # the mouth region that gets extra weight in the loss
    RIGHT_EYE,
    RIGID_POINTS,
    FaceMesher,
)
from medswap.geometry import similarity_transform, transform_points
from medswap.swap.blend import polygon_mask

log = logging.getLogger(__name__)

SIZES = (64, 96, 128)
#: Eyebrows (lower edge points), to include brow motion in the eye regions.
RIGHT_BROW = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46]
LEFT_BROW = [300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
#: Loss weight of the eye and mouth regions relative to the rest of the face.
FEATURE_WEIGHT = 3.0
#: Outside the face outline the decoders still see a little signal, so edges do not drift.
OUTSIDE_WEIGHT = 0.05
#: Image extensions accepted as donor images.
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def canonical_template(reference: np.ndarray) -> np.ndarray:
    """Unit-square positions (478, 2) of a reference mesh: the face outline fills 80% of it.

    Only its ``RIGID_POINTS`` rows drive the alignment; the rest places the masks of a face that is
    not in the crop yet (none is needed at run time). The reference is the built-in average
    donor (a face of no real person) at training time, and the stored copy afterwards.
    """
    pts = reference[:, :2].astype(np.float64)
    oval = pts[FACE_OVAL]
    lo, hi = oval.min(0), oval.max(0)
    scale = 0.80 / float(max(hi - lo))
    centre = (lo + hi) / 2
    return (pts - centre) * scale + 0.5


def alignment(landmarks: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """The (2, 3) similarity from frame pixels into a ``size`` crop (mesh engine's rigid fit)."""
    return similarity_transform(landmarks[RIGID_POINTS, :2], template[RIGID_POINTS, :2] * size)


def crop(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The aligned ``size`` x ``size`` crop of an RGB frame (edges reflected, never black).

    A large face shrinks to a small crop: it is warped at up to 4x the crop size first and
    then area-averaged, so the crop is not aliased (a bilinear warp alone skips pixels).
    """
    f = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    k = int(min(4, max(1, np.floor(1.0 / max(f, 1e-6)))))
    mk = m * k
    big = cv2.warpAffine(
        image, mk, (size * k, size * k), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return big if k == 1 else cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def masks(crop_landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Face-outline mask (uint8 0/255) and loss weights (float32) in crop space.

    Weights: 1 on the face, ``FEATURE_WEIGHT`` on the eyes with their brows and on the mouth
    (slightly dilated, so eyelids and lips are inside), ``OUTSIDE_WEIGHT`` elsewhere. Blinks
    and speech are small regions; without the extra weight a small model spends its capacity
    on cheeks and forehead and renders eyes that never close.
    """
    shape = (size, size)
    face = polygon_mask(shape, crop_landmarks[FACE_OVAL])
    features = np.zeros(shape, np.uint8)
    for idx in (RIGHT_EYE + RIGHT_BROW, LEFT_EYE + LEFT_BROW, OUTER_LIPS):
        hull = cv2.convexHull(np.round(crop_landmarks[idx, :2] * 4).astype(np.int32))
        cv2.fillConvexPoly(features, hull, 255, lineType=cv2.LINE_AA, shift=2)
    k = max(3, int(2 * round(size / 40) + 1))
    features = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    w = np.full(shape, OUTSIDE_WEIGHT, np.float32)
    w[face > 127] = 1.0
    w = np.maximum(w, (features.astype(np.float32) / 255.0) * FEATURE_WEIGHT)
    return face, w


@dataclass
class FaceSet:
    """Aligned crops of one identity, with their masks and loss weights."""

    name: str
    crops: np.ndarray  # (N, S, S, 3) uint8 RGB
    masks: np.ndarray  # (N, S, S) uint8 face outline
    weights: np.ndarray  # (N, S, S) float32
    landmarks: np.ndarray  # (N, 478, 2) in crop pixels

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def size(self) -> int:
        return int(self.crops.shape[1])

    @classmethod
    def build(
        cls, name: str, items: Iterable[tuple[np.ndarray, np.ndarray]], template, size: int
    ) -> FaceSet:
        """From (RGB image, 478-point mesh in that image) pairs."""
        crops, ms, ws, lms = [], [], [], []
        for image, lm in items:
            m = alignment(lm, template, size)
            c_lm = transform_points(m, lm)[:, :2]
            face, w = masks(c_lm, size)
            crops.append(crop(image, m, size))
            ms.append(face)
            ws.append(w)
            lms.append(c_lm)
        if not crops:
            return cls(
                name,
                np.zeros((0, size, size, 3), np.uint8),
                np.zeros((0, size, size), np.uint8),
                np.zeros((0, size, size), np.float32),
                np.zeros((0, 478, 2)),
            )
        return cls(name, np.stack(crops), np.stack(ms), np.stack(ws), np.stack(lms))

    @staticmethod
    def concat(name: str, sets: list[FaceSet]) -> FaceSet:
        sets = [s for s in sets if len(s)]
        return FaceSet(
            name,
            np.concatenate([s.crops for s in sets]),
            np.concatenate([s.masks for s in sets]),
            np.concatenate([s.weights for s in sets]),
            np.concatenate([s.landmarks for s in sets]),
        )


def video_meshes(
    path: str | Path, max_frames: int | None = None, stride: int = 1
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(frame, largest face mesh) for every ``stride``-th frame of a video that shows a face."""
    mesher = FaceMesher(max_faces=1, video=True)
    try:
        for frame in video.read_frames(path, max_frames=max_frames):
            faces = mesher(frame.image)  # every frame, so MediaPipe's tracking stays warm
            if faces and frame.index % stride == 0:
                yield frame.image, faces[0]
    finally:
        mesher.close()


def is_image(path: str | Path) -> bool:
    return Path(str(path)).suffix.lower() in IMAGE_EXTS


def augment(
    batch: np.ndarray, weights: np.ndarray, masks_: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Small random similarity and colour jitter, the same warp for image, weights and mask.

    Rotation within 4 degrees, scale within 4%, shift within 3% of the crop: what the mesh
    alignment itself wobbles by from frame to frame, so the decoders learn to tolerate it.
    Brightness, contrast and saturation within 10%: lighting changes within a clip. No flips
    (see the module docstring).
    """
    n, s = batch.shape[:2]
    out_b, out_w, out_m = np.empty_like(batch), np.empty_like(weights), np.empty_like(masks_)
    for i in range(n):
        ang = rng.uniform(-4, 4)
        sc = rng.uniform(0.96, 1.04)
        tx, ty = rng.uniform(-0.03, 0.03, 2) * s
        m = cv2.getRotationMatrix2D((s / 2, s / 2), ang, sc)
        m[:, 2] += (tx, ty)
        out_b[i] = cv2.warpAffine(batch[i], m, (s, s), borderMode=cv2.BORDER_REFLECT)
        out_w[i] = cv2.warpAffine(weights[i], m, (s, s), borderValue=OUTSIDE_WEIGHT)
        out_m[i] = cv2.warpAffine(masks_[i], m, (s, s), borderValue=0)
        img = out_b[i].astype(np.float32)
        grey = img.mean(axis=2, keepdims=True)
        img = grey + (img - grey) * rng.uniform(0.9, 1.1)  # saturation
        img = (img - img.mean()) * rng.uniform(0.9, 1.1) + img.mean()  # contrast
        img = img * rng.uniform(0.9, 1.1)  # brightness
        out_b[i] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return out_b, out_w, out_m
