"""``medswap demo``: an end-to-end run on a clip built from packaged public-domain portraits.

The "patient" is the NASA portrait of Eileen Collins shipped in scikit-image, gently moved
(turns, nods, zoom) so the tracker and the mesh have motion to follow; the donor is the US Navy
portrait of Grace Hopper shipped in matplotlib. Nothing comes from outside the installed
packages, so the demo works on a fresh machine with no test media.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from medswap import video
from medswap.models import AUDIT_MODELS
from medswap.models import require as require_models
from medswap.pipeline import DEIDENTIFY_MODELS, DeidentifyResult, deidentify
from medswap.swap.donors import shipped_portrait

log = logging.getLogger(__name__)


def demo_frames(n_frames: int = 75, size: int = 384) -> list[np.ndarray]:
    """The astronaut portrait, cropped to her head and shoulders, with smooth small motion."""
    image = shipped_portrait("astronaut")[0:300, 80:380]  # head and shoulders
    frames = []
    for i in range(n_frames):
        t = i / n_frames * 2 * np.pi
        angle = 6 * np.sin(t)
        scale = 1.0 + 0.06 * np.sin(2 * t)
        m = cv2.getRotationMatrix2D((150, 120), angle, scale * size / 300)
        m[:, 2] += (size / 2 - 150 + 8 * np.sin(t), size / 2 - 150 + 4 * np.cos(t))
        frames.append(cv2.warpAffine(image, m, (size, size), borderMode=cv2.BORDER_REFLECT))
    return frames


def run_demo(out_dir: str | Path, n_frames: int = 50, progress=None) -> DeidentifyResult:
    """Build the demo clip in ``out_dir``, de-identify it, and save a before/after still."""
    require_models([*DEIDENTIFY_MODELS["swap"], *AUDIT_MODELS])  # before any file is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = demo_frames(n_frames)
    patient = video.write_video(
        out / "demo_patient.mp4",
        iter(frames),
        Fraction(25),
        (frames[0].shape[1], frames[0].shape[0]),
    )
    result = deidentify(
        patient,
        out / "demo_deidentified.mp4",
        donors=["grace_hopper"],
        report=out / "demo_report.json",
        progress=progress,
        audit=True,
    )
    middle = n_frames // 2
    for frame in video.read_frames(result.output):
        if frame.index == middle:
            still = np.concatenate([frames[middle], frame.image], axis=1)
            cv2.imwrite(str(out / "demo_before_after.png"), cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
    return result
