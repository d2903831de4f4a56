"""Keypoint files as other tools read them: plain CSV, a clean OpenPose folder, sidecars, and
outputs that are refused or replaced whole (never the input, never stale frames).

The series are synthetic (every value known); the video they claim to describe is a small
clip built here, so its SHA-256 is real. Only the CLI test runs the real extractor.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medswap.cli import main
from medswap.errors import KeypointFileError, OutputError
from medswap.keypoints import load_keypoints, read_openpose_json, save_keypoints
from medswap.outputs import sha256_file
from medswap.types import KEYPOINT_GROUPS, KeypointSeries
from medswap.video import write_video


def _clip(path: Path, n: int = 4) -> Path:
    frames = (np.full((48, 64, 3), 90 + 10 * i, np.uint8) for i in range(n))
    return write_video(path, frames, Fraction(25), (64, 48))


def _series(video: Path, n: int = 5, seed: int = 0) -> KeypointSeries:
    """Random points in a 64x48 frame; the right hand is missing (NaN, confidence 0)."""
    rng = np.random.default_rng(seed)
    groups = {}
    for name, k in KEYPOINT_GROUPS.items():
        arr = np.empty((n, k, 3), np.float32)
        arr[..., 0] = rng.uniform(0, 64, (n, k))
        arr[..., 1] = rng.uniform(0, 48, (n, k))
        arr[..., 2] = 1.0
        groups[name] = arr
    groups["right_hand"][..., :2] = np.nan
    groups["right_hand"][..., 2] = 0.0
    return KeypointSeries(
        frame_index=np.arange(n),
        time_s=np.arange(n) / 25.0,
        groups=groups,
        width=64,
        height=48,
        fps=25.0,
        meta={"video": video.name, "video_sha256": sha256_file(video), "max_frames": None},
    )


def sidecar_path(path: Path) -> Path:
    """Where medswap puts a CSV's or an OpenPose folder's metadata (docs/keypoints.md)."""
    return path.with_name(path.name + ".medswap.json")


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    return _clip(tmp_path / "exam.mp4")


def test_csv_is_plain_for_pandas_with_metadata_in_a_sidecar(clip, tmp_path):
    s = _series(clip)
    out = save_keypoints(s, tmp_path / "k.csv")
    df = pd.read_csv(out)  # no comment line turned into column names
    assert list(df.columns[:4]) == ["frame_index", "time_s", "body.nose.x", "body.nose.y"]
    assert len(df) == 5 and df["frame_index"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(df["body.nose.x"], s.groups["body"][:, 0, 0], rtol=1e-6)
    assert df["right_hand.wrist.x"].isna().all() and (df["right_hand.wrist.c"] == 0).all()
    side = json.loads((tmp_path / "k.csv.medswap.json").read_text())
    assert side["format"] == "medswap-keypoints/1" and side["data_file"] == "k.csv"
    assert side["data_sha256"] == sha256_file(out)
    assert side["meta"]["video_sha256"] == sha256_file(clip)
    back = load_keypoints(out, video=clip)
    np.testing.assert_array_equal(back.groups["body"], s.groups["body"])


def test_csv_without_or_with_a_foreign_sidecar_is_refused(clip, tmp_path):
    out = save_keypoints(_series(clip), tmp_path / "k.csv")
    other = save_keypoints(_series(clip, seed=1), tmp_path / "other.csv")
    # the sidecar of another CSV: it does not describe these rows
    sidecar_path(out).write_bytes(sidecar_path(other).read_bytes())
    with pytest.raises(KeypointFileError) as err:
        load_keypoints(out)
    assert str(err.value) == (
        f"{out}: does not match its sidecar k.csv.medswap.json (the CSV was changed after it "
        "was written, or the sidecar belongs to another file)"
    )
    sidecar_path(out).unlink()
    with pytest.raises(KeypointFileError) as err:
        load_keypoints(out)
    assert str(err.value) == (
        f"{out}: is not a medswap keypoint CSV (no sidecar k.csv.medswap.json beside it)"
    )
    assert err.value.exit_code == 17


def test_keypoints_of_another_video_exit_17(clip, tmp_path):
    s = _series(clip)
    out = save_keypoints(s, tmp_path / "k.csv")
    other = _clip(tmp_path / "other.mp4", n=5)
    with pytest.raises(KeypointFileError) as err:
        load_keypoints(out, video=other)
    assert err.value.exit_code == 17
    assert str(err.value) == (
        f"{out}: keypoints were extracted from another video (sha256 "
        f"{sha256_file(clip)[:12]}...), not other.mp4 (sha256 {sha256_file(other)[:12]}...)"
    )


def _pose_format_frame_numbers(folder: Path) -> list[int]:
    """How pose-format's ``load_openpose_directory`` reads a folder: every file in it is a
    frame, numbered by the second-to-last ``_`` field of its name."""
    return sorted(int(f.name.split("_")[-2]) for f in folder.iterdir())


def test_openpose_folder_holds_only_frames_and_reads_back_through_its_sidecar(clip, tmp_path):
    s = _series(clip)
    folder = save_keypoints(s, tmp_path / "op", fmt="openpose-json")
    assert _pose_format_frame_numbers(folder) == [0, 1, 2, 3, 4]
    assert {p.name for p in tmp_path.iterdir()} >= {"op", "op.medswap.json"}
    side = json.loads((tmp_path / "op.medswap.json").read_text())
    assert side["frame_files"][0] == "exam_000000000000_keypoints.json"
    assert side["meta"]["video_sha256"] == sha256_file(clip)
    back = read_openpose_json(folder)
    np.testing.assert_array_equal(back["time_s"], s.time_s)
    np.testing.assert_allclose(
        back["face_keypoints_2d"][:, :68, :2], s.groups["face_dlib68"][..., :2], atol=1e-3
    )
    # a frame file removed by hand no longer matches what the sidecar lists
    (folder / "exam_000000000004_keypoints.json").unlink()
    with pytest.raises(KeypointFileError) as err:
        read_openpose_json(folder)
    assert str(err.value) == (
        f"{folder}: does not match its sidecar op.medswap.json (4 frame files, the sidecar lists 5)"
    )


def test_openpose_rerun_is_refused_then_replaces_the_folder_whole(clip, tmp_path):
    folder = tmp_path / "op"
    save_keypoints(_series(clip, n=5), folder, fmt="openpose-json")
    with pytest.raises(OutputError) as err:
        save_keypoints(_series(clip, n=3), folder, fmt="openpose-json")
    assert str(err.value) == f"{folder}: keypoint folder exists (pass --overwrite to replace it)"
    save_keypoints(_series(clip, n=3), folder, fmt="openpose-json", overwrite=True)
    # no stale frames 3 and 4 of the longer first run
    assert _pose_format_frame_numbers(folder) == [0, 1, 2]
    assert len(read_openpose_json(folder)["time_s"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exam.mp4", "op", "op.medswap.json"]
    # a folder with something medswap did not write in it is never replaced
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputError) as err:
        save_keypoints(_series(clip, n=3), folder, fmt="openpose-json", overwrite=True)
    assert str(err.value) == (
        f"{folder}: keypoint folder holds 'notes.txt', which medswap did not write; not replaced"
    )
    assert (folder / "notes.txt").read_text() == "mine"


def test_cli_keypoints_refuses_an_existing_output_and_never_writes_the_input(tmp_path, capsys):
    clip = _clip(tmp_path / "exam.mp4")
    out = tmp_path / "k.csv"
    assert main(["-q", "keypoints", str(clip), "-o", str(out), "--max-frames", "2"]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["-q", "keypoints", str(clip), "-o", str(out), "--max-frames", "1"]) == 8
    err = capsys.readouterr().err.strip()
    assert err == f"medswap: error: {out}: keypoint file exists (pass --overwrite to replace it)"
    assert out.read_bytes() == before
    args = ["-q", "keypoints", str(clip), "-o", str(out), "--max-frames", "1", "--overwrite"]
    assert main(args) == 0
    assert len(load_keypoints(out, video=clip)) == 1
    # the input itself, even with --overwrite
    video = clip.read_bytes()
    args = ["-q", "keypoints", str(clip), "-o", str(clip), "--format", "csv", "--overwrite"]
    assert main(args) == 8
    assert capsys.readouterr().err.strip() == (
        f"medswap: error: {clip}: keypoint file would overwrite the input"
    )
    assert clip.read_bytes() == video
