"""Expression detail (ratio images): what passes from the patient's face, and what does not."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from medswap.faces.mesh import INNER_LIPS, LEFT_EYE, RIGHT_EYE
from medswap.swap.detail import (
    DETAIL_WIDTH,
    ExpressionDetail,
    apply_ratio,
    shape_free_frame,
)
from medswap.swap.donors import builtin_donor
from medswap.swap.engine import MeshSwapper, SwapSettings
from medswap.swap.geometry import WarpMaps

FINE, COARSE, CLIP = 0.02, 0.25, 0.3


@pytest.fixture(scope="module")
def frame():
    donor = builtin_donor("astronaut")
    return shape_free_frame(MeshSwapper()._donor_points(donor), donor.landmarks), donor


def _at(frame, point) -> float:
    x, y = np.round(point).astype(int)
    return float(frame.weight[y, x])


def test_the_ratio_applies_on_the_skin_not_in_the_eye_and_mouth_openings(frame):
    f, donor = frame
    lm = (donor.landmarks[:, :2] - f.origin) * f.scale
    assert f.weight.shape == (f.size[1], f.size[0])
    assert _at(f, lm[RIGHT_EYE].mean(0)) < 0.01
    assert _at(f, lm[LEFT_EYE].mean(0)) < 0.01
    assert _at(f, lm[INNER_LIPS].mean(0)) < 0.05
    for cheek in (50, 280):  # mid-cheek points of the face mesh
        assert _at(f, lm[cheek]) > 0.9
    assert _at(f, lm[9]) > 0.9  # between the brows, where a frown folds
    assert f.weight[0, 0] < 1e-3 and f.weight[-1, -1] < 1e-3


def _face(frame, seed: int = 0) -> np.ndarray:
    """A patient's face in the shape-free frame: static structure at every scale, pores too."""
    rng = np.random.default_rng(seed)
    h, w = frame.weight.shape
    base = sum(cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), s) * 6 * s for s in (1, 3, 9))
    return np.clip(140 + base, 0, 255).astype(np.uint8)[..., None].repeat(3, axis=2)


def _settle(detail: ExpressionDetail, frame, face: np.ndarray, n: int = 12) -> np.ndarray:
    for _ in range(n):
        r = detail.ratio(face, frame, FINE, COARSE, CLIP, 0.0)
    return r


def _at_rest(frame) -> tuple[np.ndarray, ExpressionDetail]:
    """A patient's face and a track whose neutral has settled on it."""
    face = _face(frame)
    detail = ExpressionDetail()
    _settle(detail, frame, face)
    return face, detail


def _forehead(frame, donor) -> tuple[int, int]:
    """(x, y) of the mid-forehead (mesh point 151) in the shape-free frame."""
    x, y = np.round((donor.landmarks[151, :2] - frame.origin) * frame.scale).astype(int)
    return int(x), int(y)


def test_a_static_face_gives_no_detail_and_its_pores_do_not_pass(frame):
    f, _ = frame
    face = _face(f)
    r = _settle(ExpressionDetail(), f, face)
    np.testing.assert_array_equal(r, 0.0)
    # Another person's static face after the neutral settled: what reaches the ratio is blurred
    # (finer than FINE does not pass) and bounded; the detail carries no pores.
    other = ExpressionDetail()
    _settle(other, f, face)
    r2 = other.ratio(_face(f, seed=1), f, FINE, COARSE, CLIP, 0.0)
    assert np.abs(r2).max() <= CLIP + 1e-6
    lap = cv2.Laplacian(r2, cv2.CV_32F)
    raw = cv2.Laplacian(np.log(_face(f, seed=1)[..., 0].astype(np.float32) + 1), cv2.CV_32F)
    inside = f.weight > 0.9
    assert np.abs(lap[inside]).mean() < 0.2 * np.abs(raw[inside]).mean()


def test_a_fold_darkens_where_it_is_and_a_change_of_light_does_not_pass(frame):
    f, donor = frame
    face, detail = _at_rest(f)
    x, y = _forehead(f, donor)
    folded = face.astype(np.float32)
    folded[y - 2 : y + 2] *= 0.7
    r = detail.ratio(folded.astype(np.uint8), f, FINE, COARSE, CLIP, 0.0)
    assert r[y, x] < -0.1  # darker by more than 10% in the fold
    assert np.abs(r[y + int(0.3 * DETAIL_WIDTH), x]).max() < 0.03  # and not a fold away
    brighter = np.clip(face.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)
    _, lit_track = _at_rest(f)
    lit = lit_track.ratio(brighter, f, FINE, COARSE, CLIP, 0.0)
    assert np.abs(lit[f.weight > 0.5]).mean() < 0.02  # the scene's light is relight's job


def test_the_ratio_is_smoothed_over_time_and_bounded(frame):
    f, donor = frame
    face, detail = _at_rest(f)
    x, y = _forehead(f, donor)
    dark = face.copy()
    dark[y - 2 : y + 2] = 5
    first = detail.ratio(dark, f, FINE, COARSE, CLIP, 0.5)[y, x]
    second = detail.ratio(dark, f, FINE, COARSE, CLIP, 0.5)[y, x]
    assert -CLIP <= second < first < 0


def test_apply_ratio_multiplies_the_donor_face_and_leaves_it_alone_at_zero(frame):
    f, donor = frame
    h, w = 60, 50
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centre = donor.landmarks[:, :2].mean(0)
    maps = WarpMaps(
        0,
        0,
        xx + np.float32(centre[0] - w / 2),
        yy + np.float32(centre[1] - h / 2),
        np.ones((h, w), bool),
    )
    px = np.full((h, w, 3), 100, np.uint8)
    zero = np.zeros_like(f.weight)
    np.testing.assert_array_equal(apply_ratio(px, zero, f, maps, 1.0), px)
    up = apply_ratio(px, zero + 0.2, f, maps, 1.0)
    assert up.min() == up.max() == round(100 * np.exp(0.2) - 0.5)  # truncated like the swap
    assert (apply_ratio(px, zero + 0.2, f, maps, 2.0) > up).all()


def test_the_swap_carries_a_fold_of_the_patient_onto_the_donor_only_with_detail():
    """A dark fold appearing on the patient's forehead darkens the donor's forehead there."""
    patient, donor = builtin_donor("astronaut"), builtin_donor("grace_hopper")
    lm = patient.landmarks
    y = int(round(lm[151, 1]))
    folded = patient.image.copy()
    folded[y - 3 : y + 3] = (folded[y - 3 : y + 3] * 0.6).astype(np.uint8)
    outs = {}
    for detail in (0.0, 1.0):
        swapper = MeshSwapper(replace(SwapSettings(), detail=detail))
        for _ in range(8):  # the neutral: the patient at rest
            rest = patient.image.copy()
            swapper.swap(rest, 1, lm, donor)
        fold = folded.copy()
        swapper.swap(fold, 1, lm, donor)
        outs[detail] = rest, fold
    np.testing.assert_array_equal(outs[0.0][0], outs[1.0][0])  # at rest, detail changes nothing
    diff = outs[1.0][1].astype(int) - outs[0.0][1].astype(int)
    x = int(round(lm[151, 0]))
    assert diff[y - 2 : y + 2, x - 5 : x + 5].mean() < -10  # the fold, on the donor's skin
    far = diff[int(round(lm[152, 1])) - 40 : int(round(lm[152, 1])) - 20, x - 5 : x + 5]
    assert np.abs(far).max() <= 2  # and nothing near the chin


def test_the_command_line_sets_detail_records_it_and_refuses_a_bad_strength(tmp_path, capsys):
    from media import portrait_clip

    from medswap.cli import main

    clip = portrait_clip(tmp_path / "patient.mp4", n_frames=6)
    out, report = tmp_path / "out.mp4", tmp_path / "out.json"
    args = ["-q", "deidentify", str(clip), "-o", str(out), "--no-audit", "--report", str(report)]
    assert main([*args, "--detail", "1"]) == 0
    assert json.loads(report.read_text())["settings"]["detail"] == 1.0
    assert main([*args, "--detail", "4"]) == 2
    assert "--detail: expected a number between 0 and 3, got 4" in capsys.readouterr().err
