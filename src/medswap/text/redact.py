"""Hide a text region in place: a solid box, or a blur too strong to read through."""

from __future__ import annotations

import cv2
import numpy as np

#: ``--text-method`` values.
TEXT_METHODS: tuple[str, ...] = ("box", "blur")
#: The box's fill colour (RGB): black, the usual redaction bar.
BOX_COLOUR = (0, 0, 0)


def _pixels(box: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The box as whole pixels, outward (never losing a partial pixel), clipped to the image."""
    h, w = shape[:2]
    x0, y0 = (int(np.floor(v)) for v in box[:2])
    x1, y1 = (int(np.ceil(v)) for v in box[2:])
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def redact(image: np.ndarray, box: np.ndarray, method: str = "box") -> None:
    """Hide ``box`` (x0, y0, x1, y1) of ``image`` in place.

    ``blur`` averages over a window as tall as the box, twice (a box filter applied twice is
    close to a Gaussian), so each stroke is spread over the whole line height; a light blur
    that keeps letter shapes would leave the text readable.
    """
    x0, y0, x1, y1 = _pixels(box, image.shape)
    if x1 <= x0 or y1 <= y0:
        return
    if method == "box":
        image[y0:y1, x0:x1] = BOX_COLOUR
    elif method == "blur":
        roi = image[y0:y1, x0:x1]
        k = max(3, (y1 - y0) | 1)
        out = roi
        for _ in range(2):
            out = cv2.blur(out, (k, k), borderType=cv2.BORDER_REFLECT)
        image[y0:y1, x0:x1] = out
    else:
        raise ValueError(f"unknown text method '{method}'; choose one of {TEXT_METHODS}")
