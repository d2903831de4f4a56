"""Still frames for the contact sheet, decoded from a video and encoded as JPEG.

One pass over the video, stopping after the last frame wanted. Frames are scaled so their
long side is at most ``max_side`` pixels (enough to judge a face at full screen, small enough
that a page of a hundred frames opens quickly) and embedded in the page as data URIs, so the
page is one file that opens from disk with no server and no network.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from medswap import video

#: Long side of an embedded frame, in pixels.
MAX_SIDE = 720
JPEG_QUALITY = 82


def encode_jpeg(image: np.ndarray, max_side: int = MAX_SIDE) -> bytes:
    """An RGB frame as JPEG bytes, scaled down (never up) to ``max_side``."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        image = cv2.resize(
            image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def data_uri(jpeg: bytes) -> str:
    """A JPEG as a ``data:`` URI the page can show offline."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def read_stills(path: str | Path, indices: Iterable[int]) -> dict[int, bytes]:
    """JPEG stills of the frames ``indices`` of a video (frames past its end are absent)."""
    wanted = sorted(set(indices))
    if not wanted:
        return {}
    stills: dict[int, bytes] = {}
    keep = set(wanted)
    for frame in video.read_frames(path, max_frames=wanted[-1] + 1):
        if frame.index in keep:
            stills[frame.index] = encode_jpeg(frame.image)
    return stills
