"""The traditional methods (blur, pixelate, mask) and the fail-closed obscuring.

All act on the same face region the swap uses (an ellipse around the tracked face box), so that
comparisons between methods are fair. ``strength`` scales each method relative to the face
size, which is what matters for both privacy and keypoints: a kernel of a third of the face
width is a mild blur whatever the resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from medswap.errors import UsageError
from medswap.faces.mesh import LEFT_EYE, RIGHT_EYE
from medswap.swap.blend import gaussian_blur

#: Defaults: strong enough that dlib finds no face (measured; see README "Baselines").
DEFAULT_STRENGTH = {"blur": 1.0, "pixelate": 8.0, "mask": 1.0}
#: The strengths each baseline accepts: outside them a blur or mosaic leaves the face as it was
#: (a kernel a tenth of the face or less, a mosaic of more blocks than a face has features),
#: or the value means nothing (negative, zero). ``mask`` has no strength: it is solid.
STRENGTH_RANGE = {"blur": (0.1, 4.0), "pixelate": (2.0, 32.0)}
#: Shapes of the ``mask`` baseline: the face ellipse the other methods use (default), the
#: rectangle around it, or a bar over the eyes only (the classic, weak, "eye bar").
MASK_SHAPES = ("ellipse", "box", "eyes")
#: Mesh points of both eyes, for the eye bar when the face's landmarks are known.
_EYE_POINTS = RIGHT_EYE + LEFT_EYE


def check_strength(method: str, strength: float | None) -> float | None:
    """``strength`` if it is one ``method`` can use, else :class:`UsageError` with the range."""
    if strength is None:
        return None
    if method not in STRENGTH_RANGE:
        raise UsageError(f"--strength applies to --method blur or pixelate, not {method}")
    lo, hi = STRENGTH_RANGE[method]
    if not (lo <= strength <= hi):  # also refuses NaN
        unit = "kernel / face width" if method == "blur" else "blocks across the face"
        raise UsageError(
            f"--strength for {method} must be between {lo:g} and {hi:g} ({unit}), got {strength:g}"
        )
    return float(strength)


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
    # A wide Gaussian on full-resolution pixels costs O(sigma) per pixel; blurring a
    # downscaled copy with the scaled sigma gives the same low-pass at a fraction of the cost.
    factor = max(1.0, sigma / 3.0)
    if factor <= 1.5:
        return gaussian_blur(patch, sigma)
    h, w = patch.shape[:2]
    small = cv2.resize(
        patch, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA
    )
    small = gaussian_blur(small, sigma / factor)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


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


def eye_bar(
    box: np.ndarray, frame_shape: tuple[int, int], landmarks: np.ndarray | None = None
) -> tuple[int, int, int, int]:
    """The pixel rectangle of an eye bar: both eyes, brow to below the lower lids.

    From the face mesh's eye points when given; otherwise from the face box (eyes lie about
    a quarter to a half of the way down a mesh-extent box).
    """
    h, w = frame_shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    fw = x1 - x0
    if landmarks is not None and len(landmarks) > max(_EYE_POINTS):
        eyes = np.asarray(landmarks)[_EYE_POINTS, :2]
        ex0, ey0 = eyes.min(0)
        ex1, ey1 = eyes.max(0)
        pad_y = max(0.5 * (ey1 - ey0), 0.05 * fw)
        bx0, bx1 = ex0 - 0.12 * fw, ex1 + 0.12 * fw
        by0, by1 = ey0 - pad_y, ey1 + pad_y
    else:
        fh = y1 - y0
        bx0, bx1 = x0 - 0.02 * fw, x1 + 0.02 * fw
        by0, by1 = y0 + 0.25 * fh, y0 + 0.50 * fh
    rx0, ry0 = int(max(0, np.floor(bx0))), int(max(0, np.floor(by0)))
    rx1, ry1 = int(min(w, np.ceil(bx1))), int(min(h, np.ceil(by1)))
    return rx0, ry0, max(rx0 + 1, rx1), max(ry0 + 1, ry1)


def apply_in_region(
    frame: np.ndarray,
    box: np.ndarray,
    method: str,
    strength: float,
    grow: float = 1.25,
    shape: str = "ellipse",
    landmarks: np.ndarray | None = None,
) -> None:
    """Apply one method inside the face ellipse of ``box``, in place.

    ``shape`` (``mask`` only, see :data:`MASK_SHAPES`) fills the ellipse, its bounding
    rectangle, or an eye bar (placed from ``landmarks`` when given).
    """
    if method == "mask" and shape != "ellipse":
        if shape == "box":
            (x0, y0, x1, y1), _ = face_region(box, frame.shape, grow)
        elif shape == "eyes":
            x0, y0, x1, y1 = eye_bar(box, frame.shape, landmarks)
        else:
            raise ValueError(f"unknown mask shape '{shape}'; choose one of {MASK_SHAPES}")
        frame[y0:y1, x0:x1] = 0
        return
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
