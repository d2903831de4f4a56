"""Independent measurements of a de-identified clip against its original (dlib, SFace)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medswap import video
from medswap.faces.independent import (
    DlibFaces,
    SFaceRecogniser,
    dlib_distance,
    inter_ocular,
    sface_cosine,
)
from medswap.faces.track import iou


@dataclass
class Quality:
    frames: int
    dlib_found_original: int
    dlib_found_output: int
    nme: np.ndarray  # per frame: mean point error / inter-ocular distance
    dlib_distance: np.ndarray  # per frame where both have a face
    sface_cosine: np.ndarray

    @property
    def detection_ratio(self) -> float:
        return self.dlib_found_output / max(self.dlib_found_original, 1)


_DLIB = DlibFaces(upsample=1)
_SFACE = SFaceRecogniser()


def measure(original, output, stride: int = 3, identity: bool = True) -> Quality:
    """dlib 68-point error and identity distances on every ``stride``-th frame."""
    nme, dd, sc = [], [], []
    n = found_o = found_b = 0
    for fa, fb in zip(video.read_frames(original), video.read_frames(output)):
        if fa.index % stride:
            continue
        n += 1
        a, b = _DLIB.detect(fa.image), _DLIB.detect(fb.image)
        found_o += bool(a)
        if a and b:
            found_b += 1
            la, lb = a[0].landmarks, b[0].landmarks
            nme.append(np.mean(np.linalg.norm(la - lb, axis=1)) / inter_ocular(la))
            if identity:
                dd.append(
                    dlib_distance(
                        _DLIB.descriptor(fa.image, a[0]), _DLIB.descriptor(fb.image, b[0])
                    )
                )
        if identity:
            sa, sb = _SFACE.detect(fa.image), _SFACE.detect(fb.image)
            if sa and sb:
                # The patient is YuNet's most confident face, compared with the output face
                # in the same place: its largest face can be a raised hand (hand_open_close,
                # score 0.60 against 0.93), which is the same unchanged hand in both frames.
                face = max(sa, key=lambda f: f.score)
                overlap = iou(face.box, np.array([f.box for f in sb]))[0]
                same = sb[int(np.argmax(overlap))]
                if overlap.max() > 0.3:
                    sc.append(
                        sface_cosine(
                            _SFACE.descriptor(fa.image, face), _SFACE.descriptor(fb.image, same)
                        )
                    )
    return Quality(n, found_o, found_b, np.array(nme), np.array(dd), np.array(sc))
