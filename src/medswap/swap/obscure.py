"""The traditional methods (blur, pixelate, mask) and the fail-closed obscuring.

All act on the same face region the swap uses (an ellipse around the tracked face box), so that
comparisons between methods are fair. ``strength`` scales each method relative to the face
size, which is what matters for both privacy and keypoints: a kernel of a third of the face
width is a mild blur whatever the resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Defaults: strong enough that dlib finds no face (measured; see README "Baselines").
DEFAULT_STRENGTH = {"blur": 1.0, "pixelate": 8.0, "mask": 1.0}


def face_region(
    box: np.ndarray, frame_shape: tuple[int, int], grow: float = 1.25
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """The clipped pixel region around a face box and an elliptical 0/255 mask inside it."""
    h, w = frame_shape[:2]
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx, ry = (x1 - x0) / 2 * grow, (y1 - y0) / 2 * grow * 1.1
    rx, ry = max(rx, 2), max(ry, 2)
    rx0, ry0 = int(max(0, np.floor(cx - rx))), int(max(0, np.floor(cy - ry)))
    rx1, ry1 = int(min(w, np.ceil(cx + rx))), int(min(h, np.ceil(cy + ry)))
    region = (rx0, ry0, max(rx0 + 1, rx1), max(ry0 + 1, ry1))
    mask = np.zeros((region[3] - region[1], region[2] - region[0]), np.uint8)
    cv2.ellipse(
        mask,
        (int(round(cx - rx0)), int(round(cy - ry0))),
        (int(round(rx)), int(round(ry))),
        0,
        0,
        360,
        255,
        -1,
    )
    return region, mask


def blur(patch: np.ndarray, face_width: float, strength: float = 1.0) -> np.ndarray:
    """Gaussian blur with a kernel of ``strength`` x face width (1/3 is 'mild')."""
    sigma = max(0.5, strength * face_width / 6.0)  # kernel ~ 6 sigma
    return cv2.GaussianBlur(patch, (0, 0), sigma)


def pixelate(patch: np.ndarray, face_width: float, blocks: float = 8.0) -> np.ndarray:
    """Mosaic with about ``blocks`` blocks across the face width."""
    h, w = patch.shape[:2]
    block = max(1.0, face_width / max(blocks, 1.0))
    sw, sh = max(1, int(round(w / block))), max(1, int(round(h / block)))
    small = cv2.resize(patch, (sw, sh), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def solid(patch: np.ndarray, value: int = 0) -> np.ndarray:
    """A flat mask."""
    return np.full_like(patch, value)


def apply_in_region(
    frame: np.ndarray, box: np.ndarray, method: str, strength: float, grow: float = 1.25
) -> None:
    """Apply one method inside the face ellipse of ``box``, in place."""
    region, mask = face_region(box, frame.shape, grow)
    x0, y0, x1, y1 = region
    patch = frame[y0:y1, x0:x1]
    face_w = float(box[2] - box[0])
    if method == "blur":
        done = blur(patch, face_w, strength)
    elif method == "pixelate":
        done = pixelate(patch, face_w, strength)
    elif method == "mask":
        done = solid(patch)
    else:
        raise ValueError(f"unknown method '{method}'")
    sel = mask > 0
    patch[sel] = done[sel]


def obscure(frame: np.ndarray, box: np.ndarray) -> None:
    """Fail-closed hiding of a face that could not be swapped: coarse mosaic, then blur.

    Generous on purpose (a larger ellipse than the baselines): this is the privacy floor.
    """
    region, mask = face_region(box, frame.shape, grow=1.6)
    x0, y0, x1, y1 = region
    patch = frame[y0:y1, x0:x1]
    face_w = float(box[2] - box[0])
    done = blur(pixelate(patch, face_w, 5.0), face_w, 0.5)
    sel = mask > 0
    patch[sel] = done[sel]
