"""Shared fixtures: the test media in ../shared (skipped when absent) and small built clips."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "media"
VIDEOS = SHARED / "video"
FACES = SHARED / "faces"

#: Every shared clip that shows a person (no_face.mp4 is the negative control).
FACE_CLIPS = [
    "speech_a.mp4",
    "speech_b.mp4",
    "speech_c.mp4",
    "hand_open_close.mp4",
    "signer_small_face.mp4",
    "hands_in_front.mp4",
    "expression_a.mp4",
    "expression_b.mp4",
    "expression_c.mp4",
    "webcam_single.mp4",
    "face_then_title.mov",
]

needs_shared = pytest.mark.skipif(
    not VIDEOS.is_dir(), reason="test media ../shared/media/video is absent (fresh clone)"
)


def shared_video(name: str) -> Path:
    """Path of a shared clip; skips the test with a reason when the shared media are absent."""
    path = VIDEOS / name
    if not path.is_file():
        pytest.skip(f"shared test media {path} is absent (fresh clone)")
    return path
