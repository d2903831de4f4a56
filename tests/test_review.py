"""Release review: the page, signed manifests, and a release that refuses anything not approved.

Fast tests build a de-identified folder from a synthetic clip (``portrait_clip``) and a
report written here, so signing, verification and the page are tested without a model. The
end-to-end test runs ``batch --require-approval`` on short slices of two shared clips and
drives the page in headless Chromium (skipped with a reason when either is absent).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browser import Browser, chromium_path
from conftest import shared_video
from media import portrait_clip

from medswap.cli import main
from medswap.outputs import scrub
from medswap.review import load_review_set
from medswap.review.api import approve, build_review_page
from medswap.review.load import (
    audit_line,
    frame_flags,
    lineup_line,
    release_name,
    sample_frames,
)
from medswap.review.model import FlagKind, Verdict
from medswap.review.page import render_page
from medswap.review.sign import Decision, default_key_file, load_key, verify_manifest
from medswap.review.staging import staged_paths
from medswap.video import probe, read_frames, write_video

N = 12  # frames of the synthetic clip


def _audit(leaks: list[int] = (), rank1: float = 0.0, named: float = 0.0) -> dict:
    return {
        "original": "/archive/Smith_John/exam.mp4",
        "safe": not leaks,
        "nothing_to_protect": False,
        "frames": N,
        "frames_with_original_face": N,
        "verification": {"dlib": {"reid_rate": 0.0}, "sface": {"reid_rate": 0.0}},
        "frames_no_face_in_output": [7],
        "identification": {
            "n_identities": 9,
            "chance_rank1": 1 / 9,
            "chance_rank1_without_donors": 1 / 8,
            "recognisers": {
                r: {
                    "rank1_rate": rank1,
                    "rank1_within_threshold_rate": named,
                    "rank1_rate_without_donors": 0.5,
                }
                for r in ("dlib", "sface")
            },
        },
        "leaks": {
            "frames": list(leaks),
            "hits": [{"frame_index": i, "recogniser": "sface", "distance": 0.5} for i in leaks],
        },
    }


def _report(audit: dict | None) -> dict:
    """A report shaped like ``deidentify --report``'s: frames 2-3 bridged, 9 with a hand."""
    frames = []
    for i in range(N):
        face = {"track_id": 0, "box": [10, 10, 90, 90], "score": 1.0, "status": "swapped"}
        if i in (2, 3):
            face |= {"status": "obscured", "reason": "face lost for a few frames (track bridged)"}
        if i == 9:
            face["hands_in_front"] = 1
        frames.append({"frame_index": i, "status": face["status"], "faces": [face]})
    return {
        "tool": "medswap",
        "input": {"name": "Smith_John.mp4", "width": 160, "height": 160},
        "output": "exam.unreviewed.mp4",
        "settings": {"method": "swap", "shape": 0.5},
        "totals": {
            "frames": N,
            "frames_obscured": 2,
            "obscured_reasons": {"face lost for a few frames (track bridged)": 2},
        },
        "audit": audit,
        "frames": frames,
    }


@pytest.fixture
def staged(tmp_path) -> Path:
    """A video folder as ``deidentify --require-approval`` leaves it (synthetic report)."""
    out = tmp_path / "out"
    out.mkdir()
    portrait_clip(out / "exam.unreviewed.mp4", n_frames=N, size=160)
    (out / "exam.unreviewed.json").write_text(json.dumps(_report(_audit(leaks=[5]))))
    return out


def _decide(out: Path, decision: str = "approved", ranges: list | None = None) -> Path:
    reviews = load_review_set(out)
    video = reviews.videos[0]
    data = {
        "file": video.file,
        "sha256": video.sha256,
        "reviewer": "Dr. A. Steward",
        "decision": decision,
        "note": "checked every flagged frame",
        "ranges": ranges or [],
    }
    path, _ = approve(reviews, Decision.from_json(data), default_key_file(out, "video"))
    return path


def _release(capsys, *args: str) -> tuple[int, str]:
    code = main(["release", *args])
    return code, capsys.readouterr().err.strip().splitlines()[-1]


# -- judging (pure) ---------------------------------------------------------------------------


def test_every_flagged_frame_is_found_with_its_reason():
    flags = frame_flags(_report(_audit(leaks=[5])))
    kinds = {i: {f.kind for f in fl} for i, fl in flags.items()}
    assert kinds == {
        2: {FlagKind.BRIDGED},
        3: {FlagKind.BRIDGED},
        5: {FlagKind.LEAK},
        7: {FlagKind.NO_FACE},
        9: {FlagKind.HAND},
    }
    assert "sface takes this face for the patient" in flags[5][0].text


@pytest.mark.parametrize(
    ("audit", "audit_verdict", "lineup_verdict"),
    [
        (None, Verdict.FAIL, Verdict.NONE),  # not audited: nothing proves the output
        (_audit(), Verdict.PASS, Verdict.WARN),  # nearest without the donor above chance
        (_audit(leaks=[3]), Verdict.FAIL, Verdict.WARN),
        (_audit(rank1=0.5), Verdict.PASS, Verdict.FAIL),  # rank-1 above chance with the donor
        (_audit(named=0.1), Verdict.PASS, Verdict.FAIL),  # a recogniser names the patient
    ],
)
def test_summary_verdicts(audit, audit_verdict, lineup_verdict):
    from medswap.review.load import audit_figures

    figures = audit_figures(audit)
    assert audit_line(figures).verdict == audit_verdict
    assert lineup_line(figures).verdict == lineup_verdict


def test_sample_is_even_and_skips_flagged_frames():
    assert sample_frames(100, {0, 50}, 5) == [1, 25, 49, 75, 99]
    assert sample_frames(3, {0, 1, 2}, 5) == []


def test_staging_names_and_scrubbing():
    assert staged_paths("d/exam.mp4", None) == (
        Path("d/exam.unreviewed.mp4"),
        Path("d/exam.unreviewed.json"),
    )
    assert release_name("sub-x/x_tap_1.unreviewed.mp4") == "sub-x/x_tap_1.mp4"
    assert release_name("exam.mp4") == "exam.mp4"
    assert scrub({"a": ["/in/Smith.mp4 failed", 3]}, {"/in/Smith.mp4": "<input>"}) == {
        "a": ["<input> failed", 3]
    }


# -- signing, verification, release (synthetic clip) ------------------------------------------


def test_approval_signs_a_manifest_that_verifies_and_release_copies_the_same_bytes(
    staged, tmp_path, capsys
):
    manifest_path = _decide(staged)
    assert manifest_path == staged / "exam.release.json"
    key = load_key(default_key_file(staged, "video"), staged, create=False)
    data = verify_manifest(manifest_path, key)
    assert data["decision"] == "approved" and data["reviewer"] == "Dr. A. Steward"
    assert data["audit"]["leak_frames"] == [5]
    text = manifest_path.read_text()
    assert "Smith" not in text and "/archive" not in text, "no original name in the manifest"

    code, line = _release(capsys, str(manifest_path), "--to", str(tmp_path / "rel"))
    assert code == 0, line
    released = tmp_path / "rel" / "exam.mp4"
    assert released.read_bytes() == (staged / "exam.unreviewed.mp4").read_bytes()
    assert (tmp_path / "rel" / "exam.release.json").is_file()


def _tamper_video(out: Path, manifest: Path) -> None:
    video = out / "exam.unreviewed.mp4"
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0xFF
    video.write_bytes(bytes(data))


def _tamper_manifest(out: Path, manifest: Path) -> None:
    data = json.loads(manifest.read_text())
    data["reviewer"] = "Somebody Else"
    manifest.write_text(json.dumps(data))


def _unsign(out: Path, manifest: Path) -> None:
    data = json.loads(manifest.read_text())
    del data["signature"]
    manifest.write_text(json.dumps(data))


def _other_key(out: Path, manifest: Path) -> None:
    default_key_file(out, "video").write_text("ab" * 32 + "\n")


@pytest.mark.parametrize(
    ("spoil", "decision", "ranges", "message"),
    [
        (
            _tamper_video,
            "approved",
            [],
            r"exam\.unreviewed\.mp4 is not the approved video \(SHA-256 [0-9a-f]{12}\.\.\., "
            r"approved [0-9a-f]{12}\.\.\.\): it changed after approval",
        ),
        (
            _tamper_manifest,
            "approved",
            [],
            r"signature does not match: the manifest was changed after signing",
        ),
        (_unsign, "approved", [], r"unsigned release manifest"),
        (
            _other_key,
            "approved",
            [],
            r"signed with another key \(key id [0-9a-f]{12}, this key [0-9a-f]{12}\)",
        ),
        (None, "rejected", [], r"rejected by Dr\. A\. Steward at .*: checked every flagged frame"),
        (
            None,
            "approved",
            [{"first": 2, "last": 3, "decision": "rejected", "note": "mosaic too small"}],
            r"frames 2-3 rejected by Dr\. A\. Steward: mosaic too small",
        ),
    ],
)
def test_release_refuses_with_one_line_and_exit_19(
    staged, tmp_path, capsys, spoil, decision, ranges, message
):
    manifest = _decide(staged, decision, ranges)
    if spoil is not None:
        spoil(staged, manifest)
    code, line = _release(capsys, str(manifest), "--to", str(tmp_path / "rel"))
    assert code == 19
    assert re.fullmatch(rf"medswap: error: {re.escape(str(manifest))}: {message}", line), line
    assert not (tmp_path / "rel").exists(), "nothing may be released"


def test_one_refused_manifest_releases_nothing(staged, tmp_path, capsys):
    second = tmp_path / "second"
    shutil.copytree(staged, second)
    good, bad = _decide(staged), _decide(second)
    _tamper_video(second, bad)
    code, line = _release(capsys, str(good), str(bad), "--to", str(tmp_path / "rel"))
    assert code == 19 and "is not the approved video" in line
    assert not (tmp_path / "rel" / "exam.mp4").exists()


def test_a_changed_video_cannot_be_approved_from_an_old_page(staged, capsys):
    reviews = load_review_set(staged)
    video = reviews.videos[0]
    _tamper_video(staged, staged / "x")
    decision = Decision.from_json(
        {"file": video.file, "sha256": video.sha256, "reviewer": "R", "decision": "approved"}
    )
    with pytest.raises(Exception, match="changed after the review page was made"):
        approve(reviews, decision, default_key_file(staged, "video"))


# -- the page --------------------------------------------------------------------------------


def test_the_shared_page_never_holds_an_original_frame(staged, tmp_path):
    page = build_review_page(staged)
    assert page.share and page.path == staged / "review.html"
    assert 'data-kind="original"' not in page.html and 'data-marking="share"' in page.html
    assert "Smith" not in page.html, "the original's name is not on the page"
    assert not re.search(r"(src|href)=\"(https?:)?//", page.html), "no external URL"
    with pytest.raises(ValueError, match="must not hold an original frame"):
        render_page(
            page.reviews,
            page.picks,
            {"exam.unreviewed.mp4": {}},
            {"exam.unreviewed.mp4": {0: b"x"}},
            share=True,
            approve_command="",
        )


def test_a_page_with_originals_says_so_and_stays_out_of_the_output_folder(tmp_path):
    original = portrait_clip(tmp_path / "Smith_John.mp4", n_frames=N, size=160)
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(original, out / "exam.unreviewed.mp4")
    audit = _audit() | {"original": str(original)}
    (out / "exam.unreviewed.json").write_text(json.dumps(_report(audit)))
    with pytest.raises(Exception, match="must not be written inside the output folder"):
        build_review_page(out, originals=True, out=out / "private.html")
    page = build_review_page(out, originals=True)
    assert page.path == tmp_path / "out.review-private.html"
    assert "CONTAINS ORIGINAL, IDENTIFIABLE FACES" in page.html.split("<header", 1)[0]
    assert page.html.count('data-kind="original" hidden') == len(
        page.picks[page.reviews.videos[0].file]
    )


def test_the_server_needs_its_token_and_signs_what_is_posted(staged):
    from medswap.review.server import ReviewServer

    page = build_review_page(staged)
    server = ReviewServer(page, default_key_file(staged, "video"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert urllib.request.urlopen(server.url).read().decode() == page.html
        base = server.url.rsplit("/", 2)[0]
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(base + "/")
        video = page.reviews.videos[0]
        body = json.dumps(
            {"file": video.file, "sha256": video.sha256, "reviewer": "R", "decision": "approved"}
        ).encode()
        request = urllib.request.Request(
            server.url + "decision", body, {"Content-Type": "application/json"}
        )
        answer = json.loads(urllib.request.urlopen(request).read())
        assert answer == {
            "manifest": "exam.release.json",
            "key_id": answer["key_id"],
            "decision": "approved",
            "releasable": True,
        }
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(urllib.request.Request(base + "/x/decision", body))
    finally:
        server.shutdown()
        server.server_close()
    key = load_key(default_key_file(staged, "video"), staged, create=False)
    assert verify_manifest(staged / "exam.release.json", key)["reviewer"] == "R"


def test_deidentify_require_approval_stages_the_output(tmp_path, capsys):
    clip = portrait_clip(tmp_path / "in.mp4", n_frames=8, size=160)
    out = tmp_path / "out"
    out.mkdir()
    code = main(["deidentify", str(clip), "-o", str(out / "exam.mp4"),
                 "--require-approval", "--no-audit"])  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["exam.unreviewed.json", "exam.unreviewed.mp4"]
    assert "awaits approval" in capsys.readouterr().err
    assert load_review_set(out).videos[0].release_name == "exam.mp4"


# -- end to end: a batch of two shared clips in headless Chromium -----------------------------

#: relative path -> (shared clip, first frame, frames). face_then_title's slice holds the frames
#: where the face leaves (bridged, then obscured); hands_in_front's holds a hand on the face.
LAYOUT = {
    "P001/hands/exam.mp4": ("hands_in_front.mp4", 0, 16),
    "P002/title/exam.mp4": ("face_then_title.mov", 64, 20),
}


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("review")
    for rel, (clip, skip, n) in LAYOUT.items():
        src = shared_video(clip)
        info = probe(src)
        frames = [f.image for f in read_frames(src, info, max_frames=skip + n)][skip:]
        (root / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / "in" / rel, iter(frames), info.fps, info.display_size)
    args = ["-q", "batch", str(root / "in"), "-o", str(root / "out"), "--workers", "0"]
    assert main([*args, "--require-approval"]) == 0
    return root / "out"


@pytest.fixture
def browser():
    chromium_path()
    b = Browser()
    yield b
    b.close()


@pytest.mark.shared
def test_review_page_of_a_batch_in_chromium_approve_and_release(batch_out, browser, capsys):
    page = build_review_page(batch_out, overwrite=True)
    reviews = page.reviews
    assert len(reviews.videos) == 2
    assert sum(len(v.flags) for v in reviews.videos) >= 5, "the slices hold flagged frames"
    browser.open(page.path.as_uri())
    assert browser.js("document.body.dataset.marking") == "share"
    for n, video in enumerate(reviews.videos, start=1):
        sel = f"#video-{n}"
        labels = browser.js(
            f"[...document.querySelectorAll('{sel} table.summary th')].map(e => e.textContent)"
        )
        assert labels == ["Privacy audit", "Lineup rank-1", "Frames obscured", "Keypoint fidelity"]
        shown = browser.js(
            f"[...document.querySelectorAll('{sel} figure.still.flagged')]"
            ".map(f => [+f.dataset.frame, f.querySelector('figcaption').textContent])"
        )
        assert [i for i, _ in shown] == sorted(video.flags), "every flagged frame, in order"
        for index, caption in shown:
            assert f"frame {index}" in caption
            assert all(f.text in caption for f in video.flags[index])
        assert browser.js(f"document.querySelectorAll('{sel} button.approve').length") == 1
        assert browser.js(f"document.querySelectorAll('{sel} button.reject').length") == 1
    assert browser.js("document.querySelectorAll('img[data-kind=original]').length") == 0
    # enlarge a frame
    browser.js("document.querySelector('figure.still.flagged').click()")
    assert browser.js("!document.getElementById('lightbox').hidden")

    # served: approve the first video, reject the second, by clicking
    from medswap.review.server import ReviewServer

    server = ReviewServer(page, default_key_file(reviews.root, "batch"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.open(server.url)
        browser.js("document.getElementById('reviewer').value = 'Dr. A. Steward'")
        browser.js("document.querySelector('#video-1 button.approve').click()")
        ok = browser.wait("document.querySelector('#video-1 .result').textContent")
        assert ok.startswith("Approved and signed"), ok
        browser.js("document.querySelector('#video-2 .v-note').value = 'title card unclear'")
        browser.js("document.querySelector('#video-2 button.reject').click()")
        held = browser.wait("document.querySelector('#video-2 .result').textContent")
        assert held.startswith("Held back and signed"), held
    finally:
        server.shutdown()
        server.server_close()
    approved, rejected = (v.manifest_path(reviews.root) for v in reviews.videos)
    key = load_key(default_key_file(reviews.root, "batch"), reviews.root, create=False)
    assert verify_manifest(approved, key)["reviewer"] == "Dr. A. Steward"

    rel = batch_out.parent / "release"
    code, line = _release(capsys, str(batch_out), "--to", str(rel))
    assert code == 0, line
    released = [p.relative_to(rel).as_posix() for p in rel.rglob("*.mp4")]
    assert released == [reviews.videos[0].release_name], "only the approved video"

    # tampering: the rejected manifest turned into an approval, then the approved video changed
    data = json.loads(rejected.read_text())
    data |= {"decision": "approved", "releasable": True}
    rejected.write_text(json.dumps(data))
    code, line = _release(capsys, str(rejected), "--to", str(rel))
    assert (code, line) == (
        19,
        f"medswap: error: {rejected}: signature does not match: the manifest was changed "
        "after signing",
    )
    video = reviews.root / reviews.videos[0].file
    video.write_bytes(video.read_bytes()[:-100])
    code, line = _release(capsys, str(approved), "--to", str(rel), "--overwrite")
    assert code == 19 and f"{video.name} is not the approved video" in line
