"""Clinical measures: recovered from synthetic keypoints with known truth, and on real clips.

Synthetic series are built point by point so that the quantity a measure reads (thumb-index
distance, fingertip spread, eye aspect ratio, wrist position) follows a known function of time;
the tests then demand the known frequency, count or amplitude back within a tight tolerance.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pytest
from conftest import ROOT, shared_video

from medswap.errors import MeasureError
from medswap.keypoints.blendshapes import BLENDSHAPE_NAMES, EXPRESSION_BLENDSHAPES
from medswap.measures import (
    agreement,
    agreement_across,
    bland_altman,
    blinks,
    finger_tapping,
    hand_movements,
    icc_3_1,
    icc_3_1_ci,
    measure_set,
    measures,
    resample_uniform,
    signal_table,
    tremor,
    write_json,
    write_overlays,
    write_signals,
)
from medswap.measures.face import DLIB_LEFT_EYE, DLIB_RIGHT_EYE, MESH_LEFT_EYE, MESH_RIGHT_EYE
from medswap.types import KeypointSeries

HAND_PX = 100.0  # wrist to middle MCP in the synthetic hands


# ---------------------------------------------------------------- synthetic keypoints


def uniform_times(duration_s: float, fps: float) -> np.ndarray:
    return np.arange(int(round(duration_s * fps))) / fps


def variable_times(duration_s: float, seed: int = 0) -> np.ndarray:
    """Frame intervals drawn between 1/45 and 1/20 s: a phone's variable-rate recording."""
    rng = np.random.default_rng(seed)
    dt = rng.uniform(1 / 45, 1 / 20, size=int(duration_s * 60))
    t = np.concatenate([[0.0], np.cumsum(dt)])
    return t[t <= duration_s]


def make_hand(
    t: np.ndarray,
    pinch: np.ndarray | None = None,
    spread: np.ndarray | None = None,
    wrist_xy: np.ndarray | None = None,
    noise_px: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """(N, 21, 3) hand whose thumb-index distance is ``pinch`` and mean fingertip distance from
    the wrist is ``spread`` (both in hand sizes)."""
    n = t.size
    rng = np.random.default_rng(seed)
    wrist = np.tile([300.0, 400.0], (n, 1)) if wrist_xy is None else wrist_xy
    pts = np.zeros((n, 21, 3))
    pts[:, :, 2] = 1.0
    # A fixed layout first, then the points each signal depends on.
    for k in range(21):
        pts[:, k, :2] = wrist + np.array([(k % 5) * 8.0 - 16.0, -40.0 - 3.0 * k])
    pts[:, 0, :2] = wrist
    pts[:, 9, :2] = wrist + np.array([0.0, -HAND_PX])
    if spread is not None:
        for j, tip in enumerate((4, 8, 12, 16, 20)):
            ang = np.deg2rad(-150 + 30 * j)
            pts[:, tip, :2] = wrist + HAND_PX * spread[:, None] * [np.cos(ang), np.sin(ang)]
    if pinch is not None:
        centre = wrist + np.array([0.0, -1.2 * HAND_PX])
        half = np.column_stack([HAND_PX * pinch / 2, np.zeros(n)])
        pts[:, 4, :2] = centre - half
        pts[:, 8, :2] = centre + half
    pts[:, :, :2] += rng.normal(0, noise_px, size=(n, 21, 2)) if noise_px else 0.0
    return pts


def series_of(t: np.ndarray, **groups: np.ndarray) -> KeypointSeries:
    return KeypointSeries(
        frame_index=np.arange(t.size),
        time_s=np.asarray(t, float),
        groups=groups,
        width=640,
        height=480,
        fps=30.0,
    )


def tapping(t: np.ndarray, freq: float, amp0: float = 1.0, amp1: float | None = None):
    """Thumb-index distance: closed at 0.1, opening to 0.1 + amplitude, once per 1/freq s.

    The amplitude falls linearly from ``amp0`` at the first opening to ``amp1`` at the last.
    """
    amp1 = amp0 if amp1 is None else amp1
    phase = freq * t
    n_peaks = int(np.floor(freq * t[-1] - 0.5)) + 1
    # The truth is only unambiguous when the last opening is not cut off by the clip's end.
    assert t[-1] - (n_peaks - 0.5) / freq > 0.25 / freq, "choose a clip that ends off a peak"
    k = np.clip(np.floor(phase), 0, n_peaks - 1)
    amp = amp0 + (amp1 - amp0) * k / max(n_peaks - 1, 1)
    return 0.1 + amp * (1 - np.cos(2 * np.pi * phase)) / 2, n_peaks


def nan_frames(arr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = arr.copy()
    out[mask, :, :2] = np.nan
    return out


# ---------------------------------------------------------------- finger tapping


@pytest.mark.parametrize("freq", [1.7, 3.3, 5.1])
def test_tap_frequency_and_count_recovered(freq):
    t = uniform_times(10.0, 30.0)
    pinch, n_peaks = tapping(t, freq)
    s = series_of(t, right_hand=make_hand(t, pinch=pinch, noise_px=0.5))
    v = finger_tapping(s, "right_hand").values
    assert abs(v["frequency_hz"] - freq) < 0.1
    assert v["tap_count"] == n_peaks
    assert v["amplitude_norm"] == pytest.approx(1.0, rel=0.05)
    assert abs(v["decrement_per_tap"]) < 0.005
    assert v["hesitations"] == 0 and v["halts"] == 0


def test_tap_decrement_sign_and_magnitude():
    t = uniform_times(10.0, 30.0)
    pinch, n = tapping(t, 2.5, amp0=1.0, amp1=0.4)  # the sequence effect: 60 % smaller
    s = series_of(t, left_hand=make_hand(t, pinch=pinch, noise_px=0.5))
    v = finger_tapping(s, "left_hand").values
    assert v["decrement_per_tap"] == pytest.approx(0.6 / (n - 1), rel=0.1)
    assert v["decrement_pct_per_tap"] > 0
    assert v["amplitude_norm"] == pytest.approx(0.7, rel=0.05)
    # Growing amplitude: the decrement is negative.
    pinch, n = tapping(t, 2.5, amp0=0.4, amp1=1.0)
    s = series_of(t, left_hand=make_hand(t, pinch=pinch))
    assert finger_tapping(s, "left_hand").values["decrement_per_tap"] == pytest.approx(
        -0.6 / (n - 1), rel=0.1
    )


def test_variable_frame_rate_timestamps():
    t = variable_times(8.0, seed=3)
    assert np.std(np.diff(t)) > 0.005  # really variable
    pinch, n = tapping(t, 4.3)
    v = finger_tapping(series_of(t, right_hand=make_hand(t, pinch=pinch)), "right_hand").values
    assert abs(v["frequency_hz"] - 4.3) < 0.1
    assert v["tap_count"] == n


def test_nan_gaps_bridged_or_split():
    t = uniform_times(10.0, 30.0)
    pinch, n = tapping(t, 2.0)
    hand = make_hand(t, pinch=pinch, noise_px=0.3)
    # Two missing frames every second: bridged, nothing lost.
    short = np.zeros(t.size, bool)
    short[15::30] = short[16::30] = True
    v = finger_tapping(series_of(t, right_hand=nan_frames(hand, short)), "right_hand").values
    assert v["tap_count"] == n and abs(v["frequency_hz"] - 2.0) < 0.1
    # The hand leaves the picture for 1.5 s (3 openings): those taps are not invented, no
    # interval is measured across the gap, and the rate is still right.
    long = (t > 4.1) & (t < 5.6)
    v = finger_tapping(series_of(t, right_hand=nan_frames(hand, long)), "right_hand").values
    assert v["tap_count"] == n - 3
    assert abs(v["frequency_hz"] - 2.0) < 0.1
    assert v["halts"] == 0
    assert v["visible_fraction"] == pytest.approx(1 - long.mean())


def test_hesitation_and_halt_counted():
    fs, f = 30.0, 3.0
    # Regular taps, a pause of 2.5 periods (hesitation), more taps, a pause of 6 (halt).
    period = np.full(30, 1 / f)
    period[9] = 2.5 / f
    period[19] = 6.0 / f
    edges = np.concatenate([[0.0], np.cumsum(period)])
    t = uniform_times(edges[-1], fs)
    k = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, period.size - 1)
    frac = (t - edges[k]) / period[k]
    # One opening per cycle; a long cycle holds the hand closed for its extra time.
    tt = np.clip(frac * period[k] * f, 0, 1)
    pinch = 0.1 + (1 - np.cos(2 * np.pi * tt)) / 2 * (tt < 1)
    v = finger_tapping(series_of(t, right_hand=make_hand(t, pinch=pinch)), "right_hand").values
    assert v["hesitations"] == 1
    assert v["halts"] == 1


def test_hand_movements_from_fingertip_spread():
    t = uniform_times(8.0, 25.0)
    spread = 1.0 + 0.8 * (1 - np.cos(2 * np.pi * 1.4 * t)) / 2
    s = series_of(t, right_hand=make_hand(t, spread=spread, noise_px=0.5))
    v = hand_movements(s, "right_hand").values
    assert abs(v["frequency_hz"] - 1.4) < 0.1
    assert v["tap_count"] == int(np.floor(1.4 * 8.0 - 0.5)) + 1
    assert v["amplitude_norm"] == pytest.approx(0.8, rel=0.05)


# ---------------------------------------------------------------- tremor


@pytest.mark.parametrize(("freq", "fps"), [(4.6, 30.0), (8.7, 60.0)])
def test_tremor_frequency_and_amplitude(freq, fps):
    t = uniform_times(6.0, fps)
    rng = np.random.default_rng(1)
    # A slow postural drift (not tremor) plus a 2.5 px tremor at an angle, plus jitter.
    wrist = np.column_stack(
        [
            300 + 15 * np.sin(2 * np.pi * 0.2 * t) + 2.5 * np.cos(2 * np.pi * freq * t) * 0.8,
            400 + 10 * t + 2.5 * np.cos(2 * np.pi * freq * t) * 0.6,
        ]
    ) + rng.normal(0, 0.3, (t.size, 2))
    s = series_of(t, left_hand=make_hand(t, wrist_xy=wrist))
    v = tremor(s, "left_hand").values
    for point in ("wrist", "index_tip"):  # the fingertip rides on the wrist here
        assert abs(v[point]["frequency_hz"] - freq) < 0.1
        assert v[point]["amplitude_norm"] == pytest.approx(2.5 / HAND_PX, rel=0.15)
        assert v[point]["band_power_fraction"] < 1.0


def test_tremor_on_variable_rate_is_resampled():
    t = variable_times(6.0, seed=5)
    wrist = np.column_stack([300 + 3 * np.sin(2 * np.pi * 6.2 * t), np.full(t.size, 400.0)])
    v = tremor(series_of(t, right_hand=make_hand(t, wrist_xy=wrist)), "right_hand").values
    assert abs(v["wrist"]["frequency_hz"] - 6.2) < 0.1


# ---------------------------------------------------------------- blinks


def make_face(
    t: np.ndarray,
    ear_r: np.ndarray,
    ear_l: np.ndarray,
    mouth: np.ndarray | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Face mesh (N, 478, 3) and dlib68 (N, 68, 3) whose eyes have the given EAR."""
    n = t.size
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(42).uniform([150, 150], [350, 400], size=(478, 2))
    mesh = np.zeros((n, 478, 3))
    mesh[:, :, :2] = base
    mesh[:, :, 2] = 1
    d68 = np.zeros((n, 68, 3))
    d68[:, :, :2] = base[:68]
    d68[:, :, 2] = 1
    w = 30.0

    def put(arr, eye, cx, ear):
        h = ear * w
        p1, p2, p3, p4, p5, p6 = eye
        arr[:, p1, :2] = np.column_stack([np.full(n, cx - w / 2), np.full(n, 200.0)])
        arr[:, p4, :2] = np.column_stack([np.full(n, cx + w / 2), np.full(n, 200.0)])
        arr[:, p2, :2] = np.column_stack([np.full(n, cx - 5), 200 - h / 2])
        arr[:, p6, :2] = np.column_stack([np.full(n, cx - 5), 200 + h / 2])
        arr[:, p3, :2] = np.column_stack([np.full(n, cx + 5), 200 - h / 2])
        arr[:, p5, :2] = np.column_stack([np.full(n, cx + 5), 200 + h / 2])

    put(mesh, MESH_RIGHT_EYE, 200.0, ear_r)
    put(mesh, MESH_LEFT_EYE, 300.0, ear_l)  # 33 and 263 are 130 px apart
    put(d68, DLIB_RIGHT_EYE, 200.0, ear_r)
    put(d68, DLIB_LEFT_EYE, 300.0, ear_l)
    if mouth is not None:
        mesh[:, 13, :2] = np.column_stack([np.full(n, 250.0), np.full(n, 300.0)])
        mesh[:, 14, :2] = np.column_stack([np.full(n, 250.0), 300 + mouth * 130.0])
    if noise:
        mesh[:, :, :2] += rng.normal(0, noise, (n, 478, 2))
        d68[:, :, :2] += rng.normal(0, noise, (n, 68, 2))
    return mesh, d68


def blink_dip(t: np.ndarray, centre: float, duration: float) -> np.ndarray:
    """Closure 0..0.85 shaped as a raised cosine whose full width at half depth is ``duration``."""
    x = (t - centre) / duration
    return np.where(np.abs(x) < 1, 0.85 * (1 + np.cos(np.pi * x)) / 2, 0.0)


BLINKS = [(1.0, 0.10), (3.2, 0.25), (5.0, 0.40), (8.7, 0.15), (11.1, 0.30), (14.4, 0.20)]


def blink_face(t: np.ndarray, noise: float = 0.0):
    """Open EAR 0.30 that drifts to 0.22 (a head turn) and back; six blinks of 100-400 ms, a
    wink of the left eye alone (not a blink) and a 1.6 s held closure (not a blink)."""
    open_ear = 0.30 - 0.08 * np.clip((t - 6.0) / 2.0, 0, 1) * np.clip((13.0 - t) / 2.0, 0, 1)
    closure = sum(blink_dip(t, c, d) for c, d in BLINKS)
    held = np.clip(1 - np.abs(t - 17.0) / 0.8, 0, 1) ** 0.2 * 0.85
    closure = closure + held
    wink = blink_dip(t, 6.5, 0.3)
    ear_r = open_ear * (1 - closure)
    ear_l = open_ear * (1 - closure) * (1 - wink)
    return make_face(t, ear_r, ear_l, noise=noise)


@pytest.mark.parametrize(("fps", "noise"), [(30.0, 0.0), (25.0, 0.15), (60.0, 0.3)])
def test_blink_count_exact_with_varied_durations_and_noise(fps, noise):
    t = uniform_times(19.0, fps)
    mesh, d68 = blink_face(t, noise)
    s = series_of(t, face_mesh=mesh, face_dlib68=d68)
    for source in ("face_mesh", "face_dlib68"):
        v = blinks(s, source).values
        assert v["blink_count"] == len(BLINKS), source
        assert v["long_closure_count"] == 1
        np.testing.assert_allclose(v["blink_times_s"], [c for c, _ in BLINKS], atol=0.04)
        # Durations at half depth: within 50 ms or a frame and a half, whichever is more.
        np.testing.assert_allclose(
            v["blink_durations_ms"], [1000 * d for _, d in BLINKS], atol=max(50.0, 1500 / fps)
        )
        assert v["blink_rate_per_min"] == pytest.approx(60 * len(BLINKS) / t[-1], rel=0.02)


def test_a_blink_resting_shut_is_timed_at_its_middle_not_its_deepest_sample():
    """A blink whose lids rest shut for 0.3 s, jitter putting its deepest sample at the end
    of that rest (as on expression_b), is timed at the middle of the closure."""
    from medswap.measures.face import detect_blinks

    fs = 30.0
    t = np.arange(0.0, 4.0, 1.0 / fs)
    closure = 0.7 * np.clip(np.minimum((t - 1.9) / 0.1, (2.4 - t) / 0.1), 0.0, 1.0)
    closure[np.argmin(np.abs(t - 2.28))] += 0.05  # the deepest sample, late on the rest
    found = detect_blinks(t, closure, fs)
    assert found["times_s"] == pytest.approx([2.15], abs=0.5 / fs)
    assert found["durations_s"] == pytest.approx([0.4], abs=1.0 / fs)


def test_blinks_on_variable_rate_with_nan_gap():
    t = variable_times(19.0, seed=8)
    mesh, _ = blink_face(t, noise=0.1)
    mesh[(t > 9.5) & (t < 10.0)] = np.nan  # face lost for half a second, no blink there
    v = blinks(series_of(t, face_mesh=mesh), "face_mesh").values
    assert v["blink_count"] == len(BLINKS)


def test_mouth_and_motion():
    t = uniform_times(4.0, 30.0)
    mouth = 0.05 + 0.3 * (1 - np.cos(2 * np.pi * 0.5 * t)) / 2
    mesh, _ = make_face(t, np.full(t.size, 0.3), np.full(t.size, 0.3), mouth=mouth)
    m = measures(series_of(t, face_mesh=mesh), task="face")["face"]
    assert m["mouth"]["mouth_open_range_norm"] == pytest.approx(0.3 * 0.976, rel=0.03)
    assert m["mouth"]["mouth_open_max_norm"] == pytest.approx(0.35, rel=0.01)
    # Only the two lip points move: the face's motion is theirs, the head does not move.
    assert m["motion"]["head_speed_iod_per_s"] < 0.01
    assert m["motion"]["expression_speed_iod_per_s"] > 0
    assert "error" in m["blinks_dlib68"]


def test_blendshape_ranges_from_known_scores():
    t = uniform_times(4.0, 30.0)
    scores = np.zeros((t.size, 52), np.float32)
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    smile = BLENDSHAPE_NAMES.index("mouthSmileLeft")
    scores[:, jaw] = np.linspace(0.0, 0.8, t.size)  # p5..p95 of a ramp: 0.9 of its span
    scores[:, smile] = 0.1
    scores[10, smile] = 1.0  # one misread frame does not set the range
    scores[20:25] = np.nan  # no face in five frames
    s = KeypointSeries(
        np.arange(t.size), t, {}, 640, 480, 30.0, scores={"face_blendshapes": scores}
    )
    v = measures(s, task="face")["face"]["blendshapes"]
    assert v["frames_with_face"] == t.size - 5
    assert v["jawOpen_range"] == pytest.approx(0.8 * 0.9, abs=0.01)
    assert v["mouthSmileLeft_range"] == pytest.approx(0.0, abs=1e-6)
    assert "eyeBlinkLeft_range" not in v and len(v) == len(EXPRESSION_BLENDSHAPES) + 1
    no_scores = measures(series_of(t), task="face")["face"]["blendshapes"]
    assert no_scores == {"error": "no blendshapes in these keypoints (extracted without them)"}
    scores[2:] = np.nan
    few = KeypointSeries(
        np.arange(t.size), t, {}, 640, 480, 30.0, scores={"face_blendshapes": scores}
    )
    assert measures(few, task="face")["face"]["blendshapes"] == {
        "error": "the face landmarker found a face in fewer than 3 frames"
    }


def test_blendshape_ranges_agree_within_a_share_of_their_scale():
    orig = {"face": {"blendshapes": {"jawOpen_range": 0.02, "mouthSmileLeft_range": 0.60}}}
    deid = {"face": {"blendshapes": {"jawOpen_range": 0.05, "mouthSmileLeft_range": 0.52}}}
    rows = {r["measure"]: r for r in agreement(orig, deid)}
    # 150 % apart but 0.03 of the 0..1 scale: noise, agrees; 0.08 of the scale: differs.
    assert rows["face.blendshapes.jawOpen_range"]["status"] == "ok"
    assert rows["face.blendshapes.mouthSmileLeft_range"]["status"] == "differs"


# ---------------------------------------------------------------- errors per measure


def test_errors_reported_per_measure_not_raised():
    t = uniform_times(1.2, 30.0)
    pinch, _ = tapping(t, 2.8)
    hand = make_hand(t, pinch=pinch)
    gone = np.full_like(hand, np.nan)
    s = series_of(t, left_hand=gone, right_hand=hand)
    m = measures(s)
    assert m["finger_tapping"]["left_hand"] == {"error": "no left hand visible in any frame"}
    assert m["tremor"]["right_hand"] == {
        "error": "too few frames for the 3-12 Hz band: 1.20 s of continuous hand, need 2 s"
    }
    assert m["face"]["blinks"] == {"error": "no face mesh keypoints in this series"}
    assert m["finger_tapping"]["right_hand"]["tap_count"] == 3
    with pytest.raises(MeasureError, match="no left hand visible in any frame"):
        finger_tapping(s, "left_hand")
    with pytest.raises(MeasureError, match="too few frames for the 3-12 Hz band"):
        tremor(s, "right_hand")
    # A still hand has no cycles.
    still = series_of(t, right_hand=make_hand(t, pinch=np.full(t.size, 0.5), noise_px=0.2))
    with pytest.raises(MeasureError, match=r"only \d movement cycle\(s\) found"):
        finger_tapping(still, "right_hand")
    # 12 fps cannot carry the 3-12 Hz band's upper part, but 3-6 Hz still; 6 fps nothing.
    t6 = uniform_times(5.0, 6.0)
    slow = series_of(t6, right_hand=make_hand(t6))
    with pytest.raises(MeasureError, match=r"6\.0 fps is too slow for the 3-12 Hz tremor band"):
        tremor(slow, "right_hand")
    assert json.dumps(m)  # plain JSON types throughout


def test_unknown_task_is_a_usage_error():
    from medswap.errors import UsageError

    t = uniform_times(1.0, 30.0)
    with pytest.raises(UsageError, match="unknown task 'gait'"):
        measures(series_of(t), task="gait")


def test_resample_keeps_long_gaps_missing():
    t = np.array([0.0, 0.1, 0.2, 1.0, 1.1])
    grid, y = resample_uniform(t, np.array([0.0, 1.0, 2.0, 10.0, 11.0]), fs=10.0)
    assert grid.size == 12
    assert np.isnan(y[3:10]).all() and y[1] == pytest.approx(1.0) and y[11] == pytest.approx(11)


# ---------------------------------------------------------------- agreement


def test_icc_3_1_matches_shrout_fleiss_1979():
    # Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges. Their ICC(3,1) = 0.71.
    table = np.array(
        [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float
    )
    assert round(icc_3_1(table), 2) == 0.71
    # Hand computation from the same ANOVA: BMS = 11.24, EMS = 1.02, k = 4.
    assert icc_3_1(table) == pytest.approx((11.2417 - 1.0194) / (11.2417 + 3 * 1.0194), abs=1e-3)
    # A constant offset between raters is not a disagreement for consistency ICC.
    x = np.array([1.0, 2.0, 4.0, 7.0])
    assert icc_3_1(np.column_stack([x, x + 3])) == pytest.approx(1.0)


def test_bland_altman_limits():
    a = [1.0, 2.0, 3.0, 4.0]
    b = [1.1, 2.2, 3.1, 4.2]
    ba = bland_altman(a, b)
    sd = np.std([0.1, 0.2, 0.1, 0.2], ddof=1)
    assert ba["mean_diff"] == pytest.approx(0.15)
    assert ba["loa_low"] == pytest.approx(0.15 - 1.96 * sd)
    assert ba["loa_high"] == pytest.approx(0.15 + 1.96 * sd)
    # 95 % CIs: t interval of the bias; Bland & Altman (1999) SE sd*sqrt(3/n) for the limits
    t3 = 3.182446305284263  # t(0.975, 3)
    assert ba["mean_diff_ci"] == pytest.approx([0.15 - t3 * sd / 2, 0.15 + t3 * sd / 2])
    se = sd * np.sqrt(3 / 4)
    assert ba["loa_low_ci"] == pytest.approx([ba["loa_low"] - t3 * se, ba["loa_low"] + t3 * se])
    assert ba["loa_high_ci"][1] == pytest.approx(ba["loa_high"] + t3 * se)
    with pytest.raises(ValueError, match="needs at least 3 videos, had 2"):
        bland_altman([1.0, 2.0], [1.1, 2.2])


def test_icc_3_1_confidence_interval_shrout_fleiss_table():
    # McGraw & Wong (1996) case 3 on Shrout & Fleiss's table: ICC 0.715, 95 % CI 0.342-0.946
    table = np.array(
        [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float
    )
    lo, hi = icc_3_1_ci(table)
    assert (round(lo, 3), round(hi, 3)) == (0.342, 0.946)
    assert lo < icc_3_1(table) < hi


def _synthetic_measures(freq: float, amp: float, with_face: bool = True) -> dict:
    t = uniform_times(8.1, 30.0)
    pinch, _ = tapping(t, freq, amp0=amp)
    groups = {"right_hand": make_hand(t, pinch=pinch)}
    if with_face:
        groups["face_mesh"] = blink_face(uniform_times(19.0, 30.0))[0][: t.size]
    return measures(series_of(t, **groups), task="auto")


def test_agreement_rows_and_lost_measures():
    orig = _synthetic_measures(3.0, 1.0)
    same = agreement(orig, orig)
    assert same and all(r["status"] == "ok" for r in same if r["status"] != "absent")
    # A de-identified copy at a 3 % different rate and with the face blurred away.
    deid = _synthetic_measures(3.09, 1.0, with_face=False)
    rows = {r["measure"]: r for r in agreement(orig, deid)}
    f = rows["finger_tapping.right_hand.frequency_hz"]
    assert f["status"] == "differs" and f["rel_diff"] == pytest.approx(0.03, abs=0.01)
    assert rows["finger_tapping.right_hand.amplitude_norm"]["status"] == "ok"
    lost = rows["face.blinks.blink_count"]
    assert lost["status"] == "lost" and lost["error"] == "no face mesh keypoints in this series"
    assert rows["finger_tapping.left_hand"]["status"] == "absent"


def test_agreement_across_videos():
    pairs = [
        (_synthetic_measures(f, a, False), _synthetic_measures(f, a * 1.01, False))
        for f, a in [(2.0, 0.8), (3.0, 1.0), (4.0, 0.6)]
    ]
    stats = agreement_across(pairs)
    amp = stats["finger_tapping.right_hand.amplitude_norm"]
    assert amp["n"] == 3 and amp["icc_3_1"] > 0.99
    assert 0 < amp["mean_diff"] < 0.02
    assert stats["finger_tapping.right_hand.frequency_hz"]["icc_3_1"] > 0.99
    assert "error" in stats["finger_tapping.left_hand"]
    lo, hi = amp["icc_3_1_ci"]
    assert lo < amp["icc_3_1"] <= hi <= 1.0
    assert amp["loa_low_ci"][0] < amp["loa_low"] < amp["loa_low_ci"][1]
    # two videos: no limits of agreement, no ICC, and the row says why
    two = agreement_across(pairs[:2])["finger_tapping.right_hand.amplitude_norm"]
    assert two == {"n": 2, "error": "needs at least 3 videos, had 2"}


# ---------------------------------------------------------------- signals out, CLI


def test_signals_written_as_csv_and_png(tmp_path):
    t = uniform_times(6.0, 30.0)
    pinch, n = tapping(t, 2.0)
    mesh = blink_face(uniform_times(19.0, 30.0))[0][: t.size]
    ms = measure_set(series_of(t, right_hand=make_hand(t, pinch=pinch), face_mesh=mesh))
    files = write_signals(ms.signals, tmp_path / "signals")
    names = {p.name for p in files}
    assert {
        "finger_tapping_right_hand.csv",
        "finger_tapping_right_hand.png",
        "blinks_face_mesh.png",
    } <= names
    csv = (tmp_path / "signals" / "finger_tapping_right_hand.csv").read_text().splitlines()
    assert csv[0] == "time_s,finger_tapping_norm,smoothed_norm,event"
    assert sum("opening" in line for line in csv[1:]) == n
    png = (tmp_path / "signals" / "blinks_face_mesh.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    blink_csv = signal_table(ms.signal("blinks_face_mesh"))
    assert blink_csv.count("blink") == 3  # the three blinks within the first 6 s
    # The report's overlay of an original and a de-identified copy that lost its face.
    deid = measure_set(series_of(t, right_hand=make_hand(t, pinch=pinch, noise_px=1.0)))
    overlays = write_overlays(ms.signals, deid.signals, tmp_path / "overlay")
    assert {p.name for p in overlays} == {
        "finger_tapping_right_hand_overlay.png",
        "tremor_right_hand_wrist_overlay.png",
        "tremor_right_hand_index_tip_overlay.png",
    }
    out = write_json(ms.values, tmp_path / "m.json")
    assert json.loads(out.read_text())["finger_tapping"]["right_hand"]["tap_count"] == n


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medswap.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src")},
    )


def test_cli_errors(tmp_path):
    r = _cli("measures", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "m.json"))
    assert r.returncode == 3
    assert (
        r.stderr.strip().splitlines()[-1]
        == f"medswap: error: {tmp_path / 'nope.mp4'}: no such file"
    )
    r = _cli("measures", "x.mp4", "-o", str(tmp_path / "missing" / "m.json"))
    assert r.returncode == 8 and "the output folder does not exist" in r.stderr
    r = _cli("measures", "x.mp4", "-o", "m.json", "--task", "gait")
    assert r.returncode == 2 and "invalid choice: 'gait'" in r.stderr
    if find_spec("medswap.keypoints") is None:  # extraction not merged yet: a clear message
        video = tmp_path / "v.mp4"
        video.write_bytes(b"0")
        r = _cli("measures", str(video), "-o", str(tmp_path / "m.json"))
        assert r.returncode == 1
        assert "keypoint extraction is not available in this installation" in r.stderr
        assert "Traceback" not in r.stderr


# ---------------------------------------------------------------- real clips


@pytest.fixture(scope="module")
def quick():
    """MediaPipe keypoints of a shared clip, computed once per clip for this module."""
    from quick_keypoints import quick_series

    cache: dict = {}

    def get(name: str, dlib68: bool = False) -> KeypointSeries:
        key = (name, dlib68)
        if key not in cache:
            cache[key] = quick_series(shared_video(name), dlib68=dlib68)
        return cache[key]

    return get


@pytest.mark.shared
def test_hand_open_close_frequency(quick, tmp_path):
    """hand_open_close.mp4 (58 frames, ~1.9 s): she raises her right hand (frames 13-18), opens
    it (18-22), closes it (25-27), opens it again less wide (29-32) and closes it (35-38) before
    lowering it. Counted frame by frame from PNG stills: 2 openings 11 frames apart (0.37 s),
    about 2.7 Hz. Measured: 2 cycles at 2.65 Hz, with the second opening smaller."""
    s = quick("hand_open_close.mp4")
    m = measures(s, task="hand-movements")["hand_movements"]
    v = m["right_hand"]
    assert v["tap_count"] == 2
    assert 2.3 < v["frequency_hz"] < 3.2
    assert v["decrement_per_tap"] > 0  # the second opening is smaller, as seen
    assert "error" in m["left_hand"]
    write_signals(measure_set(s, "hand-movements").signals, tmp_path)
    assert (tmp_path / "hand_movements_right_hand.png").stat().st_size > 5000


@pytest.mark.shared
@pytest.mark.parametrize(
    ("clip", "seen_blinks", "seen_long"),
    [
        # Counted from every frame's eye crop, saved as PNG contact sheets and viewed:
        # expression_a (30 fps): both eyes shut at frames 48-52 (1.60-1.73 s) and 56-61
        #   (1.87-2.03 s): 2 blinks. Not blinks: a wink of her left eye (frames 5-21) and of her
        #   right eye (30-47), and eyes held shut 3.4-5.4 s and 7.2-8.5 s (2 long closures).
        # expression_b (25 fps): both eyes shut at frames 147-158 (5.88-6.32 s): 1 blink. A squint
        #   at 2.0-2.6 s and a half-lid during a glance at 5.1 s are not blinks.
        # expression_c (25 fps): eyes narrow but open in all 175 frames: 0 blinks.
        ("expression_a.mp4", 2, 2),
        ("expression_b.mp4", 1, 0),
        ("expression_c.mp4", 0, 0),
    ],
)
def test_blink_counts_match_watching(quick, clip, seen_blinks, seen_long):
    v = measures(quick(clip, dlib68=clip == "expression_b.mp4"), task="face")["face"]
    assert v["blinks"]["blink_count"] == seen_blinks
    assert v["blinks"]["long_closure_count"] == seen_long
    assert v["mouth"]["mouth_open_range_norm"] > 0.1  # every clip opens the mouth
    # Measured against itself, every value agrees exactly.
    rows = agreement({"face": v}, {"face": v})
    assert all(r["status"] in ("ok", "absent") for r in rows)
    # Moving every keypoint by 1 px of random jitter (a stand-in for a de-identification that
    # disturbs the landmarks slightly) keeps the blink count: it is exact, not approximate.
    s = quick(clip, dlib68=clip == "expression_b.mp4")
    rng = np.random.default_rng(0)
    shaken = {
        k: g
        + np.concatenate(
            [rng.normal(0, 1.0, g[..., :2].shape), np.zeros(g[..., 2:].shape)], axis=-1
        )
        for k, g in s.groups.items()
    }
    jit = KeypointSeries(s.frame_index, s.time_s, shaken, s.width, s.height, s.fps)
    rows = {r["measure"]: r for r in agreement({"face": v}, measures(jit, task="face"))}
    assert rows["face.blinks.blink_count"]["status"] == "ok"


@pytest.mark.shared
def test_dlib68_blinks_agree_on_expression_b(quick):
    """The independent dlib68 EAR finds expression_b's one blink too (at 5.9 s)."""
    v = blinks(quick("expression_b.mp4", dlib68=True), "face_dlib68").values
    assert v["blink_count"] == 1
    assert abs(v["blink_times_s"][0] - 6.1) < 0.3
