"""End to end: every shared face clip swapped, checked by models the swap does not use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FACE_CLIPS, VIDEOS, needs_shared, shared_video
from media import portrait_clip, two_people_clip, walk_in_clip, webm_clip
from quality import measure, motion

from medswap import video
from medswap.donor_choice import DonorChooser
from medswap.evaluate.privacy import audit
from medswap.pipeline import deidentify
from medswap.render import Swap
from medswap.swap.donors import ENOUGH_MARGIN, FALLBACK_DONORS
from medswap.swap.engine import MeshSwapper
from medswap.types import FaceStatus, FaceTrackState


@pytest.fixture(scope="session")
def swapped(tmp_path_factory):
    """Every shared face clip de-identified once with the defaults (computed lazily)."""
    out_dir = tmp_path_factory.mktemp("swapped")
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            src = shared_video(name)
            out = out_dir / (src.stem + ".mp4")
            cache[name] = (deidentify(src, out, report=out.with_suffix(".json")), out)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def quality(swapped):
    """dlib / SFace measurements of each swapped clip against its original (cached)."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            _, out = swapped(name)
            cache[name] = measure(VIDEOS / name, out, stride=3)
        return cache[name]

    return get


def _with_gaps(cases: list, gaps: dict) -> list:
    """``cases`` (parameter values or tuples) with the known gaps as strict xfails.

    Strict: the output is the same bytes on every run (medswap.video.X264_PARAMS), so a gap
    that closes fails its test and the README must say so.
    """
    return [
        pytest.param(
            *(c if isinstance(c, tuple) else (c,)),
            marks=pytest.mark.xfail(reason=gaps[c], strict=True),
        )
        if c in gaps
        else c
        for c in cases
    ]


@needs_shared
@pytest.mark.parametrize("name", FACE_CLIPS)
def test_swap_is_frame_exact_and_never_passes_a_face_through(swapped, name):
    src = VIDEOS / name
    result, out = swapped(name)
    info, back = video.probe(src), video.probe(out)
    a = [t * info.time_base for t in video.read_timestamps(src)]
    b = [t * back.time_base for t in video.read_timestamps(out)]
    assert len(b) == len(a) == result.totals.frames
    assert a == b
    assert (back.width, back.height, back.rotation) == (info.width, info.height, info.rotation)
    for frame in result.frames:
        assert all(f.status in (FaceStatus.SWAPPED, FaceStatus.OBSCURED) for f in frame.faces)


@needs_shared
@pytest.mark.parametrize("name", FACE_CLIPS)
def test_swap_keeps_independent_landmarks(quality, name):
    """dlib's 68 points on the swap move as the patient's do: motion, not resting shape.

    The swap draws the donor's resting face shape (issue 19), so dlib's points sit where the
    donor's eyes, nose, mouth and jaw are, not where the patient's were: the absolute error
    (0.032-0.046 inter-ocular when the patient's geometry was kept) is no longer the measure.
    What a clinician needs is the motion: each point's displacement from the clip's own
    neutral position, original against output.
    """
    q = quality(name)
    assert q.dlib_found_original > 0
    assert q.detection_ratio >= 0.98, f"dlib found the face in {q.detection_ratio:.1%}"
    m = motion(q.points_original, q.points_output)
    # 0.021-0.038 and 0.88-0.997 on the other clips (benchmarks/lineup.py, README "Lineup")
    assert m["disp_nme"] <= 0.04, f"median displacement NME {m['disp_nme']:.3f}"
    assert m["corr"] >= 0.85, f"trajectory correlation {m['corr']:.3f}"


@needs_shared
@pytest.mark.parametrize("name", FACE_CLIPS)
def test_swap_hides_identity_from_both_recognisers(quality, name):
    q = quality(name)
    assert np.mean(q.dlib_distance >= 0.6) >= 0.99, f"dlib distances {q.dlib_distance.min()}"
    assert np.mean(q.sface_cosine < 0.363) >= 0.99, f"SFace cosines {q.sface_cosine.max()}"


@needs_shared
@pytest.mark.parametrize("method", ["blur", "pixelate"])
def test_baselines_lose_the_independent_landmarks(tmp_path, method):
    """The paper's finding: traditional methods destroy what the swap keeps."""
    src = shared_video("speech_b.mp4")
    out = tmp_path / f"{method}.mp4"
    deidentify(src, out, method=method, max_frames=30)
    q = measure(src, out, stride=3, identity=False)
    lost = q.detection_ratio < 0.5
    moved = len(q.nme) > 0 and np.median(q.nme) > 0.15
    assert lost or moved, (q.detection_ratio, q.nme)


@needs_shared
def test_a_hand_imagined_on_the_face_does_not_let_the_face_through(tmp_path):
    """expression_a.mp4 has no hands, but MediaPipe Hands finds one on her face at frames
    60-61 (handedness 0.95). Drawn in front, it let her nose and mouth through the swap:
    SFace matched that frame to her (cosine 0.363). A "hand" wholly inside the face outline
    is swapped over now (medswap.faces.mesh.occluding_hands)."""
    src = shared_video("expression_a.mp4")
    out = tmp_path / "a.mp4"
    deidentify(src, out, max_frames=63)
    q = measure(src, out, stride=1)
    assert len(q.sface_cosine) == 63
    assert q.sface_cosine[55:63].max() < 0.3, q.sface_cosine[55:63].round(3)


@needs_shared
def test_identity_is_judged_on_the_patients_face_not_a_larger_false_face(tmp_path):
    """hand_open_close.mp4 frame 25: HOG finds a "face" larger than hers on her chest and
    raised hand (score 0.16), the same pixels in both videos. Judged on the largest face, that
    frame read dlib distance 0.08, a re-identification that is not one; on her face it is 0.7.
    """
    src = shared_video("hand_open_close.mp4")
    out = tmp_path / "hoc.mp4"
    deidentify(src, out, max_frames=27)
    q = measure(src, out, stride=1)
    assert q.dlib_found_original == q.dlib_found_output == 27
    assert q.dlib_distance.min() >= 0.6, q.dlib_distance.round(2)


@needs_shared
def test_same_input_gives_the_same_output_bytes(tmp_path):
    """De-identifying a clip twice gives the same file content, packet for packet.

    hand_open_close.mp4 came out different on about every other run (35-58 packets of 40-58)
    until x264's macroblock tree was turned off (``medswap.video.X264_PARAMS``); with it on,
    this test failed in one of two runs.
    """
    import av

    src = shared_video("hand_open_close.mp4")
    runs = []
    for k in range(3):
        deidentify(src, tmp_path / f"{k}.mp4")
        with av.open(str(tmp_path / f"{k}.mp4")) as c:
            runs.append([bytes(p) for p in c.demux(c.streams.video[0]) if p.size])
    assert len(runs[0]) == 58
    assert runs[0] == runs[1] == runs[2]


@needs_shared
def test_no_face_video_is_a_valid_result(tmp_path):
    src = shared_video("no_face.mp4")
    result = deidentify(src, tmp_path / "out.mp4")
    assert not result.face_found
    assert result.totals.frames == video.count_frames(src) == 95
    assert result.totals.frames_swapped == 0
    # The safety-net detector takes skin-coloured title letters for faces in a few frames
    # (scores 0.60-0.69): fail closed, those regions are obscured and flagged, never swapped.
    flagged = [f for fr in result.frames for f in fr.faces]
    assert all(f.status == FaceStatus.OBSCURED for f in flagged)
    assert all("detector" in f.reason or "bridged" in f.reason for f in flagged)
    assert result.totals.frames_no_face >= 70


@needs_shared
def test_scene_cut_to_a_title_stops_swapping_and_bridging(swapped):
    """The person's track ends at the cut (frame 72) within the bridging gap; on the title card
    the safety net's rare possible faces (skin-coloured letters) are obscured, never swapped."""
    result, _ = swapped("face_then_title.mov")
    statuses = [f.status for f in result.frames]
    assert statuses[0] == "swapped"
    after = result.frames[72 + 9 :]  # the cut, plus the longest bridged gap
    assert all(f.status != "swapped" for f in after)
    assert all("detector" in x.reason or "bridged" in x.reason for f in after for x in f.faces)
    assert sum(f.status == "no_face" for f in after) >= 60


def test_someone_walking_in_is_caught(tmp_path):
    src = walk_in_clip(tmp_path / "walk.mp4", n_empty=8, n_face=12)
    result = deidentify(src, tmp_path / "out.mp4", donors=["grace_hopper"])
    statuses = [f.status for f in result.frames]
    assert statuses[:8] == ["no_face"] * 8
    assert statuses[9:] == ["swapped"] * 11


def test_two_people_get_two_tracks_and_consistent_donors(tmp_path):
    src = two_people_clip(tmp_path / "two.mp4", n_frames=8)
    kwargs = {"donors": ["astronaut", "grace_hopper", "average"], "donor_seed": 7}
    first = deidentify(src, tmp_path / "a.mp4", **kwargs)
    again = deidentify(src, tmp_path / "b.mp4", **kwargs)
    for frame in first.frames:
        assert sorted(f.track_id for f in frame.faces if f.status == FaceStatus.SWAPPED) == [0, 1]
    donors = {(f.track_id, f.donor) for fr in first.frames for f in fr.faces}
    assert len(donors) == 2, "each track keeps one donor for the whole clip"
    assert donors == {(f.track_id, f.donor) for fr in again.frames for f in fr.faces}


def test_report_lists_every_frame_and_face(tmp_path):
    src = portrait_clip(tmp_path / "p.mp4", n_frames=10)
    deidentify(src, tmp_path / "out.mp4", donors=["grace_hopper"], report=tmp_path / "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["tool"] == "medswap" and report["version"]
    assert len(report["frames"]) == report["totals"]["frames"] == 10
    face = report["frames"][3]["faces"][0]
    assert set(face) >= {"track_id", "box", "score", "status", "reason"}
    assert face["status"] == "swapped"
    assert all(len(m["sha256"]) == 64 for m in report["models"].values())
    assert report["output"] == "out.mp4"


def test_report_names_neither_the_input_nor_any_path(tmp_path):
    """A file named after the patient, or the folders a hospital keeps, stay out of the report."""
    src = portrait_clip(tmp_path / "Jane_Doe_1957-03-02.mp4", n_frames=4)
    out_dir = tmp_path / "released"
    out_dir.mkdir()
    report_path = out_dir / "report.json"
    deidentify(src, out_dir / "out.mp4", report=report_path, audit=True)
    text = report_path.read_text()
    assert "Jane_Doe" not in text and "1957" not in text
    assert str(tmp_path) not in text and "site-packages" not in text


def test_faces_that_cannot_be_swapped_are_obscured_not_passed_through():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (200, 200, 3), np.uint8)
    for source in ("bridged", "detector"):
        frame = image.copy()
        state = FaceTrackState(3, np.array([60, 60, 140, 150]), 0.0, None, source)
        done = Swap(MeshSwapper(), DonorChooser([]).donor).render(frame, state, [])
        assert done.status == FaceStatus.OBSCURED and done.reason
        inside = frame[80:130, 80:120].astype(int) - image[80:130, 80:120]
        assert np.abs(inside).mean() > 20, "the face region must be changed"


@needs_shared
def test_audio_is_dropped_by_default_and_kept_in_sync_on_request(tmp_path):
    import av

    src = shared_video("webcam_single.mp4")
    dropped = deidentify(src, tmp_path / "drop.mp4", method="blur")
    kept = deidentify(src, tmp_path / "keep.mp4", method="blur", audio="keep")
    assert not video.probe(dropped.output).has_audio
    with av.open(str(src)) as a, av.open(str(kept.output)) as b:
        pa = [(p.pts, p.size) for p in a.demux(a.streams.audio[0]) if p.dts is not None]
        pb = [(p.pts, p.size) for p in b.demux(b.streams.audio[0]) if p.dts is not None]
        assert pa == pb and a.streams.audio[0].time_base == b.streams.audio[0].time_base


@pytest.fixture(scope="session")
def mesh_series():
    """Hands and face-mesh keypoints of a video (tests/quick_keypoints.py), cached per path."""
    from quick_keypoints import quick_series

    cache: dict = {}

    def get(path):
        if path not in cache:
            cache[path] = quick_series(path, dlib68=False)
        return cache[path]

    return get


#: Every shared clip whose original has blinks (face mesh, the blink measure): 16 in all.
BLINK_CLIPS = [
    "speech_a.mp4",
    "speech_c.mp4",
    "hands_in_front.mp4",
    "webcam_single.mp4",
    "face_then_title.mov",
    "expression_a.mp4",
    "expression_b.mp4",
]

#: Blinks the unaudited default swap (the API without ``audit``: grace_hopper) does not keep
#: (README "Blinks on every clip, by donor"), with what was measured: her painted-shut eye
#: reads 0.40-0.54 of her open eye to the face mesh (her open eye is narrow, and her squeezed
#: open eye reads fully open), so a blink shows only where the shut texture is faded in all the
#: way; astronaut, the audited default's first donor, keeps all 16.
BLINK_GAPS = {
    "speech_c.mp4": "5 of its 6 blinks are lost (0.50 s is kept); the swap's closure peaks "
    "at 0.3-0.58 against the blink line of 0.5",
    "hands_in_front.mp4": "2 of its 4 blinks are lost (5.89 and 8.77 s)",
    "face_then_title.mov": "its one blink (0.91 s) is lost",
    "webcam_single.mp4": "its one blink (0.90 s) is lost since the context ring ends at the chin "
    "(speech_a's, lost before, is kept): behind this donor closures read near the blink line",
    "expression_b.mp4": "the child's one blink (6.10 s, lids at about 0.4 of open) is not read "
    "on the swap: the swap's closure 0.46 against the blink line of 0.5",
}


def _blinks_lost(original: Path, swapped_video: Path, mesh_series) -> tuple[list, list, list]:
    """The blinks (s) of the original and of the swap, and those of the original's with no
    blink of the swap within 0.15 s."""
    from medswap.measures import blinks

    before = blinks(mesh_series(original)).values["blink_times_s"]
    after = blinks(mesh_series(swapped_video)).values["blink_times_s"]
    return before, after, [t for t in before if not any(abs(t - u) <= 0.15 for u in after)]


@needs_shared
@pytest.mark.parametrize("name", _with_gaps(BLINK_CLIPS, BLINK_GAPS))
def test_swap_keeps_every_blink_of_the_original(swapped, mesh_series, name):
    """Each blink of the original is a blink of the swapped face too, at the same time.

    Read by the blink measure on the face mesh of both videos. Before the shut-eye texture
    (medswap.swap.eyes) the swap lost all three blinks of the expression clips.
    """
    _, out = swapped(name)
    before, _, missed = _blinks_lost(VIDEOS / name, out, mesh_series)
    assert before, "the original has blinks to keep"
    assert not missed, f"blinks at {missed} s of {before} lost"


@needs_shared
@pytest.mark.parametrize("name", ["speech_c.mp4", "hands_in_front.mp4"])
def test_the_audited_default_keeps_every_blink_behind_a_donor_far_enough(
    tmp_path, mesh_series, name
):
    """The command line's default run (audited, no ``--donor``) on the two clips with the most
    blinks (10), which the unaudited default donor mostly loses (``BLINK_GAPS``): the run keeps
    its first donor, astronaut, whose painted-shut eye the face mesh reads at 0.13 of her open
    eye, because she is far enough from these patients; every blink is kept, none is added."""
    out = tmp_path / "default.mp4"
    result = deidentify(shared_video(name), out, audit=True)
    first = FALLBACK_DONORS[0]
    assert result.donor_retries == [] and result.gate["donor_margin"][first] >= ENOUGH_MARGIN
    assert {face.donor for f in result.frames for face in f.faces} == {first}
    before, after, missed = _blinks_lost(VIDEOS / name, out, mesh_series)
    assert len(before) >= 4, "the original has blinks to keep"
    assert not missed, f"blinks at {missed} s of {before} lost behind {first}"
    assert len(after) == len(before)


#: Face measures whose swap-to-original difference is over 10% on a clip, with what was
#: measured (benchmarks/measures_clips.py --swap). Known gaps, not hidden.
FACE_MEASURE_GAPS = {
    ("expression_a.mp4", "motion_energy_iod2_per_s2"): "+16% (+33% while the default donor "
    "wore her glasses' top rim): the swap moves more than the patient",
    ("expression_b.mp4", "mouth_open_range_norm"): "+10.1% (0.2466 -> 0.2715; +3.3% with the "
    "rim): the donor's mesh without the rim is 1.6% narrower between the eyes, the measure's "
    "unit, which explains only part of it",
}


@needs_shared
@pytest.mark.parametrize(
    ("name", "key"),
    _with_gaps(
        [
            (n, k)
            for n in ("expression_a.mp4", "expression_b.mp4", "expression_c.mp4")
            for k in ("mouth_open_range_norm", "motion_energy_iod2_per_s2")
        ],
        FACE_MEASURE_GAPS,
    ),
)
def test_swap_keeps_mouth_opening_and_facial_motion(swapped, mesh_series, name, key):
    """The swapped face opens its mouth and moves as much as the patient's, within 10%.

    Read on the face mesh of both videos. Until the shape offset moved the mouth as a whole
    and the tracker smoothed only the head's pose strongly, the swap read 14-27% smaller
    mouth openings and up to 51% less facial motion on these clips.
    """
    from medswap.measures.face import motion, mouth

    measure_of = mouth if key.startswith("mouth") else motion
    _, out = swapped(name)
    before = measure_of(mesh_series(VIDEOS / name)).values[key]
    after = measure_of(mesh_series(out)).values[key]
    assert after == pytest.approx(before, rel=0.10), f"{key}: {before:.4f} -> {after:.4f}"


@pytest.fixture(scope="session")
def expression_ranges():
    """Blendshape ranges (Tasks face landmarker, which the swap does not use), per path."""
    from medswap.keypoints.blendshapes import blendshape_series
    from medswap.measures.face import blendshape_ranges

    cache: dict = {}

    def get(path):
        if path not in cache:
            cache[path] = blendshape_ranges(blendshape_series(path)).values
        return cache[path]

    return get


#: Expression ranges the default swap does not keep (benchmarks/blendshapes_clips.py).
EXPRESSION_GAPS = {
    ("expression_b.mp4", "browInnerUp"): "0.87 -> 0.63 (0.14 while the top rim of Grace "
    "Hopper's glasses lay on her brows): a warped portrait has none of the skin cues of a "
    "raised brow",
    ("expression_b.mp4", "jawOpen"): "0.42 -> 0.35 since the swap draws the donor's resting "
    "shape, jaw included (README 'Lineup')",
}


@needs_shared
@pytest.mark.parametrize(
    ("name", "unit"),
    _with_gaps(
        [
            ("expression_a.mp4", "jawOpen"),
            ("expression_b.mp4", "jawOpen"),
            ("expression_b.mp4", "browInnerUp"),
        ],
        EXPRESSION_GAPS,
    ),
)
def test_swap_keeps_expression_ranges(swapped, expression_ranges, name, unit):
    """An independent expression model reads the same range of the unit on the swap.

    Within 0.05 of the 0..1 score (or 5%), as the agreement table judges blendshape ranges.
    The original must show the expression at all (range over 0.3), or there is nothing to keep.
    """
    _, out = swapped(name)
    before = expression_ranges(VIDEOS / name)[f"{unit}_range"]
    after = expression_ranges(out)[f"{unit}_range"]
    assert before > 0.3, f"{name} shows little {unit} ({before:.2f})"
    assert abs(after - before) <= max(0.05, 0.05 * before), f"{unit}: {before:.2f} -> {after:.2f}"


@pytest.mark.parametrize("suffix", [".webm", ".mkv"])
def test_a_matroska_input_is_audited_like_any_other(tmp_path, suffix):
    """Its header has no frame count; the audit once crashed enrolling from its frames."""
    src = webm_clip(tmp_path / f"patient{suffix}", n_frames=9)
    assert video.probe(src).n_frames == 0
    result = deidentify(src, tmp_path / "out.mp4", audit=True)
    assert result.audit is not None and result.audit.frames == 9
    # The in-stream audit enrols from the frames as they pass (every 5th at first), whatever
    # the header says; the after-the-fact audit spreads its enrolment over the counted frames.
    assert result.audit.enrolment["frames"] == [0, 5]
    again = audit(src, tmp_path / "out.mp4", stride=3)
    assert again.safe and again.enrolment["frames"] == [0, 3, 6]
