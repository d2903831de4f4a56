"""Burned-in text: found, followed over time, redacted, and checked by a reader medswap never uses.

The synthetic clips are drawn here with a TrueType font (DejaVu Sans, shipped in matplotlib):
a camera stamp whose seconds change, a record number in a light corner, a title card with a
name, a date and an instruction, and a line moving across the frame. Each check reads the
places where text was drawn with Debian's ``tesseract`` (skipped with a reason when absent),
first in the input (it must read it there, or the check proves nothing), then in the output.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
from conftest import shared_video
from PIL import Image, ImageDraw, ImageFont

from medswap import video
from medswap.demo import demo_frames
from medswap.errors import UsageError
from medswap.pipeline import deidentify
from medswap.text.audit import TextCheckInStream, audit_text
from medswap.text.phi import classify
from medswap.text.redact import redact
from medswap.text.regions import TextBoxes, TextReading, TextReason
from medswap.text.stage import TextStage, key_frame_stride, outside_faces
from medswap.text.track import TextTracker, regions_between

FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
W, H, N = 640, 360, 45

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="tesseract (Debian package tesseract-ocr, installed by .ci/run) is not installed",
)


# -- an independent reader ----------------------------------------------------------------
def tesseract(image: np.ndarray, psm: int = 7) -> str:
    """What tesseract reads in an RGB image (grey, upscaled 2x), lower case letters and digits."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    _, png = cv2.imencode(".png", grey)
    out = subprocess.run(
        ["tesseract", "stdin", "stdout", "--psm", str(psm)],
        input=png.tobytes(),
        capture_output=True,
        check=True,
    ).stdout.decode(errors="replace")
    return _norm(out)


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def shares(truth: str, reading: str, n: int = 4) -> bool:
    """Whether ``reading`` contains any ``n`` characters in a row of ``truth``."""
    t = _norm(truth)
    return any(t[i : i + n] in reading for i in range(len(t) - n + 1))


def crop(image: np.ndarray, box, pad: int = 6) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in box)
    return image[max(y0 - pad, 0) : y1 + pad, max(x0 - pad, 0) : x1 + pad]


# -- clips drawn here ---------------------------------------------------------------------
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT), size)


def _write(path: Path, frames: list[np.ndarray], truth: list[list]) -> tuple[Path, list[list]]:
    video.write_video(path, iter(frames), Fraction(30), (W, H))
    return path, truth


def _draw(image: np.ndarray, lines) -> tuple[np.ndarray, list]:
    """Draw ``(xy, text, size, colour)`` lines; returns the image and each line's box."""
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    boxes = []
    for xy, text, size, colour in lines:
        draw.text(xy, text, font=_font(size), fill=colour)
        boxes.append((draw.textbbox(xy, text, font=_font(size)), text))
    return np.asarray(pil).copy(), boxes


def stamp_clip(path: Path) -> tuple[Path, list[list]]:
    """A face between a dark and a light half; a camera stamp whose seconds change every 10
    frames in the dark top-left corner, a record number in the light bottom-right corner."""
    faces = demo_frames(N, 200)
    frames, truth = [], []
    for i in range(N):
        image = np.empty((H, W, 3), np.uint8)
        image[:, : W // 2] = (28, 30, 38)
        image[:, W // 2 :] = (226, 224, 214)
        image[80:280, 220:420] = faces[i]
        image, boxes = _draw(
            image,
            [
                ((12, 10), f"2018-04-07 17:14:{i // 10:02d}", 20, (255, 255, 255)),
                ((452, 326), "MRN 00123456", 20, (0, 0, 0)),
            ],
        )
        frames.append(image)
        truth.append(boxes)
    return _write(path, frames, truth)


def title_clip(path: Path) -> tuple[Path, list[list]]:
    """Plain frames, then a title card (name, date, an instruction), then plain again."""
    frames, truth = [], []
    for i in range(N):
        image = np.full((H, W, 3), (60, 90, 70), np.uint8)
        boxes: list = []
        if 10 <= i < 35:
            image[:] = (236, 236, 228)
            image, boxes = _draw(
                image,
                [
                    ((60, 70), "Patient: John Smith", 32, (20, 20, 20)),
                    ((60, 150), "Visit 2018-04-07", 32, (20, 20, 20)),
                    ((60, 240), "Tap your fingers", 32, (20, 20, 120)),
                ],
            )
        frames.append(image)
        truth.append(boxes)
    return _write(path, frames, truth)


def moving_clip(path: Path) -> tuple[Path, list[list]]:
    """A name and a year moving left to right across a textured background, 9 px a frame."""
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(60, 200, (H, W, 3), dtype=np.uint8), (0, 0), 6)
    frames, truth = [], []
    for i in range(N):
        image, boxes = _draw(base, [((10 + 9 * i, 160), "Mary Jones 1957", 26, (255, 255, 255))])
        frames.append(image)
        truth.append(boxes)
    return _write(path, frames, truth)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text_clips")
    return {
        "stamp": stamp_clip(folder / "stamp.mp4"),
        "title": title_clip(folder / "title.mp4"),
        "moving": moving_clip(folder / "moving.mp4"),
    }


def _frames(path: Path) -> list[np.ndarray]:
    return [f.image for f in video.read_frames(path)]


def _reads(frames, truth, step: int = 3, n: int = 4) -> dict[str, list[bool]]:
    """Per line of text: whether tesseract reads part of it, on every ``step``-th frame."""
    found: dict[str, list[bool]] = {}
    for i in range(0, len(frames), step):
        for box, text in truth[i]:
            found.setdefault(text.split(":")[0], []).append(
                shares(text, tesseract(crop(frames[i], box)), n)
            )
    return found


def _same_timing(src: Path, out: Path) -> None:
    assert video.count_frames(out) == video.count_frames(src)
    assert video.read_timestamps(out) == video.read_timestamps(src)
    a, b = video.probe(src), video.probe(out)
    assert (a.width, a.height) == (b.width, b.height)


# -- end to end, read by tesseract --------------------------------------------------------
@needs_tesseract
@pytest.mark.parametrize(
    ("clip", "method"), [("stamp", "box"), ("title", "box"), ("moving", "blur")]
)
def test_no_text_stays_readable_after_deidentify(clips, tmp_path, clip, method):
    src, truth = clips[clip]
    out = tmp_path / "out.mp4"
    result = deidentify(src, out, text_method=method, report=tmp_path / "r.json")
    _same_timing(src, out)
    before = _reads(_frames(src), truth)
    after = _reads(_frames(out), truth)
    for line, hits in before.items():
        assert sum(hits) >= 0.8 * len(hits), f"tesseract cannot read '{line}' in the input"
    assert not any(any(h) for h in after.values()), after
    # The report says where and why, per frame, without the text itself.
    report = json.loads((tmp_path / "r.json").read_text())
    with_text = [i for i, t in enumerate(truth) if t]
    assert all(report["frames"][i]["text"] for i in with_text)
    assert result.totals.text.frames_redacted >= len(with_text)
    assert "Smith" not in (tmp_path / "r.json").read_text()


@needs_tesseract
def test_text_keep_leaves_the_text(clips, tmp_path):
    src, truth = clips["title"]
    out = tmp_path / "keep.mp4"
    result = deidentify(src, out, text="keep")
    _same_timing(src, out)
    after = _reads(_frames(out), truth)
    assert all(sum(h) >= 0.8 * len(h) for h in after.values()), after
    assert result.totals.text.regions_redacted == 0


@needs_tesseract
def test_text_phi_keeps_the_instruction_and_redacts_the_name_and_date(clips, tmp_path):
    src, truth = clips["title"]
    out = tmp_path / "phi.mp4"
    result = deidentify(src, out, text="phi", audit=True)
    after = _reads(_frames(out), truth)
    assert sum(after["Tap your fingers"]) >= 0.8 * len(after["Tap your fingers"]), after
    assert not any(after["Patient"]) and not any(after["Visit 2018-04-07"]), after
    reasons = result.totals.text.reasons
    assert reasons.get(TextReason.NAME.value) and reasons.get(TextReason.DATE.value)
    assert result.totals.text.regions_kept > 0
    # The audit counts the kept instruction apart and finds nothing else readable.
    assert result.text_audit.passed and result.text_audit.kept_on_purpose > 0


def test_the_audit_flags_text_left_in_the_output(clips):
    src, _ = clips["stamp"]
    leaky = audit_text(src, src, stride=10)  # the input itself as the "output"
    assert leaky.frames_with_text == leaky.frames_checked > 0
    assert not leaky.passed and len(leaky.findings) >= leaky.frames_checked


def test_the_in_stream_check_reads_the_frames_deidentify_encodes(clips, tmp_path):
    """The text audit of ``deidentify`` runs on the frames as they are encoded: it checks the
    frames midway between key frames, finds the input's text there, and nothing readable in
    the output; the same check given the input as its "output" flags every one of them."""
    src, _ = clips["stamp"]
    result = deidentify(src, tmp_path / "out.mp4", audit=True)
    stride = key_frame_stride(video.probe(src).fps)
    due = [i for i in range(N) if i >= stride // 2 and (i - stride // 2) % stride == 0]
    audit = result.text_audit
    assert audit.frames_checked == len(due) and audit.frames_with_text == len(due)
    assert audit.passed, audit.to_json()
    check = TextCheckInStream(stride, stride // 2)
    try:
        for f in video.read_frames(src):
            if check.due(f.index):
                check.submit(f.index, f.image, f.image.copy(), [], [])
        leaky = check.result()
    finally:
        check.close()
    assert leaky.frames_checked == len(due) and not leaky.passed
    assert sorted({x.frame_index for x in leaky.findings}) == due


@needs_tesseract
@pytest.mark.shared
@pytest.mark.slow
def test_the_shared_title_card_is_not_readable_afterwards(tmp_path):
    src = shared_video("face_then_title.mov")
    out = tmp_path / "title.mp4"
    result = deidentify(src, out, audit=True, audit_stride=6)
    _same_timing(src, out)

    def reads(path: Path) -> list[int]:
        hits = []
        for f in video.read_frames(path):
            if f.index % 6 == 0 and any(shares("caminandes", r) for r in _read_page(f.image)):
                hits.append(f.index)
        return hits

    assert len(reads(src)) >= 5, "tesseract should read the title in the input"
    assert reads(out) == []
    assert result.text_audit.passed and result.text_audit.frames_with_text > 0


def _read_page(image: np.ndarray) -> list[str]:
    """Tesseract over the whole frame (sparse text), as grey and as black-and-white both ways."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    _, bw = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return [tesseract(cv2.cvtColor(p, cv2.COLOR_GRAY2RGB), psm=11) for p in (grey, bw, 255 - bw)]


# -- the parts ----------------------------------------------------------------------------
def _boxes(*xyxy) -> TextBoxes:
    return TextBoxes(np.array(xyxy, dtype=float), np.ones(len(xyxy)))


def test_a_missed_detection_keeps_the_region_covered_then_lets_it_go():
    tracker = TextTracker((640, 360), max_miss=2)
    first = tracker.update(_boxes([10, 10, 110, 30]))
    for _ in range(2):
        bridged = tracker.update(TextBoxes.empty())
        assert [t.reason for t in bridged] == [TextReason.BRIDGED]
        assert np.allclose(bridged[0].box, first[0].box)
    assert tracker.update(TextBoxes.empty()) == []


def test_a_stamp_whose_width_changes_keeps_the_union_of_what_it_showed():
    tracker = TextTracker((640, 360))
    a = tracker.update(_boxes([10, 10, 110, 30]))[0].box
    b = tracker.update(_boxes([10, 10, 95, 30]))[0].box
    assert b[2] == a[2] and b[0] == a[0]  # still covers the wider reading


def test_text_that_moves_is_covered_along_its_path_between_key_frames():
    tracker = TextTracker((640, 360))
    before = tracker.update(_boxes([10, 100, 110, 120]))
    after = tracker.update(_boxes([200, 100, 300, 120]))
    assert after[0].track_id == before[0].track_id and after[0].reason == TextReason.MOVING
    [(_, box)] = regions_between(before, after)
    assert box[0] <= 10 - 5 and box[2] >= 300 + 5  # both ends, grown


def test_text_appearing_between_key_frames_is_covered_from_its_first_frame():
    class Fake:  # text from frame 4 on; the stage looks at frames 0, 10 and the last
        def __call__(self, image):
            return _boxes([20, 20, 120, 40]) if image[0, 0, 0] else TextBoxes.empty()

    stage = TextStage("redact", "box", (160, 90), stride=10, detector=Fake())
    out = []
    for i in range(14):
        src = np.full((90, 160, 3), 255 if i >= 4 else 0, np.uint8)
        out += stage.push(i, src, src.copy(), i)
    out += stage.flush()
    stage.close()
    assert [f.payload for f in out] == list(range(14))
    covered = [bool(f.regions) for f in out]
    assert covered[4:] == [True] * 10
    assert all(f.image[30, 60].tolist() == [0, 0, 0] for f in out[4:])


def test_detections_on_a_face_are_left_to_the_face():
    boxes = _boxes([300, 60, 560, 510], [10, 10, 200, 40])
    kept = outside_faces(boxes, [np.array([325.0, 147, 553, 439])])
    assert kept.xyxy.tolist() == [[10, 10, 200, 40]]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Tap your fingers", TextReason.NO_PHI),
        ("Open and close your hand", TextReason.NO_PHI),
        ("2018-04-07 17:14:00", TextReason.DATE),
        ("7 Apr 2018", TextReason.DATE),
        ("Visit2018-04-07", TextReason.DATE),  # the recogniser dropped the space
        ("17:14", TextReason.TIME),
        ("at17:14", TextReason.TIME),
        ("MRN 00123456", TextReason.NUMBER),
        ("John Smith", TextReason.NAME),
        ("Patient: Mary Jones", TextReason.NAME),
        ("SMITH", TextReason.NAME),
    ],
)
def test_phi_filter(text, reason):
    assert classify(TextReading(text, 0.95)) is reason


def test_phi_filter_fails_closed_on_an_unsure_reading():
    assert classify(TextReading("Tap your fingers", 0.4)) is TextReason.UNREADABLE


@pytest.mark.parametrize("method", ["box", "blur"])
def test_redact_changes_only_the_box(method):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    before = image.copy()
    redact(image, np.array([10.2, 10.7, 40.5, 30.1]), method)
    outside = np.ones(image.shape[:2], bool)
    outside[10:31, 10:41] = False
    assert (image[outside] == before[outside]).all()
    assert (image[10:31, 10:41] != before[10:31, 10:41]).any()


def test_bad_text_options_are_usage_errors(clips, tmp_path):
    src, _ = clips["title"]
    with pytest.raises(UsageError, match="--text must be"):
        deidentify(src, tmp_path / "x.mp4", text="hide")
    with pytest.raises(UsageError, match="--text-method must be"):
        deidentify(src, tmp_path / "x.mp4", text_method="mosaic")
