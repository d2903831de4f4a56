"""Motion-based face utility: displacement from each face's own neutral, correlation, events.

Synthetic dlib 68 faces with a known motion (three blinks, three mouth openings, a slow brow
raise) under a moving head; the de-identified copy is the same motion on another resting
shape, damped, or with a blink taken out. One test runs on a real shared clip.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from conftest import shared_video

from medswap.evaluate.invariance import compare_group, evaluate_series
from medswap.evaluate.motion import (
    DLIB68_MOTION,
    compare_displacements,
    compare_motion,
    head_frame,
    readers,
)
from medswap.evaluate.motion_events import match_events
from medswap.faces.mesh import DLIB68_ON_MESH
from medswap.keypoints.schema import EvalGroup
from medswap.report.motion import motion_verdict
from medswap.report.sections import evaluation_sections, evaluation_verdict
from medswap.studies.invariance import write_tables
from medswap.types import KeypointSeries

FPS = 30.0
N = 150  # 5 s
BLINKS_S = (0.8, 2.4, 3.6)
MOUTH_S = (1.2, 2.0, 3.2)


def template() -> np.ndarray:
    """A plausible resting dlib 68 face, inter-ocular distance (36-45) 1.2, centred."""
    p = np.zeros((68, 2))
    th = np.linspace(0, np.pi, 17)
    p[0:17] = np.column_stack([-0.9 * np.cos(th), 0.1 + 0.8 * np.sin(th)])  # jaw, ear to ear
    p[17:22] = np.column_stack([np.linspace(-0.75, -0.15, 5), [-0.42, -0.47, -0.48, -0.47, -0.44]])
    p[22:27] = p[17:22][::-1] * [-1, 1]
    p[27:31] = np.column_stack([np.zeros(4), np.linspace(-0.25, 0.15, 4)])
    p[31:36] = np.column_stack([np.linspace(-0.15, 0.15, 5), [0.22, 0.25, 0.26, 0.25, 0.22]])
    eye = np.array([[-0.6, -0.2], [-0.5, -0.26], [-0.4, -0.26], [-0.3, -0.2], [-0.4, -0.14]])
    p[36:42] = np.vstack([eye, [[-0.5, -0.14]]])
    p[42:48] = p[[39, 38, 37, 36, 41, 40]] * [-1, 1]
    th = np.linspace(np.pi, -np.pi, 13)[:-1]  # outer lips from the right corner, over the top
    p[48:60] = np.column_stack([0.35 * np.cos(th), 0.5 - 0.12 * np.sin(th)])
    upper = [[-0.25, 0.5], [-0.12, 0.47], [0, 0.47], [0.12, 0.47]]  # 60 (corner) to 63
    lower = [[0.25, 0.5], [0.12, 0.53], [0, 0.53], [-0.12, 0.53]]  # 64 (corner) to 67
    p[60:68] = [*upper, *lower]
    return p


def bumps(t: np.ndarray, centres, sigma: float) -> np.ndarray:
    return sum(np.exp(-0.5 * ((t - c) / sigma) ** 2) for c in centres)


def motion(t: np.ndarray, blinks=BLINKS_S, gain: float = 1.0) -> np.ndarray:
    """(N, 68, 2) the face's own deformation: blinks, mouth openings and a slow brow raise."""
    d = np.zeros((len(t), 68, 2))
    blink = bumps(t, blinks, 0.05) * 0.11  # upper lids down to 0.01 above the lower ones
    for i in (37, 38, 43, 44):
        d[:, i, 1] = blink
    mouth = bumps(t, MOUTH_S, 0.1) * 0.15
    for i, share in ((65, 1), (66, 1), (67, 1), (55, 1), (56, 1), (57, 1), (58, 1), (59, 1)):
        d[:, i, 1] = mouth * share
    for i in range(5, 12):
        d[:, i, 1] = mouth * 0.8
    d[:, 17:27, 1] = -0.04 * np.sin(2 * np.pi * 0.3 * t)[:, None]
    return gain * d


def head_pose(t: np.ndarray, phase: float = 0.0) -> tuple[np.ndarray, ...]:
    """Per-frame scale (pixels per unit), rotation (rad) and translation of a moving head."""
    scale = 100 + 15 * np.sin(2 * np.pi * 0.2 * t + phase)
    angle = 0.15 * np.sin(2 * np.pi * 0.35 * t + phase)
    shift = np.column_stack(
        [320 + 40 * np.sin(2 * np.pi * 0.25 * t + phase), 240 + 20 * np.cos(2 * np.pi * 0.4 * t)]
    )
    return scale, angle, shift


def series(
    face: np.ndarray, d: np.ndarray, seed: int, phase: float = 0.0, noise: float = 0.002
) -> KeypointSeries:
    """A KeypointSeries of ``face`` + ``d`` under a moving head, with landmark jitter."""
    t = np.arange(N) / FPS
    rng = np.random.default_rng(seed)
    local = face[None] + d + rng.normal(0, noise, d.shape)
    scale, angle, shift = head_pose(t, phase)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (N, 2, 2)
    xy = scale[:, None, None] * np.einsum("nij,nkj->nki", rot, local) + shift[:, None]
    dlib = np.concatenate([xy, np.ones((N, 68, 1))], axis=2)
    nan = {"face_mesh": 478, "body": 33, "left_hand": 21, "right_hand": 21}
    groups = {"face_dlib68": dlib, **{g: np.full((N, k, 3), np.nan) for g, k in nan.items()}}
    return KeypointSeries(np.arange(N), t, groups, 640, 480, FPS, {"video": "synthetic"})


def donor_face() -> np.ndarray:
    """Another resting shape, same inter-ocular distance: wider mouth and jaw, eyes apart."""
    p = template()
    p[0:17] *= [1.15, 1.1]
    p[48:68, 0] *= 1.25
    p[48:68, 1] += 0.06
    p[27:36, 1] += 0.04
    p[17:27, 1] -= 0.05
    return p


T = np.arange(N) / FPS


@pytest.fixture(scope="module")
def original() -> KeypointSeries:
    return series(template(), motion(T), seed=1)


def dlib(result):
    return result.groups["face-dlib68"]


def test_another_resting_shape_with_the_same_motion_keeps_every_motion_figure(original):
    copy = series(donor_face(), motion(T), seed=2)
    result = compare_motion(original, copy)
    g = dlib(result)
    absolute = compare_group(
        original.groups["face_dlib68"], copy.groups["face_dlib68"], EvalGroup("x", "face_dlib68")
    )
    assert absolute.metrics["nme_median"] > 0.05  # the resting shape differs a lot
    assert g.nme_median < 0.01  # its motion does not
    assert g.correlation_median > 0.98 and g.correlation_expressive_median > 0.98
    assert g.amplitude_ratio_expressive_median == pytest.approx(1.0, abs=0.05)
    assert g.points_moving >= 20  # lids, brows, lower lip, chin; the static points are left out
    assert (result.blinks.n_original, result.blinks.matched) == (3, 3)
    assert (result.mouth_peaks.n_original, result.mouth_peaks.matched) == (3, 3)
    assert result.blinks.timing_error_ms_median < 20


def test_motion_damped_by_half_correlates_but_has_half_the_amplitude(original):
    g = dlib(compare_motion(original, series(template(), motion(T, gain=0.5), seed=2)))
    faithful = dlib(compare_motion(original, series(template(), motion(T), seed=2)))
    assert g.correlation_expressive_median > 0.98
    assert g.amplitude_ratio_expressive_median == pytest.approx(0.5, abs=0.05)
    assert g.amplitude_ratio_median == pytest.approx(0.5, abs=0.05)
    # half of each blink and opening is missing: jitter alone gives a third of this
    assert g.nme_p95 > 0.01 and g.nme_p95 > 3 * faithful.nme_p95


def test_a_blink_removed_from_the_copy_leaves_one_original_blink_unmatched(original):
    copy = series(template(), motion(T, blinks=(BLINKS_S[0], BLINKS_S[2])), seed=2)
    ev = compare_motion(original, copy).blinks
    assert (ev.n_original, ev.n_deidentified, ev.matched) == (3, 2, 2)
    matched = {i for i, _ in ev.pairs}
    assert [round(float(ev.original_s[i]), 1) for i in range(3) if i not in matched] == [2.3]


def test_the_head_pose_does_not_change_the_displacement_figures(original):
    copy = series(donor_face(), motion(T, gain=0.7), seed=2)
    moved = series(template(), motion(T), seed=1, phase=1.3)  # same face, another head path
    a, b = dlib(compare_motion(original, copy)), dlib(compare_motion(moved, copy))
    for name, value in a.figures().items():
        assert b.figures()[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


def test_a_face_lost_in_the_copy_gives_nan_and_the_reason_not_zeros(original):
    copy = series(template(), motion(T), seed=2)
    copy.groups["face_dlib68"][:] = np.nan
    result = compare_motion(original, copy)
    g = dlib(result)
    assert math.isnan(g.nme_median) and math.isnan(g.correlation_median)
    assert "de-identified" in g.reason and g.frames_compared == 0
    assert result.blinks.matched is None and result.blinks.n_original == 3
    assert "de-identified" in result.blinks.reason
    assert "original" in result.groups["face-mesh"].reason  # no mesh in these series at all
    assert result.blinks_mesh.matched is None and "original" in result.blinks_mesh.reason


def test_the_neutral_is_the_resting_shape_not_the_blinks_or_openings():
    face = template()
    xy = series(face, motion(T), seed=1, noise=0.0).groups["face_dlib68"]
    head = head_frame(xy, DLIB68_MOTION)
    expected = (face - (face[36] + face[45]) / 2) / 1.2  # eye line level, IOD 1
    centre = head.neutral[[36, 45]].mean(axis=0)
    # brows (17-26) follow a slow sine, raised or lowered most of the time: left out
    resting = [*range(17), *range(27, 68)]
    assert np.abs(head.neutral - centre - expected)[resting].max() < 1e-3


def test_events_pair_one_to_one_within_the_tolerance():
    assert match_events(np.array([1.0, 1.05, 3.0]), np.array([1.04, 2.0, 3.2])) == ((1, 0),)
    assert match_events(np.array([]), np.array([1.0])) == ()


def test_a_point_that_does_not_move_has_no_correlation(original):
    copy = series(template(), motion(T), seed=2)
    heads = [head_frame(s.groups["face_dlib68"], DLIB68_MOTION) for s in (original, copy)]
    g = compare_displacements(heads[0], heads[1], DLIB68_MOTION, FPS)
    assert math.isnan(g.correlation[30])  # nose tip: jitter only
    assert g.correlation[66] > 0.99  # lower lip


def test_evaluate_reports_motion_in_json_with_null_for_what_is_absent(original):
    copy = series(donor_face(), motion(T), seed=2)
    result = evaluate_series(original, {"swap": copy})
    doc = result.to_json()
    motion_doc = doc["methods"]["swap"]["motion"]
    assert motion_doc["groups"]["face-dlib68"]["displacement_nme_median"] < 0.01
    assert motion_doc["groups"]["face-mesh"]["displacement_nme_median"] is None
    assert motion_doc["groups"]["face-mesh"]["reason"]
    assert motion_doc["events"]["blink_onsets"]["matched"] == 3
    assert "neutral" in doc["motion_definitions"]


def test_tables_and_report_show_motion_and_say_why_a_group_is_missing(original, tmp_path):
    copy = series(template(), motion(T, blinks=(BLINKS_S[0], BLINKS_S[2])), seed=2)
    result = evaluate_series(original, {"swap": copy})
    files = write_tables(result, tmp_path, original)
    assert {"motion", "motion_events", "motion_points"} <= set(files)
    rows = (tmp_path / "motion.csv").read_text().splitlines()
    assert "swap,blink_onsets,matched,2," in rows
    mesh_nme = next(r for r in rows if r.startswith("swap,face-mesh,displacement_nme_median"))
    assert mesh_nme.split(",")[3] == "" and "fewer than" in mesh_nme  # no zero, a reason
    events = (tmp_path / "motion_events.csv").read_text().splitlines()
    unmatched = [r for r in events if r.startswith("swap,blink_onsets,original") and r[-1] == ","]
    assert len(unmatched) == 1
    html = "".join(s.html for s in evaluation_sections(result, tmp_path))
    assert "Face motion" in [s.title for s in evaluation_sections(result, tmp_path)]
    assert "blink onsets" in html and "n/a" in html
    verdict = " ".join(evaluation_verdict(result))
    assert "blink onsets 2 of 3 matched within 100 ms (2 in the copy)" in verdict


def with_mesh_reading(s: KeypointSeries, reading: KeypointSeries, seed: int) -> KeypointSeries:
    """``s`` with a face mesh whose points at ``DLIB68_ON_MESH`` are ``reading``'s dlib 68
    points, with a jitter of their own (0.002 of the face, as the series' own)."""
    mesh = np.full((N, 478, 3), np.nan)
    xy = reading.groups["face_dlib68"][..., :2]
    jitter = np.random.default_rng(seed).normal(0, 0.2, xy.shape)  # pixels: 100 a face unit
    mesh[:, list(DLIB68_ON_MESH), :2] = xy + jitter
    mesh[:, list(DLIB68_ON_MESH), 2] = 1.0
    return replace(s, groups={**s.groups, "face_mesh": mesh})


def test_two_readers_of_the_same_motion_agree_and_of_none_do_not(original):
    """The readers' figure compares dlib with the mesh on the original: high where both read
    the face's motion, low where the mesh reads a still face (its jitter only)."""
    same = with_mesh_reading(original, original, seed=5)
    still = with_mesh_reading(original, series(template(), 0 * motion(T), seed=6), seed=7)
    agree = readers(same, fs=FPS)
    assert agree.reason == ""
    assert agree.correlation_expressive_median > 0.95
    assert agree.amplitude_ratio_expressive_median == pytest.approx(1.0, abs=0.05)
    assert readers(still, fs=FPS).correlation_expressive_median < 0.3
    copy = series(donor_face(), motion(T), seed=2)
    result = compare_motion(same, copy)
    assert result.readers.correlation_median == pytest.approx(agree.correlation_median)
    doc = result.to_json()["readers"]
    assert doc["reason"] == "" and doc["correlation_median"] > 0.95
    evaluation = evaluate_series(same, {"swap": copy, "again": copy})
    first, second = (m.motion.readers for m in evaluation.methods)
    assert second is first  # the original's alone: computed once, not per copy
    verdict = motion_verdict(evaluation.methods[0])
    expected = (
        f"(dlib and the face mesh, both on the original, correlate {agree.correlation_median:.2f})"
    )
    assert expected in verdict


def test_no_face_mesh_in_the_original_gives_the_readers_reason_not_a_figure(original):
    result = compare_motion(original, series(template(), motion(T), seed=2))
    assert "face mesh" in result.readers.reason
    assert math.isnan(result.readers.correlation_median)
    assert "readers" in result.to_json()


@pytest.mark.shared
@pytest.mark.slow
def test_a_reencoded_shared_clip_keeps_the_motion(tmp_path):
    from medswap.keypoints import extract_keypoints
    from medswap.video import reencode

    clip = shared_video("speech_c.mp4")
    copy = reencode(clip, tmp_path / "reencode.mp4")
    result = compare_motion(extract_keypoints(clip), extract_keypoints(copy))
    for name in ("face-dlib68", "face-mesh"):
        g = result.groups[name]
        assert g.nme_median < 0.01, name
        assert g.correlation_median > 0.95, name
    assert result.blinks.matched == result.blinks.n_original >= 1
