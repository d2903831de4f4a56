"""Small videos built in the test run from packaged public-domain portraits (no ../shared)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from medswap import video
from medswap.demo import demo_frames
from medswap.swap.donors import shipped_portrait


def portrait_clip(path: Path, n_frames: int = 20, size: int = 320) -> Path:
    """The demo's moving astronaut portrait as a short constant-rate clip."""
    frames = demo_frames(n_frames, size)
    return video.write_video(path, iter(frames), Fraction(25), (size, size))


def walk_in_clip(path: Path, n_empty: int = 8, n_face: int = 12, size: int = 320) -> Path:
    """A clip that starts with an empty room and then shows a face: someone walks in."""
    face = demo_frames(n_face, size)
    empty = np.full_like(face[0], 0)
    empty[:] = face[0][5:6, 5:6]  # the background colour, no person
    frames = [empty.copy() for _ in range(n_empty)] + face
    return video.write_video(path, iter(frames), Fraction(25), (size, size))


def two_people_clip(path: Path, n_frames: int = 10) -> Path:
    """Two different people side by side (astronaut and Grace Hopper portraits)."""
    a = cv2.resize(shipped_portrait("astronaut")[0:300, 80:380], (320, 320))
    g = cv2.resize(shipped_portrait("grace_hopper")[60:420, 76:436], (320, 320))
    frame = np.concatenate([a, g], axis=1)
    return video.write_video(path, iter([frame] * n_frames), Fraction(25), (640, 320))


def zero_frame_video(path: Path) -> Path:
    """An MP4 with a video stream and no frame in it."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    container.start_encoding()
    container.close()
    return path


def webm_clip(path: Path, n_frames: int = 12, size: int = 320) -> Path:
    """The demo portrait as VP9 in WebM/Matroska: a header with no frame count."""
    frames = demo_frames(n_frames, size)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx-vp9", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return path
