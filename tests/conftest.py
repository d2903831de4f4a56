"""Shared fixtures: the test media in ../shared (skipped when absent) and small built clips."""

from __future__ import annotations

import inspect
import re
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


#: Names through which a test or fixture reaches the shared media.
_SHARED_NAMES = re.compile(r"\b(shared_video|needs_shared|VIDEOS|FACES|FACE_CLIPS|SHARED)\b")


def _reaches_shared_media(item: pytest.Item) -> bool:
    """The test, or a fixture it uses (directly or through other fixtures), names the media."""
    if item.get_closest_marker("shared") is not None:
        return True
    functions = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    if info is not None:
        functions += [d[-1].func for d in info.name2fixturedefs.values() if d]
    for fn in functions:
        try:
            if fn is not None and _SHARED_NAMES.search(inspect.getsource(fn)):
                return True
        except (OSError, TypeError):  # a built-in fixture has no Python source
            continue
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Two tiers: every test that reaches ../shared is end to end, marked ``shared`` and
    ``slow``; the rest run on synthetic clips and make the fast tier (``-m "not shared"``).

    Marked from the code rather than by hand, so a new test that opens a shared clip cannot
    land in the fast tier by a forgotten decorator.
    """
    for item in items:
        if _reaches_shared_media(item):
            item.add_marker(pytest.mark.shared)
            item.add_marker(pytest.mark.slow)
