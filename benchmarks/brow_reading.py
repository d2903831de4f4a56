"""How much of a brow raise drawn on a donor portrait the landmark readers see (issue 23).

Run from the repository root:
    PYTHONPATH=src .venv/bin/python benchmarks/brow_reading.py [--donor NAME|PATH ...]

The swap carries a raised brow as geometry only: the donor's brows are warped up with the
patient's. Whether a reader then sees the raise depends on the donor's portrait (brows that are
there to be seen, skin above them to stretch). So each donor's portrait is warped, as the swap
would warp it, with its brows raised by 0.05, 0.10 and 0.15 inter-ocular distances (the mesh's
brow points moved up, the forehead above them following less the higher it is, the eyes and
everything below still), and the brow's height above the upper lids is read on the warped
portrait by the face mesh (points 63-105-66 and 296-334-293 against 159 and 386) and by dlib 68
(17-26 against 37-38 and 43-44). Printed per donor and raise: what each reader sees, as a
share of the raise drawn (1.0 = all of it). A few seconds per donor.
"""

from __future__ import annotations

import argparse

import numpy as np

from medswap.faces.independent import DlibFaces
from medswap.faces.mesh import FaceMesher, inter_ocular_mesh
from medswap.swap.donors import BROW_POINTS, BUILTIN_DONORS, load_donor
from medswap.swap.geometry import apply_maps, triangulate, warp_maps

RAISES = (0.05, 0.10, 0.15)
UPPER_LIDS = (159, 386)
#: The forehead's top row of the mesh (its highest point is 10): nothing above it moves.
FOREHEAD_TOP = 10


def raised(landmarks: np.ndarray, rise_px: float) -> np.ndarray:
    """The mesh with its brows ``rise_px`` higher; the forehead above follows less with height."""
    out = landmarks.copy()
    y = landmarks[:468, 1]
    brow_top = landmarks[BROW_POINTS, 1].min()
    top = landmarks[FOREHEAD_TOP, 1]
    follow = np.clip((y - top) / max(brow_top - top, 1e-6), 0.0, 1.0)
    follow[y >= brow_top] = 0.0
    follow[BROW_POINTS] = 1.0
    out[:468, 1] -= rise_px * follow
    return out


class Readers:
    """The face mesh (still images) and dlib 68: each reads the brows' height over the lids."""

    def __init__(self) -> None:
        self.mesher = FaceMesher(max_faces=1, video=False)
        self.dlib = DlibFaces()

    def brow_height(self, image: np.ndarray) -> tuple[float, float]:
        """(mesh, dlib) brow height above the upper lids, in inter-ocular distances."""
        m = self.mesher(image)[0][:, :2]
        iod = inter_ocular_mesh(m)
        brows = [m[[63, 105, 66], 1].mean(), m[[296, 334, 293], 1].mean()]
        mesh = float(np.mean([m[lid, 1] - b for lid, b in zip(UPPER_LIDS, brows)])) / iod
        face = max(self.dlib.detect(image), key=lambda f: f.box[2] - f.box[0])
        d = self.dlib.landmarks_in_box(image, face.box)
        lids = np.r_[d[37:39], d[43:45]][:, 1].mean()
        dlib = float(lids - d[17:27, 1].mean()) / float(np.linalg.norm(d[36] - d[45]))
        return mesh, dlib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--donor", nargs="+", default=list(BUILTIN_DONORS))
    args = ap.parse_args()
    readers = Readers()
    print("donor | raise (iod) | mesh sees | dlib sees")
    for spec in args.donor:
        donor = load_donor(spec)  # a built-in name or an image file
        image, lm = donor.image, donor.landmarks
        h, w = image.shape[:2]
        iod = inter_ocular_mesh(lm)
        tri = triangulate(lm[:468])
        mesh0, dlib0 = readers.brow_height(image)
        for rise in RAISES:
            maps = warp_maps(raised(lm, rise * iod)[:468], lm[:468], tri, (0, 0, w, h))
            warped = apply_maps(image, maps)
            warped[~maps.covered] = image[~maps.covered]
            mesh1, dlib1 = readers.brow_height(warped)
            print(
                f"{donor.name} | {rise:.2f} | {(mesh1 - mesh0) / rise:.2f} "
                f"| {(dlib1 - dlib0) / rise:.2f}"
            )
    readers.mesher.close()


if __name__ == "__main__":
    main()
