"""Point geometry shared by every layer: the similarity fit and applying a 2-D affine.

It lives at the bottom of the package because the tracker (``faces``), the swap, the learned
engine and the motion measures all align landmarks the same way; kept in ``swap`` it made
``faces`` import ``swap`` while ``swap`` imports ``faces``.
"""

from __future__ import annotations

import numpy as np


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2-D similarity (Umeyama) taking ``src`` points onto ``dst``: a (2, 3)."""
    src, dst = src[:, :2], dst[:, :2]
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u @ vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / max(s.var(0).sum(), 1e-12)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def transform_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (N, 2+) points, keeping any extra columns."""
    out = pts.astype(np.float64).copy()
    out[:, :2] = pts[:, :2] @ m[:, :2].T + m[:, 2]
    return out
