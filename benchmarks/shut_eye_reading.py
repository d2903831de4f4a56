"""How shut the face mesh reads the swapped face's eyes, and why it cannot read them shut enough.

    PYTHONPATH=src .venv/bin/python benchmarks/shut_eye_reading.py [--media DIR]

1. Calibration on the built-in portraits (no shared media needed): grace_hopper swapped onto
   the astronaut portrait whose lids are moved to an openness ``o`` (1 open .. 0 shut), with
   the shut-eye texture faded in at a fixed weight ``w``; the table is the mean eye aspect
   ratio (EAR) the face mesh (still-image mode) reads on the result. Read it for the floor:
   the lowest EAR any (o, w) gives, against the open reading.
2. The patient's own eyes in the swapped face (needs ../shared): on expression_a, frames where
   she blinks or squints, the original's eye regions are pasted into the swapped frame. If the
   mesh then reads them as shut as on the original, the shut-eye texture is what falls short;
   if it reads them about as open as the swap's, the face around the eyes sets the reading.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import medswap.swap.engine as engine  # noqa: E402
from medswap import video  # noqa: E402
from medswap.faces.mesh import LEFT_EYE, RIGHT_EYE, FaceMesher  # noqa: E402
from medswap.measures.face import MESH_LEFT_EYE, MESH_RIGHT_EYE, eye_aspect_ratio  # noqa: E402
from medswap.pipeline import deidentify  # noqa: E402
from medswap.swap.donors import builtin_donor  # noqa: E402
from medswap.swap.engine import MeshSwapper, SwapSettings  # noqa: E402
from medswap.swap.eyes import EYES  # noqa: E402

OPENNESS = (1.0, 0.6, 0.4, 0.2, 0.0)
WEIGHTS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)


def ears(mesher: FaceMesher, image: np.ndarray) -> np.ndarray:
    """Right and left EAR of the one face in ``image`` (NaN if none)."""
    faces = mesher(image)
    if not faces:
        return np.full(2, np.nan)
    lm = faces[0][None]
    return np.array([eye_aspect_ratio(lm, eye)[0] for eye in (MESH_RIGHT_EYE, MESH_LEFT_EYE)])


def with_lids_at(landmarks: np.ndarray, o: float) -> np.ndarray:
    """Both eyes' lids moved toward their midline, to ``o`` of their opening."""
    out = landmarks.copy()
    for _, _, up, lo in EYES:
        mid = 0.5 * (out[up] + out[lo])
        out[up], out[lo] = mid + o * (out[up] - mid), mid + o * (out[lo] - mid)
    return out


def calibration(mesher: FaceMesher) -> None:
    patient, donor = builtin_donor("astronaut"), builtin_donor("grace_hopper")
    real = engine.shut_weight
    print("EAR read on grace_hopper swapped onto astronaut (rows: lid openness o, columns: w)")
    print("   o \\ w " + " ".join(f"{w:6.1f}" for w in WEIGHTS))
    try:
        for o in OPENNESS:
            row = []
            for w in WEIGHTS:
                engine.shut_weight = lambda _o, w=w: np.full(2, w)
                swapper = MeshSwapper(SwapSettings())
                for _ in range(3):  # the track's neutral face: eyes open
                    swapper.swap(patient.image.copy(), 0, patient.landmarks, donor)
                frame = patient.image.copy()
                swapper.swap(frame, 0, with_lids_at(patient.landmarks, o), donor)
                row.append(float(np.mean(ears(mesher, frame))))
            print(f"   {o:5.1f} " + " ".join(f"{v:6.3f}" for v in row))
    finally:
        engine.shut_weight = real


def eye_regions(landmarks: np.ndarray, shape: tuple[int, ...], margin: float) -> np.ndarray:
    """Soft mask of both eyes and ``margin`` eye widths around them."""
    mask = np.zeros(shape[:2], np.uint8)
    for eye in (RIGHT_EYE, LEFT_EYE):
        pts = landmarks[eye, :2]
        one = np.zeros_like(mask)
        cv2.fillPoly(one, [pts.astype(np.int32)], 255)
        k = int(2 * margin * np.linalg.norm(pts[0] - pts[8])) | 1
        mask |= cv2.dilate(one, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 3.0)[..., None]


def own_eyes(mesher: FaceMesher, media: Path, frames=(50, 120, 150)) -> None:
    clip = media / "expression_a.mp4"
    if not clip.is_file():
        print(f"\n{clip}: absent, part 2 skipped")
        return
    print("\nexpression_a, EAR right/left (still-image mode): original | swap | swap with the")
    print("original's eyes pasted in (0.25 and 0.5 eye widths around them)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "swap.mp4"
        deidentify(clip, out, max_frames=max(frames) + 1)
        swap = {f.index: f.image for f in video.read_frames(out) if f.index in frames}
    orig = {f.index: f.image for f in video.read_frames(clip) if f.index in frames}
    for i in frames:
        o, s = orig[i], swap[i]
        lm = mesher(o)[0]
        pasted = [
            ears(mesher, (o * m + s * (1 - m)).astype(np.uint8))
            for m in (eye_regions(lm, o.shape, 0.25), eye_regions(lm, o.shape, 0.5))
        ]
        fmt = lambda e: f"{e[0]:.3f}/{e[1]:.3f}"  # noqa: E731
        print(
            f"  frame {i:3d}: {fmt(ears(mesher, o))} | {fmt(ears(mesher, s))} | "
            + " ".join(fmt(e) for e in pasted)
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=str(ROOT.parent / "shared" / "media" / "video"))
    args = ap.parse_args()
    mesher = FaceMesher(max_faces=1, video=False)
    try:
        calibration(mesher)
        own_eyes(mesher, Path(args.media))
    finally:
        mesher.close()


if __name__ == "__main__":
    main()
