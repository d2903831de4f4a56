"""The swap's pure building blocks on synthetic arrays: warps, tracking, baselines, donors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from medswap.faces.track import FaceTracker, OneEuroFilter, coverage, iou
from medswap.geometry import similarity_transform, transform_points
from medswap.swap import blend, obscure
from medswap.swap.donors import assign_donor, builtin_donor
from medswap.swap.engine import MeshSwapper, SwapSettings, _TrackState
from medswap.swap.geometry import (
    apply_maps,
    triangle_affines,
    triangulate,
    warp_maps,
)
from medswap.swap.surround import blur_context, neck_of


def test_triangle_affines_map_each_corner_exactly():
    rng = np.random.default_rng(0)
    dst, src = rng.random((40, 2)) * 100, rng.random((40, 2)) * 100
    tri = triangulate(dst)
    a = triangle_affines(dst, src, tri)
    corners = np.concatenate([dst[tri], np.ones((len(tri), 3, 1))], axis=2)
    np.testing.assert_allclose(corners @ a, src[tri], atol=1e-8)


def test_degenerate_triangle_maps_to_its_source_centroid():
    dst = np.array([[0, 0], [1, 1], [2, 2.0]])  # collinear
    src = np.array([[0, 0], [3, 0], [0, 3.0]])
    a = triangle_affines(dst, src, np.array([[0, 1, 2]]))
    np.testing.assert_allclose(np.array([5, 7, 1.0]) @ a[0], [1, 1])


def test_warp_with_a_known_shift_moves_the_image_by_that_shift():
    yy, xx = np.mgrid[0:80, 0:80]
    image = np.stack([xx * 3, yy * 3, (xx + yy)], axis=2).astype(np.uint8)
    src = np.array([[10, 10], [70, 10], [70, 70], [10, 70], [40, 40.0]])
    dst = src - (5, 3)
    tri = triangulate(src)
    maps = warp_maps(dst, src, tri, (0, 0, 80, 80))
    out = apply_maps(image, maps)
    # A pixel at (x, y) in the output comes from (x + 5, y + 3) in the source.
    assert maps.covered[30, 30]
    np.testing.assert_allclose(out[30, 30].astype(int), image[33, 35].astype(int), atol=1)
    assert not maps.covered[75, 75]


def test_similarity_transform_recovers_rotation_scale_and_shift():
    rng = np.random.default_rng(2)
    pts = rng.random((30, 2)) * 50
    angle, scale = np.deg2rad(17), 1.3
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = pts @ rot.T + (4, -7)
    m = similarity_transform(pts, moved)
    np.testing.assert_allclose(transform_points(m, pts), moved, atol=1e-9)


def test_iou_and_coverage():
    a = np.array([[0, 0, 10, 10.0]])
    b = np.array([[5, 0, 15, 10.0], [0, 0, 10, 10.0]])
    np.testing.assert_allclose(iou(a, b), [[50 / 150, 1.0]])
    np.testing.assert_allclose(coverage(a, np.array([[0, 0, 5, 10.0]])), [[0.5]])


def _mesh_at(x: float) -> np.ndarray:
    rng = np.random.default_rng(3)
    lm = np.zeros((478, 3))
    lm[:, :2] = rng.random((478, 2)) * 80 + (x, 50)
    return lm


def test_tracker_keeps_ids_bridges_gaps_and_obscures_detector_only_faces():
    tracker = FaceTracker(max_gap=3)
    none = (np.zeros((0, 4)), np.zeros(0))
    first = tracker.update(0, 0.0, [_mesh_at(100)], *none)
    assert [(s.track_id, s.source) for s in first] == [(0, "mesh")]
    tracker.update(1, 0.04, [_mesh_at(102)], *none)
    gap = [tracker.update(i, i * 0.04, [], *none) for i in range(2, 5)]
    assert all([(s.track_id, s.source) for s in g] == [(0, "bridged")] for g in gap)
    assert tracker.update(5, 0.2, [], *none) == []  # gap longer than max_gap: dropped
    det = tracker.update(6, 0.24, [], np.array([[300, 50, 360, 120.0]]), np.array([0.8]))
    assert [(s.source, s.landmarks) for s in det] == [("detector", None)]
    assert det[0].track_id == 1


def test_one_euro_filter_smooths_noise_but_follows_motion():
    f = OneEuroFilter()
    rng = np.random.default_rng(4)
    still = [f(np.array([100.0]) + rng.normal(0, 1, 1), i / 30, scale=100) for i in range(60)]
    assert np.std(still[30:]) < 0.6  # input noise has std 1
    moving = [f(np.array([100.0 + 20 * i]), (60 + i) / 30, scale=100) for i in range(30)]
    assert abs(moving[-1][0] - (100 + 20 * 29)) < 40  # lags less than two frames of motion


def test_one_euro_filter_follows_a_head_that_starts_to_turn():
    """A still face that starts moving at half a face width per second (face 100 px wide).

    The swapped face is drawn where the filter says: trailing the patient's head by 1% of the
    face width is about 0.024 inter-ocular distance, half the landmark budget (it trailed by 2%
    at beta 0.05).
    """
    f = OneEuroFilter()
    for i in range(30):
        f(np.array([100.0]), i / 30, scale=100)
    lag = [
        abs(f(np.array([100 + 5 / 3 * i]), (30 + i) / 30, scale=100)[0] - (100 + 5 / 3 * i))
        for i in range(1, 16)
    ]
    assert max(lag) < 1.0


@pytest.mark.parametrize("method", ["blur", "pixelate", "mask"])
def test_baselines_change_only_the_face_ellipse(method):
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 255, (200, 200, 3), np.uint8)
    before = frame.copy()
    box = np.array([60, 60, 140, 140.0])
    obscure.apply_in_region(frame, box, method, obscure.DEFAULT_STRENGTH[method])
    changed = np.any(frame != before, axis=2)
    assert changed[100, 100] and changed[70:130, 70:130].mean() > 0.9
    assert not changed[:20].any() and not changed[:, :20].any()


def test_stronger_blur_removes_more_detail():
    rng = np.random.default_rng(6)
    patch = rng.integers(0, 255, (120, 100, 3), np.uint8)
    detail = [obscure.blur(patch, 100, s).astype(float).std() for s in (0.1, 0.3, 1.0)]
    assert detail[0] > detail[1] > detail[2]


def test_donor_assignment_is_stable_and_reproducible():
    donors = [builtin_donor("astronaut"), builtin_donor("grace_hopper")]
    picks = [assign_donor(donors, t, seed=11).name for t in range(20)]
    assert picks == [assign_donor(donors, t, seed=11).name for t in range(20)]
    assert set(picks) == {"astronaut", "grace_hopper"}
    assert picks != [assign_donor(donors, t, seed=12).name for t in range(20)]


def test_average_donor_is_a_morph_about_equally_far_from_both_portraits():
    from medswap.faces.independent import DlibFaces, dlib_distance

    dlib = DlibFaces()
    desc = {}
    for name in ("average", "astronaut", "grace_hopper"):
        image = builtin_donor(name).image
        desc[name] = dlib.descriptor(image, dlib.detect(image)[0])
    to_a = dlib_distance(desc["average"], desc["astronaut"])
    to_g = dlib_distance(desc["average"], desc["grace_hopper"])
    assert to_a > 0.4 and to_g > 0.4 and abs(to_a - to_g) < 0.1, (to_a, to_g)


def test_default_donors_glasses_rim_is_painted_out_and_nothing_else():
    """Grace Hopper's top rim (a dark bar where landmark models look for brows) is gone from
    the donor; above the brows and below the lids her portrait is untouched, and to dlib the
    donor is still her (the lineup leaves the donor out of its gallery by her name)."""
    from medswap.faces.independent import DlibFaces, dlib_distance
    from medswap.faces.mesh import LEFT_EYE, RIGHT_EYE
    from medswap.swap.donors import BROW_POINTS, _mesh_of, shipped_portrait

    portrait, donor = shipped_portrait("grace_hopper"), builtin_donor("grace_hopper")
    pts = _mesh_of(portrait, "grace_hopper")[:, :2]
    upper_lids = [246, 161, 160, 159, 158, 157, 173, 133, 362, 398, 384, 385, 386, 387, 388, 466]
    lid_x, lid_y = pts[upper_lids].T
    order = np.argsort(lid_x)
    top = int(pts[BROW_POINTS, 1].min()) - 5

    def dark_above_the_lids(image: np.ndarray) -> int:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        columns = range(int(pts[33, 0]), int(pts[263, 0]) + 1)
        lids = np.interp(list(columns), lid_x[order], lid_y[order])
        return sum(int((gray[top : int(y) - 3, x] < 60).sum()) for x, y in zip(columns, lids))

    assert dark_above_the_lids(portrait) > 250  # the rim, read on the original
    assert dark_above_the_lids(donor.image) <= 10
    rows = np.flatnonzero(np.any(portrait != donor.image, axis=(1, 2)))
    assert rows.min() >= top and rows.max() <= pts[RIGHT_EYE + LEFT_EYE, 1].max() + 5
    dlib = DlibFaces()
    a, b = (dlib.descriptor(im, dlib.detect(im)[0]) for im in (portrait, donor.image))
    assert dlib_distance(a, b) < 0.3


def test_shape_zero_keeps_the_patient_geometry_and_shape_changes_it():
    donor = builtin_donor("grace_hopper")
    face = builtin_donor("astronaut")
    keep = MeshSwapper(SwapSettings(shape=0.0))
    state = _TrackState(donor)
    assert keep._shaped(state, face.landmarks) is face.landmarks  # geometry untouched
    outputs = {}
    for shape in (0.0, 0.5, 1.0):
        frame = face.image.copy()
        MeshSwapper(SwapSettings(shape=shape)).swap(frame, 0, face.landmarks, donor)
        outputs[shape] = frame.astype(int)
    again = face.image.copy()
    MeshSwapper(SwapSettings(shape=0.0)).swap(again, 0, face.landmarks, donor)
    assert np.array_equal(again, outputs[0.0])
    d_half = np.abs(outputs[0.5] - outputs[0.0]).mean()
    d_full = np.abs(outputs[1.0] - outputs[0.0]).mean()
    assert 0 < d_half < d_full


def test_hand_mask_covers_fingers_but_not_the_gaps_between_them():
    from medswap.swap.surround import hand_mask

    # A spread hand, palm at the bottom, five straight fingers fanning upwards.
    hand = np.zeros((21, 2))
    hand[0] = (100, 190)
    bases = {1: (70, 160), 5: (80, 130), 9: (100, 125), 13: (120, 130), 17: (135, 140)}
    angles = {1: -60, 5: -25, 9: 0, 13: 25, 17: 50}
    for base, (bx, by) in bases.items():
        a = np.deg2rad(angles[base])
        for k in range(4):
            hand[base + k] = (bx + np.sin(a) * 18 * k, by - np.cos(a) * 18 * k)
    mask = np.zeros((220, 220), np.uint8)
    hand_mask(hand, mask)
    assert mask[125, 100] == 255 and mask[int(hand[12][1]), int(hand[12][0])] == 255
    gap = (hand[8] + hand[12]) / 2  # between index and middle fingertips
    assert mask[int(gap[1]), int(gap[0])] == 0


def test_a_hand_wholly_inside_the_face_is_not_drawn_in_front_of_it():
    from medswap.faces.mesh import FACE_OVAL, occluding_hands

    face = np.zeros((478, 3))
    angles = np.linspace(0, 2 * np.pi, len(FACE_OVAL), endpoint=False)
    face[FACE_OVAL, 0] = 200 + 80 * np.cos(angles)  # an ellipse 160 x 220 around (200, 200)
    face[FACE_OVAL, 1] = 200 + 110 * np.sin(angles)
    rng = np.random.default_rng(0)
    imagined = np.column_stack([rng.uniform(160, 240, 21), rng.uniform(150, 260, 21)])
    # Wrist and palm below the chin, fingertips on the mouth.
    from_below = imagined + np.array([0.0, 120.0])
    inside = [
        float(np.mean(((h[:, 0] - 200) / 80) ** 2 + ((h[:, 1] - 200) / 110) ** 2 <= 1))
        for h in (imagined, from_below)
    ]
    assert inside[0] == 1.0 and 0.0 < inside[1] < 0.8
    kept = occluding_hands([imagined, from_below], face)
    assert len(kept) == 1 and kept[0] is from_below


def test_tracker_smooths_the_head_pose_but_keeps_the_expression():
    """Pose jitter is removed; a 3 Hz brow raise (not a blink or lip point) keeps its size.

    One strong filter over every point, as the tracker first had, halved motions this fast
    and took up to half of the facial motion energy out of the swapped expression clips.
    The jitter is 0.2% of this 92-pixel-wide face per frame, a little more than MediaPipe's
    on the shared clips (0.05-0.17% of the face width, the rigid points' second difference).
    """
    face = builtin_donor("astronaut").landmarks.copy()
    brows = [70, 63, 105, 66, 107, 336, 296, 334, 293, 300]
    rng = np.random.default_rng(7)
    tracker = FaceTracker()
    fps, n = 30.0, 90
    lifts, jitter_in, jitter_out = [], [], []
    none = (np.zeros((0, 4)), np.zeros(0))
    for i in range(n):
        lift = 6.0 * np.sin(2 * np.pi * 3.0 * i / fps)  # pixels, 3 Hz
        lm = face.copy()
        lm[brows, 1] -= lift
        shift = rng.normal(0, 0.2, 2)  # the landmarker's frame-to-frame pose jitter
        lm[:, :2] += shift
        out = tracker.update(i, i / fps, [lm], *none)[0].landmarks
        lifts.append(
            (lift, (out[33, 1] - out[brows, 1]).mean() - (face[33, 1] - face[brows, 1]).mean())
        )
        jitter_in.append(shift)
        jitter_out.append(out[[33, 263, 1], :2].mean(0) - face[[33, 263, 1], :2].mean(0))
    lifts = np.array(lifts[30:])  # after the filters settle
    gain = np.std(lifts[:, 1]) / np.std(lifts[:, 0])
    assert gain > 0.9, f"the 3 Hz brow raise kept only {gain:.0%} of its size"
    steady = np.std(np.array(jitter_out[30:]), axis=0) / np.std(np.array(jitter_in[30:]), axis=0)
    assert steady.max() < 0.5, f"pose jitter passed through at {steady.max():.0%}"


def _ring_scene(seed: int = 0):
    """A noisy 400x400 frame, a circular face outline of radius 60 at (200, 200), its alpha."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    t = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    outline = np.stack([200 + 60 * np.cos(t), 200 + 60 * np.sin(t)], 1)
    yy, xx = np.mgrid[0:400, 0:400]
    inside = ((xx - 200) ** 2 + (yy - 200) ** 2 <= 55**2).astype(np.float32)
    return frame, outline, inside


def test_the_context_ring_blurs_around_the_face_not_the_face_the_hands_or_the_rest():
    frame, outline, alpha = _ring_scene()
    before = frame.copy()
    hand = np.array([[200.0, 290.0]]) + np.zeros((21, 2))  # a hand below the chin, in the ring
    hand[5], hand[17] = (180, 275), (220, 275)
    hand[[1, 2, 3, 4]] = [[185, 285], [180, 280], [178, 272], [176, 266]]
    blur_context(frame, outline, alpha, (0, 0, 400, 400), [hand], reach=1.7, sigma=0.08)
    changed = np.abs(frame.astype(int) - before).sum(2) > 0
    # the face itself (alpha 1) is untouched
    assert not changed[165:235, 165:235].any()
    # the ring (between 1.1 and 1.5 outlines) is smoothed: its noise falls by more than half
    ring = np.s_[200 - 85 : 200 - 70, 190:210]  # above the face
    assert frame[ring].std() < 0.5 * before[ring].std()
    # far outside the reach nothing moves, and the hand's palm stays sharp
    assert not changed[:60].any() and not changed[:, :40].any()
    palm = np.s_[278:288, 195:205]
    assert np.abs(frame[palm].astype(int) - before[palm]).max() <= 4


@pytest.mark.parametrize("tilt_deg", [0.0, 30.0])
def test_the_context_ring_stops_below_the_chin_so_the_neck_and_shoulders_stay_sharp(tilt_deg):
    """With the neck limit the ring is blurred beside and above the face as before, but
    nothing more than ``below`` face heights under the chin's line moves, whichever way the
    head is tilted; without it the same band is blurred."""
    frame, outline, alpha = _ring_scene(2)
    a = np.deg2rad(tilt_deg)
    down = np.array([np.sin(a), np.cos(a)])  # the face's own downward direction
    top, chin = np.array([200.0, 200.0]) - 60 * down, np.array([200.0, 200.0]) + 60 * down
    yy, xx = np.mgrid[0:400, 0:400]
    t = ((xx - top[0]) * down[0] + (yy - top[1]) * down[1]) / 120.0  # 0 top, 1 chin
    across = np.abs((xx - 200) * down[1] - (yy - 200) * down[0])
    neck_band = (t > 1.22) & (t < 1.4) & (across < 30)  # under the chin, inside the reach
    above = (t > -0.4) & (t < -0.1) & (across < 10)  # over the top of the head
    changed = {}
    for name, neck in (("limited", (top, chin, 0.2)), ("full", None)):
        out = frame.copy()
        blur_context(out, outline, alpha, (0, 0, 400, 400), None, 1.7, 0.08, neck=neck)
        changed[name] = np.abs(out.astype(int) - frame).sum(2) > 0
        assert out[above].std() < 0.5 * frame[above].std(), name  # the hair is still blurred
    assert neck_band.sum() > 300
    assert not changed["limited"][neck_band].any()
    assert changed["full"][neck_band].mean() > 0.9


def test_the_neck_starts_below_the_lower_of_the_drawn_and_the_patients_chin():
    drawn, patient = np.zeros((478, 3)), np.zeros((478, 3))
    drawn[10, :2], drawn[152, :2] = (100, 50), (100, 150)
    patient[152, :2] = (100, 170)  # the patient's chin is lower than the donor's drawn one
    top, chin, below = neck_of(drawn, patient, 0.0)
    assert tuple(top) == (100, 50) and tuple(chin) == (100, 170) and below == 0.0
    patient[152, :2] = (100, 140)  # higher: the drawn chin counts
    assert tuple(neck_of(drawn, patient, 0.1)[1]) == (100, 150)
    assert neck_of(drawn, patient, None) is None  # the whole ring


def test_the_context_ring_is_clipped_at_the_frame_edge():
    frame, outline, alpha = _ring_scene(1)
    outline = outline - 180  # a face in the top-left corner, its ring mostly outside
    blur_context(frame, outline, alpha[180:, 180:], (0, 0, 220, 220), None, 1.7, 0.08)
    assert frame.shape == (400, 400, 3)


def test_the_fast_gaussian_blur_is_opencvs_to_within_rounding():
    rng = np.random.default_rng(3)
    for shape, sigma in [((122, 122, 3), 5.1), ((40, 300), 0.8), ((200, 150, 3), 11.0)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        fast = blend.gaussian_blur(image, sigma)
        assert fast.dtype == np.uint8 and fast.shape == image.shape
        ref = cv2.GaussianBlur(image, (0, 0), sigma)
        assert np.abs(fast.astype(int) - ref.astype(int)).max() <= 1, (shape, sigma)
    alpha = rng.random((64, 64)).astype(np.float32)
    assert np.array_equal(blend.gaussian_blur(alpha, 2.0), cv2.GaussianBlur(alpha, (0, 0), 2.0))


def test_relighting_in_one_pass_equals_the_two_low_passes():
    rng = np.random.default_rng(4)
    donor = rng.random((90, 80, 3)).astype(np.float32) * 255
    target = rng.random((90, 80, 3)).astype(np.float32) * 255
    mask = np.zeros((90, 80), np.uint8)
    mask[10:80, 15:70] = 255
    two_passes = donor + 0.7 * (
        blend.lowpass_in_mask(target, mask, 20.0) - blend.lowpass_in_mask(donor, mask, 20.0)
    )
    assert np.abs(blend.relight(donor, target, mask, 20.0, 0.7) - two_passes).max() < 1e-3


def test_hands_are_searched_every_other_frame_only_once_none_has_been_seen_for_a_while():
    """The palm detector is most of MediaPipe Hands' cost on a frame without hands; near a hand
    seen lately, every frame is searched (the model loses a raised hand for frames at a time)."""
    from medswap.faces.mesh import HAND_QUIET_FRAMES, HandFinder

    finder = HandFinder()
    looked: list[int] = []
    process = finder._process

    def counted(image):
        looked.append(len(seen))
        return process(image)

    finder._process = counted
    seen: list[list] = []
    blank = np.full((240, 320, 3), 90, np.uint8)
    try:
        for _ in range(10):
            seen.append(finder(blank))
        assert looked == [0, 2, 4, 6, 8]  # a video starts quiet
        finder._frames_without = 0  # as if a hand had just been seen
        looked.clear()
        for _ in range(HAND_QUIET_FRAMES + 4):
            seen.append(finder(blank))
        assert len(looked) == HAND_QUIET_FRAMES + 2
    finally:
        finder.close()
    assert not any(seen)
