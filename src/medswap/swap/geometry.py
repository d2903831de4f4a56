"""Piecewise-affine warping of one triangulated face onto another, as a single remap.

A Python loop of one ``warpAffine`` per mesh triangle costs 70-240 ms a frame. Here each output
pixel is labelled with the triangle that covers it (one ``fillConvexPoly`` per triangle on a
small integer image, nearest triangles drawn last), every triangle's inverse affine map is
solved at once with numpy, and the whole face is sampled with one ``cv2.remap``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay


@dataclass(frozen=True)
class WarpMaps:
    """Where each pixel of an output region samples its source, and which pixels are covered."""

    x0: int
    y0: int
    map_x: np.ndarray  # (h, w) float32 source x for each output pixel of the region
    map_y: np.ndarray
    covered: np.ndarray  # (h, w) bool: inside the warped mesh

    @property
    def shape(self) -> tuple[int, int]:
        return self.map_x.shape


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles (T, 3) over 2-D points, dropping slivers on the hull."""
    tri = Delaunay(points[:, :2]).simplices
    p = points[:, :2]
    a, b, c = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
    area = 0.5 * np.abs(
        (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    )
    longest = np.max(
        np.stack(
            [
                np.linalg.norm(a - b, axis=1),
                np.linalg.norm(b - c, axis=1),
                np.linalg.norm(c - a, axis=1),
            ]
        ),
        axis=0,
    )
    keep = area > 0.02 * longest**2  # no needle triangles along the convex hull
    return tri[keep].astype(np.int32)


def triangle_affines(dst: np.ndarray, src: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """For each triangle, the (3, 2) matrix A with ``[x, y, 1] @ A`` = source point of (x, y).

    Solved in closed form (3x3 adjugate), which for ~900 tiny systems is several times faster
    than a batched ``np.linalg.solve``. Degenerate (zero-area) destination triangles map every
    pixel to their source centroid.
    """
    d = dst[triangles, :2]  # (T, 3, 2)
    s = src[triangles, :2]
    x, y = d[..., 0], d[..., 1]  # (T, 3)
    # Inverse of [[x0 y0 1], [x1 y1 1], [x2 y2 1]] via its adjugate.
    det = (
        x[:, 0] * (y[:, 1] - y[:, 2])
        + x[:, 1] * (y[:, 2] - y[:, 0])
        + x[:, 2] * (y[:, 0] - y[:, 1])
    )
    ok = np.abs(det) > 1e-6
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    inv = np.empty((len(triangles), 3, 3))
    inv[:, 0, 0] = y[:, 1] - y[:, 2]
    inv[:, 0, 1] = y[:, 2] - y[:, 0]
    inv[:, 0, 2] = y[:, 0] - y[:, 1]
    inv[:, 1, 0] = x[:, 2] - x[:, 1]
    inv[:, 1, 1] = x[:, 0] - x[:, 2]
    inv[:, 1, 2] = x[:, 1] - x[:, 0]
    inv[:, 2, 0] = x[:, 1] * y[:, 2] - x[:, 2] * y[:, 1]
    inv[:, 2, 1] = x[:, 2] * y[:, 0] - x[:, 0] * y[:, 2]
    inv[:, 2, 2] = x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]
    inv *= inv_det[:, None, None]
    affines = inv @ s  # (T, 3, 2)
    affines[~ok] = 0.0
    affines[~ok, 2, :] = s[~ok].mean(axis=1)
    return affines


def warp_maps(
    dst: np.ndarray,
    src: np.ndarray,
    triangles: np.ndarray,
    region: tuple[int, int, int, int],
    depth: np.ndarray | None = None,
) -> WarpMaps:
    """Maps that pull ``src`` geometry into ``dst`` geometry over ``region`` (x0, y0, x1, y1).

    ``depth`` (per point, smaller = nearer the camera) orders overlapping triangles when the
    head is turned, so the near cheek covers the far one.
    """
    x0, y0, x1, y1 = region
    w, h = max(1, x1 - x0), max(1, y1 - y0)
    ids = np.full((h, w), -1, dtype=np.int32)
    local = dst[:, :2] - (x0, y0)
    order = np.arange(len(triangles))
    if depth is not None:
        order = np.argsort(-depth[triangles].mean(axis=1))  # far first, near last
    pts = np.round(local[triangles] * 4).astype(np.int32)  # 2 bits of sub-pixel precision
    # Only triangles that reach into the region are drawn: a region around the mouth needs a
    # few dozen of the mesh's ~900, and every fill call costs the same however little it draws.
    lo, hi = pts.min(axis=1), pts.max(axis=1)
    inside = (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < 4 * w) & (lo[:, 1] < 4 * h)
    drawn = order[inside[order]]
    # One call per triangle is the cost here: the loop is kept to plain Python values.
    for poly, t in zip(list(pts[drawn]), drawn.tolist(), strict=True):
        cv2.fillConvexPoly(ids, poly, t, cv2.LINE_8, 2)
    covered = ids >= 0
    affines = triangle_affines(dst - np.append([x0, y0], [0] * (dst.shape[1] - 2)), src, triangles)
    # a00 a01 a10 a11 a20 a21 as six rows: six 1-D takes are twice as fast as one (h, w, 6)
    # gather, and the maps are built in place.
    coef = np.ascontiguousarray(affines.reshape(-1, 6).T, dtype=np.float32)
    idx = np.where(covered, ids, 0)
    xx = np.arange(w, dtype=np.float32)[None, :]
    yy = np.arange(h, dtype=np.float32)[:, None]
    map_x = coef[0].take(idx) * xx
    map_x += coef[2].take(idx) * yy
    map_x += coef[4].take(idx)
    map_y = coef[1].take(idx) * xx
    map_y += coef[3].take(idx) * yy
    map_y += coef[5].take(idx)
    return WarpMaps(x0, y0, map_x, map_y, covered)


def apply_maps(image: np.ndarray, maps: WarpMaps) -> np.ndarray:
    """Sample ``image`` through the maps; pixels outside the mesh come out black."""
    out = cv2.remap(image, maps.map_x, maps.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out[~maps.covered] = 0
    return out
