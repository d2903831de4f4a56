"""Invariance metrics on synthetic keypoints with known displacements, alignment refusals,
and the plain report for a video with nobody in it."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from medswap.cli import main
from medswap.errors import AlignmentError
from medswap.evaluate.invariance import (
    check_series_aligned,
    compare_series,
    evaluate_series,
    jitter_ratio,
    nme_per_frame,
    normaliser,
    pck,
)
from medswap.evaluate.stats import median_iqr, wilcoxon_paired
from medswap.keypoints.schema import EVAL_GROUPS, LAYOUTS
from medswap.report.html import ReportSection, render_report
from medswap.studies.invariance import evaluate
from medswap.types import KEYPOINT_GROUPS, KeypointSeries
from medswap.video import write_video

RNG = np.random.default_rng(7)


def synthetic(n: int = 20, width: int = 640, height: int = 480) -> KeypointSeries:
    """Keypoints in every group with exact normalisers: inter-ocular 100, shoulders 200,
    palm 50 px."""
    groups = {}
    for name, k in KEYPOINT_GROUPS.items():
        arr = np.zeros((n, k, 3))
        arr[..., 0] = RNG.uniform(100, 500, (n, k))
        arr[..., 1] = RNG.uniform(100, 400, (n, k))
        arr[..., 2] = 1.0
        groups[name] = arr

    def place(group: str, a: int, b: int, dist: float) -> None:
        groups[group][:, a, :2] = (200.0, 200.0)
        groups[group][:, b, :2] = (200.0 + dist, 200.0)

    place("face_dlib68", 36, 45, 100.0)
    place("face_mesh", 33, 263, 100.0)
    place("body", 11, 12, 200.0)
    place("left_hand", 0, 9, 50.0)
    place("right_hand", 0, 9, 50.0)
    return KeypointSeries(
        np.arange(n), np.arange(n) / 25.0, groups, width, height, 25.0, {"video": "synthetic.mp4"}
    )


def shifted(series: KeypointSeries, fractions: dict[str, float]) -> KeypointSeries:
    """Every point of a layout moved by fraction x its normaliser, in a direction at 30 deg."""
    groups = {g: a.copy() for g, a in series.groups.items()}
    norms = {
        "face_dlib68": 100.0,
        "face_mesh": 100.0,
        "body": 200.0,
        "left_hand": 50.0,
        "right_hand": 50.0,
    }
    for g, f in fractions.items():
        d = f * norms[g]
        groups[g][..., 0] += d * math.cos(math.radians(30))
        groups[g][..., 1] += d * math.sin(math.radians(30))
    return KeypointSeries(
        series.frame_index.copy(),
        series.time_s.copy(),
        groups,
        series.width,
        series.height,
        series.fps,
        dict(series.meta),
    )


def test_known_displacements_give_known_nme_and_pck():
    orig = synthetic()
    moved = shifted(
        orig,
        {
            "face_dlib68": 0.03,
            "face_mesh": 0.07,
            "body": 0.12,
            "left_hand": 0.02,
            "right_hand": 0.09,
        },
    )
    res = compare_series(orig, moved)
    expect = {
        "face-dlib68": 0.03,
        "face-mesh": 0.07,
        "body": 0.12,
        "body-facial": 0.12,
        "body-nonfacial": 0.12,
        "left-hand": 0.02,
        "right-hand": 0.09,
    }
    for group, d in expect.items():
        m = res[group].metrics
        assert m["nme_median"] == pytest.approx(d, abs=1e-12)
        assert m["nme_mean"] == pytest.approx(d, abs=1e-12)
        assert m["nme_p95"] == pytest.approx(d, abs=1e-12)
        assert m["pck_0.05"] == (1.0 if d <= 0.05 else 0.0)
        assert m["pck_0.10"] == (1.0 if d <= 0.10 else 0.0)
        assert m["detection_rate"] == 1.0 and m["detection_rate_original"] == 1.0
    # a rigid shift of every frame adds no frame-to-frame jitter
    assert res["face-dlib68"].metrics["jitter_ratio"] == pytest.approx(1.0)


def test_nme_varies_per_frame_and_p95():
    orig = synthetic(n=20)
    groups = {g: a.copy() for g, a in orig.groups.items()}
    per_frame = np.linspace(0.0, 0.19, 20)  # frame i moved by i * 0.01 inter-ocular
    groups["face_dlib68"][..., 0] += per_frame[:, None] * 100.0
    moved = KeypointSeries(orig.frame_index, orig.time_s, groups, 640, 480, 25.0)
    m = compare_series(orig, moved)["face-dlib68"]
    np.testing.assert_allclose(m.nme, per_frame, atol=1e-12)
    assert m.metrics["nme_median"] == pytest.approx(np.median(per_frame))
    assert m.metrics["nme_p95"] == pytest.approx(np.percentile(per_frame, 95))
    # within 0.05: frames 0..5 (0.00..0.05); within 0.10: frames 0..10
    assert m.metrics["pck_0.05"] == pytest.approx(6 / 20)
    assert m.metrics["pck_0.10"] == pytest.approx(11 / 20)


def test_nan_handling_lost_points_are_pck_misses_not_nme():
    orig = synthetic(n=10)
    moved = shifted(orig, {"face_dlib68": 0.02})
    moved.groups["face_dlib68"][:5] = np.nan  # face lost in half the frames
    moved.groups["face_dlib68"][:5, :, 2] = 0.0
    orig.groups["body"][:, 23:25, :2] = np.nan  # hips never seen in the original
    m = compare_series(orig, moved)
    face = m["face-dlib68"].metrics
    assert face["nme_median"] == pytest.approx(0.02)  # only frames where both have the face
    assert m["face-dlib68"].frames_compared == 5
    assert face["pck_0.05"] == pytest.approx(0.5)  # the lost half counts as misses
    assert face["detection_rate"] == pytest.approx(0.5)
    assert face["detection_rate_original"] == 1.0
    body = m["body-nonfacial"].metrics
    assert body["detection_rate_original"] == pytest.approx(20 / 22)
    assert body["nme_median"] == pytest.approx(0.0)


def test_normaliser_falls_back_to_video_median():
    arr = np.full((4, 33, 3), np.nan)
    arr[:, 11, :2] = (0.0, 0.0)
    arr[:, 12, :2] = [(100.0, 0.0), (200.0, 0.0), (np.nan, np.nan), (300.0, 0.0)]
    np.testing.assert_allclose(normaliser(arr, (11, 12)), [100, 200, 200, 300])
    assert np.isnan(normaliser(np.full((3, 33, 3), np.nan), (11, 12))).all()


def test_pure_helpers_on_edge_cases():
    assert np.isnan(nme_per_frame(np.full((2, 3), np.nan))).all()
    assert math.isnan(pck(np.zeros((2, 3)), np.zeros((2, 3), bool), 0.05))
    still = np.zeros((6, 1, 3))
    noisy = still.copy()
    noisy[::2, 0, 0] = 1.0
    base = still.copy()
    base[:, 0, 0] = [0, 0.5, 0, 0.5, 0, 0.5]
    assert jitter_ratio(base, noisy, np.ones(6)) == pytest.approx(2.0)
    assert math.isnan(jitter_ratio(still, noisy, np.ones(6)))  # the original never moves


def test_nothing_detected_gives_nan_not_zero():
    orig = synthetic(n=5)
    for g in orig.groups:
        orig.groups[g][..., :2] = np.nan
    res = evaluate_series(orig, {"swap": shifted(synthetic(n=5), {})})
    assert res.nothing_measured
    metrics = res.methods[0].groups["body"].metrics
    assert math.isnan(metrics["nme_median"]) and math.isnan(metrics["pck_0.05"])
    assert (
        json.loads(json.dumps(res.to_json()))["methods"]["swap"]["groups"]["body"]["nme_median"]
        is None
    )


def test_series_alignment_refusals():
    orig = synthetic(n=10)
    short = KeypointSeries(
        orig.frame_index[:9],
        orig.time_s[:9],
        {g: a[:9] for g, a in orig.groups.items()},
        640,
        480,
        25.0,
    )
    with pytest.raises(
        AlignmentError,
        match=r"have 9 frames but the original synthetic.mp4 "
        r"has 10; videos must align frame by frame",
    ):
        check_series_aligned(orig, short)
    late = shifted(orig, {})
    late.time_s[3] += 0.02
    with pytest.raises(
        AlignmentError,
        match=r"frame 3 is at 0.140 s but in the original "
        r"synthetic.mp4 at 0.120 s",
    ):
        check_series_aligned(orig, late)


def test_stats_median_iqr_and_wilcoxon():
    s = median_iqr([1.0, 2.0, 3.0, 4.0, np.nan])
    assert (s.median, s.q1, s.q3, s.n) == (2.5, 1.75, 3.25, 4)
    # 95 % percentile bootstrap of the median over the 4 videos (2000 resamples, seed 0)
    assert (s.ci_low, s.ci_high) == (1.0, 4.0)
    assert s.format(2) == "2.50 [1.75-3.25]; CI 1.00-4.00"
    assert median_iqr([np.nan]).format() == "n/a"
    t = wilcoxon_paired([0.01] * 8, [0.10, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    assert t.n == 8 and t.p_value == pytest.approx(0.0078125) and t.median_difference < 0
    assert t.ci_low < t.median_difference < t.ci_high < 0
    small = wilcoxon_paired([1, 2, 3], [2, 3, 5])
    assert small.n == 3 and "fewer than 6" in small.note
    assert wilcoxon_paired([np.nan], [1.0]).n == 0


def test_statistics_across_two_videos_are_not_computed():
    two = median_iqr([0.02, 0.04])
    assert two.n == 2 and two.median == pytest.approx(0.03)  # a description, marked with n
    assert math.isnan(two.q1) and math.isnan(two.q3) and math.isnan(two.ci_low)
    assert two.note == "needs at least 3 videos, had 2"
    assert two.format() == "0.030 (IQR, CI: needs at least 3 videos, had 2)"
    assert two.to_json()["q1"] is None and two.to_json()["ci_high"] is None
    t = wilcoxon_paired([0.01, 0.02], [0.03, 0.05])
    assert (t.n, t.note) == (2, "needs at least 3 videos, had 2")
    assert math.isnan(t.p_value) and math.isnan(t.median_difference)


def test_group_table_rows_and_normalisers():
    assert [g.name for g in EVAL_GROUPS] == [
        "face-dlib68",
        "face-mesh",
        "body",
        "body-facial",
        "body-nonfacial",
        "left-hand",
        "right-hand",
    ]
    assert LAYOUTS["face_dlib68"].names[36] == "right_eye_0"
    assert LAYOUTS["left_hand"].names[9] == "middle_finger_mcp"
    assert LAYOUTS["body"].names[11] == "left_shoulder"


def test_report_sections_render_self_contained():
    html = render_report(
        "T",
        [ReportSection("First part", "<p>a</p>"), ReportSection("Second <b>", "<p>b</p>")],
        ["all good"],
    )
    assert 'id="first-part"' in html and "Second &lt;b&gt;" in html
    assert "all good" in html and "http://" not in html and "https://" not in html


# -- on real (synthetic) video files -------------------------------------------------------------


def _clip(path, n, size=(64, 48), fps=25):
    frames = (np.full((size[1], size[0], 3), 90 + i, np.uint8) for i in range(n))
    return write_video(path, frames, Fraction(fps), size)


def test_evaluate_refuses_misaligned_videos(tmp_path):
    orig = _clip(tmp_path / "orig.mp4", 10)
    short = _clip(tmp_path / "short.mp4", 8)
    other = _clip(tmp_path / "other.mp4", 10, size=(80, 48))
    with pytest.raises(AlignmentError) as err:
        evaluate(orig, [short], tmp_path / "ev")
    assert str(err.value) == (
        f"{short}: has 8 frames but the original orig.mp4 has 10; videos must align frame by frame"
    )
    with pytest.raises(AlignmentError) as err:
        evaluate(orig, [other], tmp_path / "ev")
    assert str(err.value) == (
        f"{other}: is 80x48 but the original orig.mp4 is 64x48; videos must align frame by frame"
    )
    slow = _clip(tmp_path / "slow.mp4", 10, fps=20)
    with pytest.raises(
        AlignmentError,
        match=r"frame 1 is at 0\.050 s but in the original "
        r"orig\.mp4 at 0\.040 s",
    ):
        evaluate(orig, [slow], tmp_path / "ev")
    assert (
        main(
            [
                "evaluate",
                "--original",
                str(orig),
                "--deidentified",
                str(short),
                "-o",
                str(tmp_path / "ev"),
            ]
        )
        == AlignmentError.exit_code
    )


def test_evaluate_failure_leaves_no_folder_behind(tmp_path, capsys):
    orig = _clip(tmp_path / "orig.mp4", 10)
    short = _clip(tmp_path / "short.mp4", 8)
    out = tmp_path / "new" / "ev"
    argv = ["evaluate", "--original", str(orig), "--deidentified", str(short), "-o", str(out)]
    assert main(argv) == AlignmentError.exit_code
    assert not (tmp_path / "new").exists()  # not even the parent it would have created
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orig.mp4", "short.mp4"]


def test_evaluate_with_keypoints_of_another_video_exits_17(tmp_path, capsys):
    from medswap.keypoints import save_keypoints
    from medswap.outputs import sha256_file

    orig = _clip(tmp_path / "orig.mp4", 6)
    copy = _clip(tmp_path / "copy.mp4", 6)
    other = _clip(tmp_path / "other.mp4", 6, size=(80, 48))
    s = synthetic(6)
    s.meta.update(video="other.mp4", video_sha256=sha256_file(other))
    kp = save_keypoints(s, tmp_path / "other.csv")
    out = tmp_path / "ev"
    argv = ["evaluate", "--original", str(orig), "--deidentified", str(copy), "-o", str(out)]
    capsys.readouterr()
    assert main([*argv, "--original-keypoints", str(kp)]) == 17
    assert capsys.readouterr().err == (
        f"medswap: error: {kp}: keypoints were extracted from another video (sha256 "
        f"{sha256_file(other)[:12]}...), not orig.mp4 (sha256 {sha256_file(orig)[:12]}...)\n"
    )
    assert not out.exists()


def test_no_person_video_reports_nothing_measured(tmp_path):
    clip = _clip(tmp_path / "empty_scene.mp4", 6, size=(96, 64))
    copy = _clip(tmp_path / "copy.mp4", 6, size=(96, 64))
    res = evaluate(clip, [copy], tmp_path / "ev")
    assert res.nothing_measured
    html = (tmp_path / "ev" / "report.html").read_text()
    assert (
        "Nothing was measured: no face, body or hand keypoint was found in the original "
        "video empty_scene.mp4" in html
    )
    doc = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert doc["nothing_measured"] is True
    assert res.out_dir == tmp_path / "ev"
    assert not [p.name for p in tmp_path.iterdir() if "medswap-partial" in p.name]
    assert doc["methods"]["copy"]["groups"]["face-dlib68"]["detection_rate_original"] == 0.0
