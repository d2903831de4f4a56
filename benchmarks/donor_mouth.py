"""Which part of a donor portrait costs the mouth openings on dlib 68: variant donors to run.

    PYTHONPATH=src .venv/bin/python benchmarks/donor_mouth.py --out DIR
    PYTHONPATH=src .venv/bin/python benchmarks/lineup.py --audited --measures --no-motion \\
        --id-frames 16 --clips speech_a.mp4,speech_b.mp4,expression_c.mp4 --donor DIR/NAME.png

Behind astronaut, dlib 68 (the face model the swap does not use) reads fewer of the patient's
mouth openings than behind grace_hopper, although the face mesh reads the drawn mouth as the
original's (README "Where dlib loses the opening"). The swap draws only the donor's lip ring:
inside the inner lips it keeps the patient's own pixels. So the question is whether the ring's
texture is the cause, or the rest of the donor's face. This script writes variant portraits,
each a change to one region of one built-in portrait, for ``lineup.py --donor`` to judge:

- ``astronaut_portrait``: the built-in astronaut as she is, saved as a file like the others;
- ``astronaut_teeth_closed``: her visible teeth (pixels inside her lips lighter and less red
  than the lips) closed by stretching the lips over them, with a darker seam where they meet;
- ``astronaut_grace_lips_M``: grace_hopper's lips (outer-lip hull and a margin of M
  inter-ocular distances: 0, 0.04 and 0.08), warped onto astronaut's mesh and matched in colour
  (Lab mean and spread) to what they replace (:func:`with_lips_of`);
- ``astronaut_grace_lower_face``: the same with a margin of 0.35 (lips, the folds beside them,
  the chin's top);
- ``grace_astronaut_lower_face``: the reverse, astronaut's lower face on grace_hopper.

The stills are for measurement, not for use: a closed mouth warped onto a parted one shows a
stretched seam between the lips, which the swap never draws (it lies inside the inner lips).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from medswap.faces.mesh import INNER_LIPS, OUTER_LIPS, inter_ocular_mesh  # noqa: E402
from medswap.swap.donors import N_TRI_POINTS, Donor, builtin_donor  # noqa: E402
from medswap.swap.geometry import apply_maps, triangulate, warp_maps  # noqa: E402

#: Margins around the outer lips, in inter-ocular distances, for the lips alone.
LIPS_MARGINS = (0.0, 0.04, 0.08)
#: The margin around the outer lips, in inter-ocular distances, for the lower face.
LOWER_FACE_MARGIN = 0.35


def _disc(diameter: float) -> np.ndarray:
    d = max(int(round(diameter)), 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def _polygon_mask(shape: tuple[int, ...], points: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(points[:, :2]).astype(np.int32)], 1)
    return mask


def teeth_closed(donor: Donor) -> np.ndarray:
    """The donor's image with the teeth between her lips covered by the lips themselves."""
    image, lm = donor.image, donor.landmarks
    unit = inter_ocular_mesh(lm) / 24.0
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    outer = _polygon_mask(image.shape, lm[OUTER_LIPS])
    inner = _polygon_mask(image.shape, lm[INNER_LIPS])
    lips = (outer > 0) & (cv2.dilate(inner, _disc(unit)) == 0)
    lip_l, lip_a = np.median(lab[..., 0][lips]), np.median(lab[..., 1][lips])
    near = cv2.dilate(inner, _disc(2.5 * unit)) & outer
    teeth = ((near > 0) & (lab[..., 0] > lip_l) & (lab[..., 1] - 128 < 0.5 * (lip_a - 128))).astype(
        np.uint8
    )
    teeth = cv2.morphologyEx(teeth, cv2.MORPH_CLOSE, _disc(unit))
    teeth = cv2.dilate(teeth, _disc(0.6 * unit)) & outer
    h, w = teeth.shape
    map_x, map_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    shade = np.ones((h, w), np.float32)
    reach = 2.0 * unit
    for x in np.unique(np.nonzero(teeth)[1]):
        rows = np.flatnonzero(teeth[:, x])
        top, bottom = float(rows.min()), float(rows.max() + 1)
        mid = 0.5 * (top + bottom)
        above, below = top - reach, bottom + reach
        for y in range(int(above), int(np.ceil(below))):
            yc = y + 0.5
            if yc < mid:  # the upper lip, stretched down to the middle
                src = above + (yc - above) * (top - above) / (mid - above)
            else:  # the lower lip, stretched up to it
                src = bottom + (yc - mid) * (below - bottom) / (below - mid)
            map_y[y, x] = src - 0.5
            shade[y, x] = 1 - 0.45 * np.exp(-(((yc - mid) / (0.45 * unit)) ** 2))
    out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = out.astype(np.float32) * shade[..., None]
    touched = cv2.dilate((shade < 0.999).astype(np.uint8), _disc(unit))[..., None] > 0
    out = np.where(touched, cv2.GaussianBlur(out, (0, 0), 0.35 * unit), out)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def with_lips_of(donor: Donor, other: Donor, margin: float) -> np.ndarray:
    """``donor``'s image with ``other``'s lips and ``margin`` around them warped in.

    ``other``'s face is warped onto ``donor``'s mesh triangle by triangle, its Lab mean and
    spread over the outer-lip hull and ``margin`` (inter-ocular distances) around it matched to
    ``donor``'s there, and blended in with a soft edge. Where ``donor``'s lips are parted and
    ``other``'s closed, the seam between ``other``'s lips is stretched over the gap: the swap
    never draws it (the inside of the lips is the patient's).
    """
    image, lm = donor.image, donor.landmarks
    h, w = image.shape[:2]
    tri = triangulate(lm[:N_TRI_POINTS])
    maps = warp_maps(lm[:N_TRI_POINTS], other.landmarks[:N_TRI_POINTS], tri, (0, 0, w, h))
    warped = apply_maps(other.image, maps)
    io = inter_ocular_mesh(lm)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(lm[OUTER_LIPS, :2]).astype(np.int32)), 1)
    mask = cv2.dilate(mask, _disc(2 * margin * io)) & maps.covered.astype(np.uint8)
    inside = mask > 0
    lab_donor = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab_other = cv2.cvtColor(warped, cv2.COLOR_RGB2LAB).astype(np.float32)
    for c in range(3):
        d, o = lab_donor[..., c][inside], lab_other[..., c][inside]
        lab_other[..., c] = (lab_other[..., c] - o.mean()) / (o.std() + 1e-6) * d.std() + d.mean()
    other_rgb = cv2.cvtColor(np.clip(lab_other, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.12 * io)[..., None]
    out = image.astype(np.float32) * (1 - soft) + other_rgb.astype(np.float32) * soft
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def variants() -> dict[str, np.ndarray]:
    """The variant portraits by name (RGB)."""
    astronaut, grace = builtin_donor("astronaut"), builtin_donor("grace_hopper")
    return {
        "astronaut_portrait": astronaut.image,
        "astronaut_teeth_closed": teeth_closed(astronaut),
        **{
            f"astronaut_grace_lips_{margin:.2f}": with_lips_of(astronaut, grace, margin)
            for margin in LIPS_MARGINS
        },
        "astronaut_grace_lower_face": with_lips_of(astronaut, grace, LOWER_FACE_MARGIN),
        "grace_astronaut_lower_face": with_lips_of(grace, astronaut, LOWER_FACE_MARGIN),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True, help="folder for the variant portraits")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, image in variants().items():
        path = args.out / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        print(path)


if __name__ == "__main__":
    main()
