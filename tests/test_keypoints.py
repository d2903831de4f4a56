"""Keypoint extraction on a real clip, and the round trip through every file format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import shared_video

from medswap.cli import main
from medswap.errors import InputNotFoundError, KeypointFileError
from medswap.keypoints import (
    extract_keypoints,
    load_keypoints,
    read_openpose_json,
    save_keypoints,
    write_openpose_json,
)
from medswap.keypoints.openpose import body25
from medswap.types import KeypointSeries
from medswap.video import read_frames

N = 12


@pytest.fixture(scope="module")
def speech():
    path = shared_video("speech_a.mp4")
    return path, extract_keypoints(path, max_frames=N)


def _pyarrow_loads() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def test_shapes_frames_and_timestamps_match_the_video(speech):
    path, s = speech
    assert len(s) == N and (s.width, s.height) == (700, 700)
    shapes = {g: a.shape for g, a in s.groups.items()}
    assert shapes == {
        "body": (N, 33, 3),
        "left_hand": (N, 21, 3),
        "right_hand": (N, 21, 3),
        "face_mesh": (N, 478, 3),
        "face_dlib68": (N, 68, 3),
    }
    # 52 blendshape scores a frame from the Tasks face landmarker, in 0..1, face in every frame
    bs = s.scores["face_blendshapes"]
    assert bs.shape == (N, 52) and np.isfinite(bs).all()
    assert (bs >= 0).all() and (bs <= 1).all()
    assert "mp_face_landmarker_task" in s.meta["versions"]["models"]
    frames = list(read_frames(path, max_frames=N))
    assert s.frame_index.tolist() == [f.index for f in frames]
    np.testing.assert_allclose(s.time_s, [f.time_s for f in frames])
    assert s.meta["video_sha256"] and s.meta["versions"]["mediapipe"] == "0.10.21"


def test_head_and_shoulders_hips_are_missing_not_guessed(speech):
    _, s = speech
    body = s.groups["body"]
    # hips and everything below are below the frame edge: NaN, never zeros
    assert np.isnan(body[:, 23:, :2]).all()
    assert (body[:, 23:, 2] < 0.5).all()
    # shoulders, nose and the face are seen in every frame
    assert np.isfinite(body[:, [0, 11, 12], :2]).all()
    assert np.isfinite(s.groups["face_mesh"][..., :2]).all()
    assert np.isfinite(s.groups["face_dlib68"][..., :2]).all(axis=(1, 2)).mean() >= 0.9
    # no hands in this clip: missing is NaN with confidence 0
    assert np.isnan(s.groups["left_hand"][..., :2]).all()
    assert (s.groups["left_hand"][..., 2] == 0).all()
    assert not (s.groups["body"][..., :2] == 0).any()


def test_csv_and_npz_round_trip_exactly(speech, tmp_path):
    path, s = speech
    for name in ("k.csv", "k.npz"):
        back = load_keypoints(save_keypoints(s, tmp_path / name), video=path)
        assert back.frame_index.tolist() == s.frame_index.tolist()
        np.testing.assert_array_equal(back.time_s, s.time_s)
        for g in s.groups:
            np.testing.assert_array_equal(back.groups[g], s.groups[g])
        np.testing.assert_array_equal(back.scores["face_blendshapes"], s.scores["face_blendshapes"])
        assert back.meta == json.loads(json.dumps(s.meta))
    # A file written before the blendshapes existed reads, with no scores.
    old = KeypointSeries(s.frame_index, s.time_s, s.groups, s.width, s.height, s.fps, s.meta)
    back = load_keypoints(save_keypoints(old, tmp_path / "old.csv"), video=path)
    assert back.scores == {}
    header = (tmp_path / "k.csv").read_text().splitlines()[0].split(",")
    assert header[-52:][:3] == [
        "face_blendshapes._neutral",
        "face_blendshapes.browDownLeft",
        "face_blendshapes.browDownRight",
    ]


@pytest.mark.skipif(
    not _pyarrow_loads(), reason="pyarrow does not import beside NumPy 1.26 (pin pyarrow<=25.0.1)"
)
def test_parquet_round_trips_exactly(speech, tmp_path):
    path, s = speech
    back = load_keypoints(save_keypoints(s, tmp_path / "k.parquet"), video=path)
    for g in s.groups:
        np.testing.assert_array_equal(back.groups[g], s.groups[g])
    np.testing.assert_array_equal(back.scores["face_blendshapes"], s.scores["face_blendshapes"])
    assert back.meta["video_sha256"] == s.meta["video_sha256"]


def test_keypoint_file_of_another_video_is_refused(speech, tmp_path):
    _, s = speech
    f = save_keypoints(s, tmp_path / "k.csv")
    other = shared_video("speech_b.mp4")
    with pytest.raises(KeypointFileError) as err:
        load_keypoints(f, video=other)
    assert str(err.value) == (
        f"{f}: keypoints were extracted from another video (sha256 "
        f"{s.meta['video_sha256'][:12]}...), not speech_b.mp4 (sha256 "
        f"{err.value.message.rsplit('sha256 ', 1)[1][:12]}...)"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(KeypointFileError, match=r"no sidecar bad\.csv\.medswap\.json"):
        load_keypoints(bad)
    with pytest.raises(InputNotFoundError):
        load_keypoints(tmp_path / "missing.csv")


def test_openpose_json_export(speech, tmp_path):
    _, s = speech
    folder = write_openpose_json(s, tmp_path / "op")
    files = sorted(folder.glob("*_keypoints.json"))
    assert len(files) == N and files[0].name == "speech_a_000000000000_keypoints.json"
    doc = json.loads(files[0].read_text())
    person = doc["people"][0]
    assert len(person["pose_keypoints_2d"]) == 75 and len(person["face_keypoints_2d"]) == 210
    assert len(person["hand_left_keypoints_2d"]) == 63
    assert person["hand_left_keypoints_2d"] == [0.0] * 63  # OpenPose's "missing"
    back = read_openpose_json(folder)
    assert back["frame_index"].tolist() == list(range(N))
    np.testing.assert_allclose(
        back["face_keypoints_2d"][:, :68, :2], s.groups["face_dlib68"][..., :2], atol=1e-3
    )
    np.testing.assert_allclose(
        back["face_keypoints_2d"][:, 68, :2], s.groups["face_mesh"][:, 468, :2], atol=1e-3
    )
    np.testing.assert_allclose(
        back["pose_keypoints_2d"][..., :2], body25(s.groups["body"])[..., :2], atol=2e-3
    )
    neck = (s.groups["body"][:, 11, :2] + s.groups["body"][:, 12, :2]) / 2
    np.testing.assert_allclose(back["pose_keypoints_2d"][:, 1, :2], neck, atol=2e-3)
    assert np.isnan(back["pose_keypoints_2d"][:, 8]).all()  # mid-hip off screen


def test_cli_keypoints_and_bad_inputs(tmp_path, capsys):
    clip = shared_video("signer_small_face.mp4")
    out = tmp_path / "signer.csv"
    assert main(["-q", "keypoints", str(clip), "-o", str(out), "--max-frames", "3"]) == 0
    s = load_keypoints(out, video=clip)
    assert len(s) == 3 and (s.width, s.height) == (320, 240)
    assert main(["keypoints", str(tmp_path / "nope.mp4"), "-o", str(out)]) == 3
    assert "nope.mp4: no such file" in capsys.readouterr().err
    assert main(["keypoints", str(clip), "-o", str(tmp_path / "k.txt")]) == 2
    assert main(["keypoints", str(clip), "-o", str(out), "--max-frames", "0"]) == 2
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert main(["keypoints", str(empty), "-o", str(out)]) == 4
