"""Who a model is for: the subject fingerprint, and the check that refuses anyone else.

The fingerprint is the mean dlib ResNet descriptor over a handful of the subject's frames:
an independent recogniser (not the MediaPipe mesh the swap is driven by), with a published
operating point (same person below 0.6). A model trained on one patient has an encoder fitted
to that face only; applied to someone else it gives a poor swap, and running one patient's
model on another patient's video is a data-handling mistake worth stopping early.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medswap import video
from medswap.errors import ModelFileError
from medswap.faces.independent import DLIB_SAME_PERSON_DISTANCE, DlibFaces, dlib_distance

log = logging.getLogger(__name__)


def mean_descriptor(images: Iterable[np.ndarray], limit: int = 12) -> tuple[np.ndarray | None, int]:
    """Mean dlib descriptor of the largest face over up to ``limit`` images, and how many."""
    dlib = DlibFaces(upsample=1)
    descs = []
    for image in images:
        faces = dlib.detect(image)
        if faces:
            descs.append(dlib.descriptor(image, faces[0]))
            if len(descs) >= limit:
                break
    if not descs:
        return None, 0
    return np.mean(descs, axis=0), len(descs)


def video_descriptor(
    path: str | Path, n_faces: int = 5, max_scan: int = 150, stride: int = 5
) -> tuple[np.ndarray | None, int]:
    """Mean descriptor of the first ``n_faces`` frames (every ``stride``-th) that show a face."""
    frames = (
        f.image for f in video.read_frames(path, max_frames=max_scan) if f.index % stride == 0
    )
    return mean_descriptor(frames, limit=n_faces)


def check_subject(
    model_path: str | Path, fingerprint: np.ndarray, input_path: str | Path
) -> float | None:
    """Refuse (ModelFileError) when the video's face is not the model's subject.

    Returns the distance, or None when no face could be checked in the first frames (the swap
    then runs: every face is still swapped or obscured, only the quality is at stake).
    """
    desc, n = video_descriptor(input_path)
    if desc is None:
        log.warning(
            "%s: no face for the identity check in the first frames; applying %s unchecked",
            Path(input_path).name,
            Path(model_path).name,
        )
        return None
    d = dlib_distance(desc, fingerprint)
    log.info("identity check: distance %.3f to the model's subject over %d frames", d, n)
    if d >= DLIB_SAME_PERSON_DISTANCE:
        raise ModelFileError(
            f"trained for another person (distance {d:.2f} > {DLIB_SAME_PERSON_DISTANCE})",
            model_path,
        )
    return d
