"""Independent measurements of a de-identified clip against its original (dlib, SFace)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medswap import video
from medswap.faces.independent import (
    DlibFaces,
    SFaceRecogniser,
    dlib_distance,
    inter_ocular,
    sface_cosine,
)
from medswap.faces.track import iou


@dataclass
class Quality:
    frames: int
    dlib_found_original: int
    dlib_found_output: int
    nme: np.ndarray  # per frame: mean point error / inter-ocular distance
    dlib_distance: np.ndarray  # per frame where both have a face
    sface_cosine: np.ndarray
    #: per frame, the original face's dlib distance to the donor portrait (when one is given):
    #: how far the patient is from the donor's own face, the most a swap to it could reach
    dlib_to_donor: np.ndarray | None = None
    #: (T, 68, 2) dlib points of the original and of the output, frames where both are found
    points_original: np.ndarray | None = None
    points_output: np.ndarray | None = None

    @property
    def detection_ratio(self) -> float:
        return self.dlib_found_output / max(self.dlib_found_original, 1)


_DLIB = DlibFaces(upsample=1)
_SFACE = SFaceRecogniser()


def _same_place(face, candidates):
    """The candidate face overlapping ``face`` most (IoU above 0.3), or None."""
    if not candidates:
        return None
    overlap = iou(face.box, np.array([f.box for f in candidates]))[0]
    return candidates[int(np.argmax(overlap))] if overlap.max() > 0.3 else None


def measure(
    original, output, stride: int = 3, identity: bool = True, donor_descriptor=None
) -> Quality:
    """dlib 68-point error and identity distances on every ``stride``-th frame.

    The patient is each detector's most confident face in the original, compared with the
    output face in the same place. Not the largest face: on hand_open_close.mp4 frame 25 HOG
    also finds a "face" larger than hers on her chest and raised hand (score 0.16 against
    1.15), which is the same unchanged pixels in both frames (dlib distance 0.08); and YuNet's
    largest face there can be the raised hand (score 0.60 against 0.93).
    """
    nme, dd, sc, to_donor, pa, pb = [], [], [], [], [], []
    n = found_o = found_b = 0
    for fa, fb in zip(video.read_frames(original), video.read_frames(output)):
        if fa.index % stride:
            continue
        n += 1
        a, b = _DLIB.detect(fa.image), _DLIB.detect(fb.image)
        found_o += bool(a)
        face = max(a, key=lambda f: f.score) if a else None
        same = _same_place(face, b) if face is not None else None
        if same is not None:
            found_b += 1
            la, lb = face.landmarks, same.landmarks
            pa.append(la[:, :2])
            pb.append(lb[:, :2])
            nme.append(np.mean(np.linalg.norm(la - lb, axis=1)) / inter_ocular(la))
            if identity:
                da = _DLIB.descriptor(fa.image, face)
                dd.append(dlib_distance(da, _DLIB.descriptor(fb.image, same)))
                if donor_descriptor is not None:
                    to_donor.append(dlib_distance(da, donor_descriptor))
        if identity:
            sa, sb = _SFACE.detect(fa.image), _SFACE.detect(fb.image)
            if sa:
                face = max(sa, key=lambda f: f.score)
                same = _same_place(face, sb)
                if same is not None:
                    sc.append(
                        sface_cosine(
                            _SFACE.descriptor(fa.image, face), _SFACE.descriptor(fb.image, same)
                        )
                    )
    donor = np.array(to_donor) if donor_descriptor is not None else None
    return Quality(
        n,
        found_o,
        found_b,
        np.array(nme),
        np.array(dd),
        np.array(sc),
        donor,
        np.array(pa, float),
        np.array(pb, float),
    )


#: dlib 68: outer eye corners (inter-ocular), and the points the pose alignment uses.
DLIB_EYE_OUTER = (36, 45)
DLIB_STABLE = [36, 39, 42, 45, 27, 28, 29, 30, 31, 35]


def _aligned(pts: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """Each frame similarity-aligned onto ``neutral`` by the stable points (pose removed)."""
    from medswap.geometry import similarity_transform, transform_points

    return np.stack(
        [
            transform_points(similarity_transform(p[DLIB_STABLE], neutral[DLIB_STABLE]), p)[:, :2]
            for p in pts
        ]
    )


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Median over points of the correlation of two (T, P, 2) displacement trajectories."""
    out = []
    for i in range(a.shape[1]):
        x, y = a[:, i].ravel(), b[:, i].ravel()
        if x.std() > 1e-9 and y.std() > 1e-9:
            out.append(float(np.corrcoef(x, y)[0, 1]))
    return float(np.median(out)) if out else float("nan")


def motion(a: np.ndarray, b: np.ndarray) -> dict:
    """How well two aligned (T, 68, 2) landmark series agree in motion, not in resting shape.

    Each point's displacement from the clip's own neutral (its per-point median position):
    ``disp_nme`` is the median over frames of the mean distance between the original's and
    the output's displacements over the original's inter-ocular distance, ``corr`` the median
    over points of the correlation of the two displacement trajectories (x and y together),
    ``corr_expr`` the same with the head's pose removed first (expression alone), ``abs_nme``
    the absolute landmark error, for reference.
    """
    if len(a) < 3:
        return {}
    na, nb = np.median(a, axis=0), np.median(b, axis=0)
    iod = float(np.linalg.norm(na[DLIB_EYE_OUTER[0]] - na[DLIB_EYE_OUTER[1]]))
    da, db = a - na, b - nb
    ea, eb = _aligned(a, na) - na, _aligned(b, nb) - nb
    return {
        "frames": len(a),
        "abs_nme": float(np.median(np.linalg.norm(a - b, axis=2).mean(axis=1)) / iod),
        "disp_nme": float(np.median(np.linalg.norm(da - db, axis=2).mean(axis=1)) / iod),
        "corr": _corr(da, db),
        "corr_expr": _corr(ea, eb),
    }


def portrait_descriptor(image):
    """dlib's descriptor of the most confident face in a donor portrait (RGB)."""
    faces = _DLIB.detect(image)
    return _DLIB.descriptor(image, max(faces, key=lambda f: f.score)) if faces else None
