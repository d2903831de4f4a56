"""The donor's identity geometry with the patient's motion, and the donor chosen per track.

A face recogniser in a lineup reads the patient's resting face shape (outline, jaw, eye
spacing, nose, mouth): the swap must draw the donor's resting shape plus the patient's
deformation from their own, and the resting shape comes from an online estimate per track.
"""

from __future__ import annotations

import numpy as np
import pytest
from media import two_people_clip

from medswap.evaluate.privacy import chance_tail, rank1_passes
from medswap.evaluate.stream import DLIB_PROBES, dlib_stride_for
from medswap.faces.mesh import FACE_OVAL, LEFT_EYE, RIGHT_EYE, RIGID_POINTS
from medswap.geometry import similarity_transform, transform_points
from medswap.pipeline import deidentify
from medswap.swap.donors import builtin_donor, builtin_image, choose_donor, donor_margin
from medswap.swap.engine import MeshSwapper, SwapSettings, _TrackState, keep_mouth_gap
from medswap.swap.neutral import NeutralShape

THRESHOLDS = {"dlib": 0.6, "sface": 0.637}


def test_the_neutral_estimate_ignores_blinks_and_mouth_opening_with_flat_memory():
    rng = np.random.default_rng(0)
    rest = rng.normal(0, 50, (468, 2))
    est = NeutralShape(capacity=32)
    assert np.array_equal(est.update(rest), rest)  # the first frame is the first estimate
    for i in range(1, 3000):
        frame = rest + rng.normal(0, 0.2, rest.shape)
        if i % 10 < 2:  # a blink: the lids move a lot for a few frames
            frame[:40, 1] += 15.0
        if i % 10 in (5, 6, 7):  # speech: the mouth open 30% of the time
            frame[100:160, 1] += 25.0
        neutral = est.update(frame)
        assert est.n_samples <= 32
    assert np.abs(neutral - rest).max() < 1.0  # robust: neither the blinks nor the speech
    assert est.n_samples >= 16  # spread over the whole track, not frozen at the start


def _warp(face: np.ndarray) -> np.ndarray:
    """Another person's resting face: wider cheeks and jaw, eyes apart, a longer lower face."""
    out = face.copy()
    c = face[:468, :2].mean(axis=0)
    h = np.ptp(face[:468, 1])
    rel = (face[:, :2] - c) / h
    out[:, 0] = c[0] + (face[:, 0] - c[0]) * (1.25 + 0.15 * rel[:, 1])
    out[:, 1] = c[1] + (face[:, 1] - c[1]) * (1.0 + 0.2 * np.clip(rel[:, 1], 0, None))
    return out


def _moved(face: np.ndarray, t: int) -> np.ndarray:
    """The same expression and head pose at frame ``t`` for any face: brows up, jaw down."""
    out = face.copy()
    if t % 3 == 2:  # an expression in a third of the frames
        out[[70, 63, 105, 66, 107, 336, 296, 334, 293, 300], 1] -= 6.0
        out[[14, 87, 178, 317, 402, 17, 84, 314, 152, 148, 377], 1] += 9.0
    angle = np.deg2rad(8.0 * np.sin(t / 5))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    c = face[:468, :2].mean(axis=0)
    out[:, :2] = (out[:, :2] - c) @ rot.T * 0.9 + c + (3.0 * t, 0.0)
    return out


def _render(patient: np.ndarray, donor, settings=None, n: int = 30) -> list[np.ndarray]:
    """The geometry the swap draws for ``n`` frames, each normalised onto the donor's pose."""
    swapper = MeshSwapper(settings or SwapSettings(shape=1.0, donor_mouth=True))
    state = _TrackState(donor)
    out = []
    for t in range(n):
        drawn = swapper._shaped(state, _moved(patient, t))
        m = similarity_transform(drawn[RIGID_POINTS], donor.landmarks[RIGID_POINTS])
        out.append(transform_points(m, drawn[:468])[:, :2])
    return out


def test_the_patients_resting_shape_does_not_reach_the_drawn_geometry():
    """Two patients of different face shapes, the same motion: the same geometry is drawn."""
    donor = builtin_donor("grace_hopper")
    a = builtin_donor("astronaut").landmarks.copy()
    # Both pre-aligned onto the donor, so that only their shapes differ, not their framing.
    m = similarity_transform(a[RIGID_POINTS], donor.landmarks[RIGID_POINTS])
    a = transform_points(m, a)
    b = _warp(a)
    mb = similarity_transform(b[RIGID_POINTS], a[RIGID_POINTS])
    b = transform_points(mb, b)
    shapes_differ = np.linalg.norm(a[:468, :2] - b[:468, :2], axis=1).max()
    assert shapes_differ > 10.0
    drawn_a, drawn_b = _render(a, donor), _render(b, donor)
    width = np.ptp(donor.landmarks[:468, 0])
    for t in (27, 28, 29):  # the estimate has settled: most frames are at rest
        gap = np.linalg.norm(drawn_a[t] - drawn_b[t], axis=1).max()
        assert gap < 0.02 * width, (t, gap, shapes_differ)
    # At rest, what is drawn is the donor's resting face, outline and jaw included; the one
    # thing kept is how far the patient's resting mouth is open (the lower lip sits lower).
    rest = np.linalg.norm(drawn_a[27] - donor.landmarks[:468, :2], axis=1)
    outline_eyes_brows_nose = [*FACE_OVAL, *RIGHT_EYE, *LEFT_EYE, 70, 105, 336, 334, 1, 4, 168]
    assert rest[outline_eyes_brows_nose].max() < 0.01 * width
    assert rest.max() <= np.linalg.norm(a[14, :2] - a[13, :2]) + 0.5
    # The defaults keep the patient's mouth (moved as a whole), and nothing else of their shape.
    default_a, default_b = _render(a, donor, SwapSettings()), _render(b, donor, SwapSettings())
    for drawn in (default_a[27], default_b[27]):
        rest = np.linalg.norm(drawn - donor.landmarks[:468, :2], axis=1)
        assert rest[outline_eyes_brows_nose].max() < 0.01 * width


def test_the_mouth_opens_exactly_as_the_patients_with_the_donors_lips():
    donor = builtin_donor("grace_hopper").landmarks
    patient = builtin_donor("astronaut").landmarks.copy()
    patient[[14, 87, 178, 317, 402, 17, 84, 314], 1] += 12.0  # a resting mouth held open
    offset = donor[:468, :2] - patient[:468, :2]
    kept = keep_mouth_gap(offset, donor)
    drawn = patient[:468, :2] + kept
    gap = lambda p: np.linalg.norm(p[14, :2] - p[13, :2])  # noqa: E731
    assert abs(gap(drawn) - gap(patient)) < 0.5 and gap(patient) > 15  # the patient's opening
    # Mouth width and forehead, eyes and outline are the donor's.
    width = lambda p: np.linalg.norm(p[291] - p[61])  # noqa: E731
    assert abs(width(drawn) - width(donor[:, :2])) < 0.5
    far = [10, 33, 263, 234, 454]
    np.testing.assert_allclose(drawn[far], donor[far, :2], atol=1e-6)


@pytest.mark.parametrize(
    ("distances", "chosen"),
    [
        # far for both recognisers beats very far for one and near for the other
        ({"a": {"dlib": 1.2, "sface": 0.40}, "b": {"dlib": 0.8, "sface": 0.85}}, "b"),
        ({"a": {"dlib": 0.8, "sface": 0.85}, "b": {"dlib": 0.9, "sface": 0.95}}, "b"),
        ({"a": {"dlib": 0.9, "sface": 0.95}, "b": {"dlib": 0.9, "sface": 0.95}}, "a"),  # a tie
    ],
)
def test_the_donor_farthest_from_the_patient_for_both_recognisers_is_chosen(distances, chosen):
    assert choose_donor(distances, THRESHOLDS) == chosen
    assert donor_margin(distances["a"], THRESHOLDS) == min(
        distances["a"]["dlib"] / 0.6, distances["a"]["sface"] / 0.637
    )


def test_no_person_gets_their_own_face_as_donor_and_the_report_says_why(tmp_path):
    """Astronaut and Grace Hopper side by side, both portraits offered as donors."""
    src = two_people_clip(tmp_path / "two.mp4", n_frames=6)
    kwargs = {"donors": ["astronaut", "grace_hopper"], "max_frames": 6}
    first = deidentify(src, tmp_path / "a.mp4", **kwargs)
    again = deidentify(src, tmp_path / "b.mp4", **kwargs)
    assert first.donor_choice == again.donor_choice  # reproducible
    by_track = {c["track_id"]: c for c in first.donor_choice}
    assert len(by_track) == 2
    for frame in first.frames:
        for face in frame.faces:
            x_centre = (face.box[0] + face.box[2]) / 2
            person = "astronaut" if x_centre < 320 else "grace_hopper"
            assert face.donor != person
            choice = by_track[face.track_id]
            assert choice["donor"] == face.donor and choice["frames_measured"]
            assert choice["distances"][person]["dlib"] < 0.6  # the person's own portrait
            assert choice["margin"][face.donor] == max(choice["margin"].values())


@pytest.mark.parametrize(
    ("hits", "probes", "passes"),
    [
        (1, 16, True),  # 6.2%: under the 10% bound
        (2, 16, True),  # 12.5%, but a guessing recogniser gets 2 of 16 in 9% of clips
        (4, 16, False),  # 25%: chance gets there in 0.2% of clips
        (16, 16, False),
        (25, 200, False),  # 12.5% over 200 frames is far above chance (3.2%)
        (20, 200, True),  # 10.0%: at the bound
    ],
)
def test_the_lineup_bar_refuses_what_chance_does_not_explain(hits, probes, passes):
    chance = 1 / 31
    assert rank1_passes(hits / probes, probes, chance) is passes


def test_the_chance_tail_is_the_binomial_tail():
    # 1 - (30/31)^16 - 16 (1/31) (30/31)^15, worked by hand
    assert chance_tail(2, 16, 1 / 31) == pytest.approx(0.0926, abs=5e-4)
    assert chance_tail(0, 16, 1 / 31) == 1.0
    assert chance_tail(1, 1, 0.5) == pytest.approx(0.5)


def test_dlib_describes_enough_frames_for_its_lineup_and_no_more():
    # A short clip is described densely (its lineup needs probes); a long one sparsely.
    assert [dlib_stride_for(n) for n in (12, 41, 135, 354, 600, 18000)] == [2, 2, 2, 5, 10, 10]
    for n in (41, 135, 354, 600, 1200, 18000):
        assert n // dlib_stride_for(n) >= min(DLIB_PROBES, n // 2), n
    assert dlib_stride_for(None) == dlib_stride_for(0) == 5  # length unknown: every 5th


def test_a_built_in_donor_is_described_from_the_shipped_gallery_as_on_the_spot():
    from medswap.evaluate.privacy import FaceAnalyser
    from medswap.evaluate.privacy.gallery import describe_still, packaged_donor

    analyser = FaceAnalyser()
    for name in ("grace_hopper", "astronaut"):
        image = builtin_donor(name).image  # as the swap loads it
        assert np.array_equal(builtin_image(name), image)  # what the audit's process compares
        shipped, fresh = packaged_donor(name, image), describe_still(analyser, image)
        assert shipped is not None and shipped.detectors == ("packaged",)
        assert np.linalg.norm(shipped.dlib - fresh.dlib) < 1e-6
        assert float(shipped.sface @ fresh.sface) > 0.99999
    changed = builtin_donor("astronaut").image.copy()
    changed[0, 0] ^= 1  # one pixel off: not the shipped portrait, described on the spot
    assert packaged_donor("astronaut", changed) is None
    assert packaged_donor("someone", changed) is None


def test_a_frames_distances_to_the_whole_gallery_are_each_pairs_distance():
    from medswap.evaluate.privacy import default_gallery
    from medswap.evaluate.privacy.recognisers import distance, distances

    rng = np.random.default_rng(0)
    for r in ("dlib", "sface"):
        rows = np.stack([getattr(i, r) for i in default_gallery().identities])
        probe = rows[3] + rng.normal(0.0, 0.05, rows.shape[1])
        one_by_one = [distance(r, probe, row) for row in rows]
        assert distances(r, probe, rows) == pytest.approx(one_by_one, abs=1e-12)
        assert int(np.argmin(distances(r, probe, rows))) == 3


def test_the_lineup_leaves_out_a_gallery_face_the_donor_resembles_whatever_its_file_is_called():
    """The lineup without the donor drops the donor from the gallery: an attacker's list of
    patients does not hold the face the output wears. A donor given as a file (a photo of someone
    in the gallery, or a variant of a built-in portrait) has another name than its gallery
    entry; that entry must go too, or it stays as a decoy that takes rank-1 from the patient.
    Descriptors are the shipped gallery's (real dlib and SFace readings); the output face is a
    mix of the donor's and the patient's, as a swap that keeps some of the patient would give."""
    from medswap.evaluate.privacy import Gallery, default_gallery, identify
    from medswap.evaluate.privacy.judge import Judge
    from medswap.evaluate.privacy.recognisers import FaceRecord
    from medswap.evaluate.privacy.scanning import FrameScan

    shipped = default_gallery()
    ids = {i.name: i for i in shipped.identities}
    patient = ids["lfw_subset_000"]
    gallery = Gallery("test", [i for i in shipped.identities if i.name != patient.name])
    donor = ids["astronaut"]
    record = FaceRecord(np.zeros(4), ("file",), donor.dlib.copy(), donor.sface.copy())
    mix = {r: 0.6 * getattr(donor, r) + 0.4 * getattr(patient, r) for r in ("dlib", "sface")}
    mix["sface"] /= np.linalg.norm(mix["sface"])
    template = {"dlib": patient.dlib, "sface": patient.sface}

    box = np.array([100.0, 100.0, 300.0, 300.0])  # the same place in both frames
    original = FaceRecord(box, ("yunet",), patient.dlib, patient.sface)
    output = FaceRecord(box.copy(), ("yunet",), mix["dlib"], mix["sface"])
    scan = FrameScan(0, 0.0, True, original, [output])

    def rates(ident: dict) -> dict:
        rank1 = {r: v["rank1_rate_without_donors"] for r, v in ident["recognisers"].items()}
        return {"chance": ident["chance_rank1_without_donors"], "rank1": rank1}

    def lineup(donor_name: str, described: bool = True) -> dict:
        donors = {donor_name: record} if described else {}
        judge = Judge(template, gallery, donors, [donor_name])
        judge.add(scan)
        return rates(judge.identification())

    by_name, by_file = lineup("astronaut"), lineup("astronaut_grace_lips_0.04")
    assert by_name["chance"] == round(1 / len(gallery.identities), 4)  # the donor out, patient in
    assert by_file == by_name
    assert by_name["rank1"]["sface"] == 1.0  # SFace finds the patient once the decoy is gone
    # Known by name only, the gallery's astronaut stays in and takes rank-1 from the patient.
    decoy = lineup("astronaut_grace_lips_0.04", described=False)
    assert decoy["chance"] == round(1 / (len(gallery.identities) + 1), 4)
    assert decoy["rank1"]["sface"] == 0.0
    # identify() (the benchmarks' lineup) leaves the decoy out too once given the descriptors.
    name = "astronaut_grace_lips_0.04"
    assert rates(identify([scan], template, gallery, [name], {name: record})) == by_file
    assert rates(identify([scan], template, gallery, [name])) == decoy
