"""Blinks and gaze on the donor face: the pure eye geometry, the shut-eye texture, and a swap
whose patient closes one eye, read back by MediaPipe's face mesh on the swapped image."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import cv2
import numpy as np
import pytest

from medswap.faces.track import FAST_GROUPS, keep_fast_motion
from medswap.measures.face import MESH_LEFT_EYE, MESH_RIGHT_EYE, eye_aspect_ratio
from medswap.swap.donors import builtin_donor
from medswap.swap.engine import MeshSwapper, SwapSettings
from medswap.swap.eyes import (
    EYES,
    FADE_OPENNESS,
    FADE_WEIGHTS,
    eye_openings,
    fade_from_readings,
    fixed_fade,
    gaze_shifts,
    lid_offset,
    lids_at,
    measure_shut_fade,
    openness,
    shut_eye_texture,
)


def _shut_right_eye(lm: np.ndarray) -> np.ndarray:
    """The landmarks with the right eye's upper and lower lids both on their midline."""
    out = lm.copy()
    _, _, up, lo = EYES[0]
    mid = 0.5 * (out[up] + out[lo])
    out[up], out[lo] = mid, mid
    return out


def test_openness_is_one_for_the_neutral_face_and_zero_for_a_shut_eye():
    lm = builtin_donor("astronaut").landmarks
    assert np.allclose(openness(lm, lm), [1.0, 1.0])
    shut = _shut_right_eye(lm)
    assert eye_openings(shut)[0] == pytest.approx(0.0, abs=1e-9)
    assert openness(shut, lm) == pytest.approx([0.0, 1.0])


def test_shut_fade_follows_the_readings_and_never_flickers():
    # A donor whose eye reads (1 - 0.8 w) open whatever its lids: the fade that reads openness
    # o is w = (1 - o) / 0.8, and all of it below the floor of 0.2.
    readings = np.tile(1.0 - 0.8 * np.array(FADE_WEIGHTS), (len(FADE_OPENNESS), 1))
    fade = fade_from_readings(readings)
    assert fade.floor == pytest.approx(0.2) and fade.measured
    assert fade(np.array([1.0, 0.8, 0.6, 0.4])) == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert fade(np.array([0.1, 0.0])) == pytest.approx([1.0, 1.0])
    # Jitter in the readings (a wider reading at more fade, a missed face) moves no weight up
    # as the eye opens.
    noisy = readings.copy()
    noisy[2, 3], noisy[4, 1] = 0.95, np.nan
    w = fade_from_readings(noisy).weight
    assert np.all(np.diff(w) <= 0) and w[-1] == 0.0
    with pytest.raises(ValueError, match="no reading of the donor's eyes"):
        fade_from_readings(np.full_like(readings, np.nan))


def test_a_donor_whose_shut_eye_reads_half_open_keeps_the_fixed_curve():
    readings = np.tile(1.0 - 0.5 * np.array(FADE_WEIGHTS), (len(FADE_OPENNESS), 1))
    fade = fade_from_readings(readings)
    assert fade.floor == pytest.approx(0.5) and not fade.measured
    assert fade.weight == pytest.approx(fixed_fade(fade.openness))  # what is used
    o = np.array([1.0, 0.75, 0.5, 0.25, 0.0])
    assert fade(o) == pytest.approx(fixed_fade(o))
    assert fixed_fade(o)[0] == 0.0 and fixed_fade(o)[-1] == 1.0
    assert np.all(np.diff(fixed_fade(o)) > 0)
    # Measured on the built-in portraits: Grace Hopper's glasses hold her shut eye open.
    assert not builtin_donor("grace_hopper").shut_fade.measured
    assert builtin_donor("astronaut").shut_fade.measured


def test_measured_fade_makes_the_landmarker_read_the_donor_as_shut_as_the_lids():
    """The fade measured on a donor, applied to that donor with its lids partly shut, reads
    (by MediaPipe's face mesh, still image) within 0.15 of the lids' openness."""
    from medswap.faces.mesh import FaceMesher
    from medswap.swap.eyes import eye_reading, with_shut_eyes
    from medswap.swap.geometry import apply_maps, triangulate, warp_maps

    d = builtin_donor("astronaut")
    fade = d.shut_fade
    assert fade.floor < 0.3  # her shut-eye texture reads shut
    pts = d.landmarks[:468]
    h, w = d.image.shape[:2]
    mesher = FaceMesher(max_faces=1, video=False)
    try:
        open_reading = eye_reading(mesher(d.image)[0])
        for o in (0.7, 0.5, 0.3):
            maps = warp_maps(lids_at(pts, o), pts, triangulate(pts), (0, 0, w, h))
            k = fade(np.array([o, o]))
            assert 0.0 < k[0] < 1.0
            face = with_shut_eyes(apply_maps(d.image, maps), d.shut_eyes, k, maps)
            shown = np.ascontiguousarray(np.where(maps.covered[..., None], face, d.image))
            read = eye_reading(mesher(shown)[0]) / open_reading
            assert read == pytest.approx(o, abs=0.15), f"lids at {o}: read {read:.2f}"
    finally:
        mesher.close()


def test_lid_offset_drops_only_the_part_across_a_shut_eye():
    ref = builtin_donor("astronaut").landmarks
    rng = np.random.default_rng(1)
    offset = rng.normal(0, 2, (468, 2))
    assert np.array_equal(lid_offset(offset, ref, np.ones(2)), offset)
    out = lid_offset(offset, ref, np.array([0.0, 1.0]))
    outer, inner, up, lo = EYES[0]
    axis = ref[inner, :2] - ref[outer, :2]
    axis /= np.linalg.norm(axis)
    normal = np.array([-axis[1], axis[0]])
    lids = up + lo
    assert np.allclose(out[lids] @ normal, 0.0)  # nothing left that opens the eye
    assert np.allclose(out[lids] @ axis, offset[lids] @ axis)  # along the eye: unchanged
    others = np.setdiff1d(np.arange(468), lids)
    assert np.array_equal(out[others], offset[others])


def test_fast_points_keep_their_raw_motion_relative_to_smoothed_anchors():
    rng = np.random.default_rng(2)
    raw = rng.normal(0, 50, (478, 3))
    smoothed = raw + np.array([3.0, -2.0, 0.0])  # the smoother lags by a constant here
    smoothed[100] += 5.0  # and moved a point that is not fast
    out = keep_fast_motion(raw, smoothed)
    for anchors, moving in FAST_GROUPS:
        shift = smoothed[anchors].mean(0) - raw[anchors].mean(0)
        assert np.allclose(out[moving], raw[moving] + shift)
        assert np.array_equal(out[anchors], smoothed[anchors])
    assert np.array_equal(out[100], smoothed[100])


def test_gaze_shift_is_zero_for_the_donors_own_gaze_and_follows_the_patients():
    donor = builtin_donor("astronaut").landmarks
    assert np.allclose(gaze_shifts(donor, donor), 0.0)
    patient = donor.copy()
    outer, inner = EYES[0][0], EYES[0][1]
    width = np.linalg.norm(donor[inner, :2] - donor[outer, :2])
    axis = (donor[inner, :2] - donor[outer, :2]) / width
    patient[468:473, :2] += 0.1 * width * axis  # the right iris looks toward the nose
    right, left = gaze_shifts(patient, donor)
    assert np.allclose(right, 0.1 * width * axis, atol=1e-6)
    assert np.allclose(left, 0.0)


def test_shut_eye_texture_hides_the_iris_and_changes_nothing_away_from_the_eyes():
    d = builtin_donor("astronaut")
    shut = shut_eye_texture(d.image, d.landmarks)
    near = (shut.masks[0] + shut.masks[1]) > 1e-3
    assert np.array_equal(shut.image[~near], d.image[~near])
    grey_before = cv2.cvtColor(d.image, cv2.COLOR_RGB2GRAY).astype(float)
    grey_after = cv2.cvtColor(shut.image, cv2.COLOR_RGB2GRAY).astype(float)
    for centre in (468, 473):
        c = d.landmarks[centre, :2]
        r = np.mean(np.linalg.norm(d.landmarks[centre + 1 : centre + 5, :2] - c, axis=1))
        yy, xx = np.mgrid[0 : d.image.shape[0], 0 : d.image.shape[1]]
        iris = (xx - c[0]) ** 2 + (yy - c[1]) ** 2 <= (0.6 * r) ** 2
        assert grey_after[iris].mean() > grey_before[iris].mean() + 25  # dark iris -> lid skin


def _ears_after_swap(blink: bool) -> np.ndarray:
    """Swap Grace Hopper onto the astronaut portrait whose right eye is made to shut."""
    from medswap.faces.mesh import FaceMesher

    patient, donor = builtin_donor("astronaut"), builtin_donor("grace_hopper")
    swapper = MeshSwapper(SwapSettings(blink=blink))
    for _ in range(5):  # the track's neutral face: both eyes open
        swapper.swap(patient.image.copy(), 0, patient.landmarks, donor)
    frame = patient.image.copy()
    swapper.swap(frame, 0, _shut_right_eye(patient.landmarks), donor)
    mesher = FaceMesher(max_faces=1, video=False)
    try:
        (lm,) = mesher(frame)
    finally:
        mesher.close()
    return np.array([eye_aspect_ratio(lm[None], eye)[0] for eye in (MESH_RIGHT_EYE, MESH_LEFT_EYE)])


def test_the_swapped_face_shuts_the_eye_the_patient_shuts():
    right, left = _ears_after_swap(blink=True)
    squeezed_right, squeezed_left = _ears_after_swap(blink=False)
    assert right < 0.5 * left, (right, left)
    # Without the shut-eye texture the squeezed donor eye reads as more open.
    assert right / left < squeezed_right / squeezed_left - 0.1


def test_a_donor_whose_eyes_cannot_be_read_keeps_the_fixed_curve(monkeypatch):
    import medswap.swap.donors as donors

    def unreadable(*args, **kwargs):
        raise ValueError("the donor's open eyes cannot be read: cannot measure its fade")

    monkeypatch.setattr(donors, "measure_shut_fade", unreadable)
    fade = donors.donor_fade(builtin_donor("astronaut"))
    o = np.array([1.0, 0.5, 0.0])
    assert not fade.measured and fade(o) == pytest.approx(fixed_fade(o))
    # A reader that sees no open eye is refused, not divided by.
    d = builtin_donor("astronaut")
    with pytest.raises(ValueError, match="open eyes cannot be read"):
        measure_shut_fade(d.image, d.landmarks, d.shut_eyes, lambda image: 0.0)


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as fh:
            return any(line.startswith("flags") and flag in line.split() for line in fh)
    except OSError:
        return False


@pytest.mark.skipif(
    platform.machine() != "x86_64" or not _cpu_has("avx2"),
    reason="OpenBLAS's Haswell and Prescott kernels run on x86-64 with AVX2 only",
)
def test_the_morph_is_the_same_image_whichever_blas_kernels_compute_it():
    """The morph's shipped fade is keyed on its exact pixels, so they must not depend on the
    CPU: with AVX-512 kernels its pixels once differed from those of AVX2 ones (a last-bit
    difference in a BLAS sum moved pixels at half a level), and the fade was not found."""
    code = "from medswap.swap.donors import builtin_donor; print(builtin_donor().image_sha256)"
    here = builtin_donor("average").image_sha256
    for coretype in ("Haswell", "Prescott"):
        env = dict(os.environ, OPENBLAS_CORETYPE=coretype)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.split()[-1] == here, coretype


def test_the_shipped_fades_of_the_built_in_donors_are_what_the_face_mesh_reads_now():
    """Each built-in portrait's fade comes from the package (no reading before the first face)
    and equals a fresh measurement; another image, even one pixel off, is measured afresh."""
    from dataclasses import replace

    from medswap.swap.donors import BUILTIN_DONORS, Donor, donor_fade, packaged_fade

    for name in BUILTIN_DONORS:
        d = builtin_donor(name)
        shipped, fresh = packaged_fade(d), donor_fade(d)
        assert shipped is not None, name
        np.testing.assert_allclose(shipped.readings, fresh.readings, atol=1e-3, err_msg=name)
        assert shipped.measured == fresh.measured and shipped.floor == pytest.approx(fresh.floor)
        o = np.linspace(0.0, 1.0, 11)
        assert shipped(o) == pytest.approx(fresh(o), abs=1e-3), name
    d = builtin_donor("astronaut")
    changed = d.image.copy()
    changed[0, 0, 0] ^= 1
    other = replace(d, image=changed)
    assert isinstance(other, Donor) and packaged_fade(other) is None
    # A donor's fade no longer waits for another's: one lock per image.
    from medswap.swap.donors import _fade_lock

    assert _fade_lock(d.image_sha256) is not _fade_lock(other.image_sha256)
    assert _fade_lock(d.image_sha256) is _fade_lock(d.image_sha256)
