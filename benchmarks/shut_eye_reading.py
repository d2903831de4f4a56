"""How shut the face mesh reads the swapped face's eyes, and why it cannot read them shut enough.

    PYTHONPATH=src .venv/bin/python benchmarks/shut_eye_reading.py [--media DIR]

1. The fade's calibration on each built-in donor (no shared media needed): the donor warped
   onto its own mesh with the lids moved to an openness ``o`` (1 open .. 0 shut), the shut-eye
   texture faded in at a weight ``w``; the table is how open the face mesh (still-image mode)
   reads the result, relative to the open donor, and the fade the swap takes from it. Read
   the floor: the most shut that donor's eye reads at all.
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

from medswap import video  # noqa: E402
from medswap.faces.mesh import LEFT_EYE, RIGHT_EYE, FaceMesher  # noqa: E402
from medswap.measures.face import MESH_LEFT_EYE, MESH_RIGHT_EYE, eye_aspect_ratio  # noqa: E402
from medswap.pipeline import deidentify  # noqa: E402
from medswap.swap.donors import BUILTIN_DONORS, builtin_donor, donor_fade  # noqa: E402
from medswap.swap.eyes import FADE_WEIGHTS  # noqa: E402


def ears(mesher: FaceMesher, image: np.ndarray) -> np.ndarray:
    """Right and left EAR of the one face in ``image`` (NaN if none)."""
    faces = mesher(image)
    if not faces:
        return np.full(2, np.nan)
    lm = faces[0][None]
    return np.array([eye_aspect_ratio(lm, eye)[0] for eye in (MESH_RIGHT_EYE, MESH_LEFT_EYE)])


def calibration() -> None:
    """Each built-in donor's readings (how open the mesh reads its eye, relative to open) and
    the fade the swap takes from them (medswap.swap.eyes.ShutFade)."""
    print("Relative eye opening read on each donor, lids at openness o (rows), shut texture")
    print("faded in at w (columns); then the fade used at each o, and the donor's floor")
    for name in BUILTIN_DONORS:
        fade = donor_fade(builtin_donor(name), full=True)
        used = "measured fade" if fade.measured else "floor too high: the fixed curve is used"
        print(f"\n{name}: floor {fade.floor:.2f} ({used})")
        print("   o \\ w " + " ".join(f"{w:6.2f}" for w in FADE_WEIGHTS) + "   fade")
        for o, row, k in zip(fade.openness, fade.readings, fade.weight, strict=True):
            print(f"   {o:5.1f} " + " ".join(f"{v:6.2f}" for v in row) + f"   {k:5.2f}")


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
        calibration()
        own_eyes(mesher, Path(args.media))
    finally:
        mesher.close()


if __name__ == "__main__":
    main()
