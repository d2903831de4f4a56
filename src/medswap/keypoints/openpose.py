"""OpenPose-style JSON: one file per frame in OpenPose's ``people`` format.

The OpenPose export writes one ``<stem>_<frame:012d>_keypoints.json`` per frame in OpenPose's
``people`` format, so existing analysis code reads it unchanged: ``pose_keypoints_2d`` in the
BODY_25 order (built from MediaPipe's 33 points; the neck and mid-hip are shoulder and hip
midpoints; the small toes, which MediaPipe does not have, are 0), ``hand_left_keypoints_2d``
and ``hand_right_keypoints_2d`` (the same 21-point order) and ``face_keypoints_2d``: dlib's 68
points plus the right and left pupils from the mesh irises, 70 points as OpenPose's face.
OpenPose writes a missing point as ``0, 0, 0``; so does this export. The folder holds nothing
but the frame files (readers such as pose-format's ``load_openpose_directory`` parse every file
name in it); its metadata goes to the sidecar ``FOLDER.medswap.json`` beside the folder. The
folder is written under a partial name and swapped in whole, so a re-run never leaves frame
files of an earlier, longer run behind.

Every file is written through :mod:`medswap.outputs`; the schema, units and the meaning of
``c`` per group are written down in ``docs/keypoints.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medswap.errors import KeypointFileError, OutputError
from medswap.keypoints.fileformat import FORMAT, keypoint_metadata, sidecar_path
from medswap.keypoints.schema import MESH_LEFT_IRIS, MESH_RIGHT_IRIS
from medswap.outputs import (
    atomic_path,
    check_new_output,
    json_safe,
    partial_path,
    same_file,
)
from medswap.types import KeypointSeries

#: BODY_25 from MediaPipe pose: an index, a pair to average, or None (no such point).
BODY25_FROM_MP: tuple[int | tuple[int, int] | None, ...] = (
    0,
    (11, 12),
    12,
    14,
    16,
    11,
    13,
    15,
    (23, 24),
    24,
    26,
    28,
    23,
    25,
    27,
    5,
    2,
    8,
    7,
    31,
    None,
    29,
    32,
    None,
    30,
)


def body25(body: np.ndarray) -> np.ndarray:
    """(N, 33, 3) MediaPipe pose -> (N, 25, 3) BODY_25; a midpoint needs both of its points."""
    n = body.shape[0]
    out = np.full((n, 25, 3), np.nan, dtype=np.float64)
    out[:, :, 2] = 0.0
    for j, src in enumerate(BODY25_FROM_MP):
        if src is None:
            continue
        if isinstance(src, tuple):
            a, b = body[:, src[0]], body[:, src[1]]
            out[:, j, :2] = (a[:, :2] + b[:, :2]) / 2
            out[:, j, 2] = np.minimum(a[:, 2], b[:, 2])
        else:
            out[:, j] = body[:, src]
    return out


def face70(dlib68: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """dlib's 68 points plus the right and left pupil centres from the mesh irises."""
    return np.concatenate([dlib68, mesh[:, [MESH_RIGHT_IRIS, MESH_LEFT_IRIS]]], axis=1)


def _flat(points: np.ndarray) -> list[float]:
    pts = np.array(points, dtype=np.float64)
    missing = ~np.isfinite(pts[:, :2]).all(axis=1)
    pts[missing] = 0.0
    return [round(float(v), 3) for v in pts.reshape(-1)]


def _openpose_doc(parts: tuple[np.ndarray, ...]) -> dict:
    """One frame in OpenPose's ``people`` format; a frame with no point has no person."""
    pose, face, left, right = parts
    people = []
    if any(np.isfinite(p[:, :2]).any() for p in parts):
        people.append(
            {
                "person_id": [-1],
                "pose_keypoints_2d": _flat(pose),
                "face_keypoints_2d": _flat(face),
                "hand_left_keypoints_2d": _flat(left),
                "hand_right_keypoints_2d": _flat(right),
                "pose_keypoints_3d": [],
                "face_keypoints_3d": [],
                "hand_left_keypoints_3d": [],
                "hand_right_keypoints_3d": [],
            }
        )
    return {"version": 1.3, "people": people}


def _ours(entry: Path) -> bool:
    """Whether a folder entry is one medswap's OpenPose export writes (or wrote before 0.x)."""
    return entry.is_file() and (
        entry.name.endswith("_keypoints.json") or entry.name == "medswap_meta.json"
    )


def check_new_folder(path: Path, overwrite: bool, inputs: Sequence[str | Path]) -> None:
    """Refuse an OpenPose folder that must not be (re)written; see :func:`check_new_output`.

    An existing folder is replaced whole, so with ``overwrite`` it must hold only files this
    export writes: a folder with anything else in it (the input video, a user's notes) is
    never replaced. An existing empty folder is simply used.
    """
    for src in inputs:
        if same_file(src, path):
            raise OutputError("keypoint folder would overwrite the input", path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError("keypoint folder's parent folder does not exist", path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError("keypoint folder's parent folder is not writable", path)
    if path.exists() and not path.is_dir():
        raise OutputError("keypoint folder path is a file, not a folder", path)
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise OutputError("keypoint folder exists (pass --overwrite to replace it)", path)
        foreign = sorted(e.name for e in path.iterdir() if not _ours(e))
        if foreign:
            raise OutputError(
                f"keypoint folder holds {foreign[0]!r}, which medswap did not write; not replaced",
                path,
            )


def _swap_in(new: Path, final: Path) -> None:
    """Put the complete folder ``new`` at ``final``, replacing an earlier one whole."""
    if not final.exists():
        os.replace(new, final)
        return
    old = final.with_name(f".{final.name}.medswap-old")
    if old.exists():
        shutil.rmtree(old)
    os.replace(final, old)
    try:
        os.replace(new, final)
    except OSError:
        os.replace(old, final)  # put the earlier folder back as it was
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_openpose_json(
    series: KeypointSeries,
    out_dir: str | Path,
    stem: str | None = None,
    *,
    overwrite: bool = False,
    inputs: Sequence[str | Path] = (),
) -> Path:
    """One OpenPose-style JSON per frame in ``out_dir``; the metadata in ``out_dir.medswap.json``.

    The frames are written into a hidden partial folder that replaces ``out_dir`` whole once
    complete: an existing folder is refused without ``overwrite``, and never keeps stale
    frames of an earlier run.
    """
    out_dir = Path(out_dir)
    check_new_folder(out_dir, overwrite, inputs)
    check_new_output(
        sidecar_path(out_dir), overwrite=overwrite, inputs=inputs, what="keypoint sidecar"
    )
    stem = stem or Path(str(series.meta.get("video", "video"))).stem
    pose = body25(series.groups["body"])
    face = face70(series.groups["face_dlib68"], series.groups["face_mesh"])
    g = series.groups
    tmp = partial_path(out_dir)
    try:
        if tmp.exists():  # left by a run that was killed
            shutil.rmtree(tmp)
        tmp.mkdir()
        names = []
        for i, frame_index in enumerate(series.frame_index):
            name = f"{stem}_{int(frame_index):012d}_keypoints.json"
            doc = _openpose_doc((pose[i], face[i], g["left_hand"][i], g["right_hand"][i]))
            (tmp / name).write_text(json.dumps(doc))
            names.append(name)
        meta = {
            **keypoint_metadata(series),
            "frame_files": names,
            "frame_index": series.frame_index.tolist(),
            "time_s": series.time_s.tolist(),
        }
        with atomic_path(sidecar_path(out_dir), "keypoint sidecar") as side:
            side.write_text(json.dumps(json_safe(meta)))
            _swap_in(tmp, out_dir)
    except OSError as exc:
        problem = exc.strerror or str(exc)
        raise OutputError(f"cannot write the keypoint folder ({problem})", out_dir) from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    return out_dir


def _openpose_sidecar(folder: Path, files: list[Path]) -> dict | None:
    """The sidecar of a medswap OpenPose folder (None for another tool's folder), checked
    against the frame files in it."""
    side = sidecar_path(folder)
    if not side.is_file():
        return None
    try:
        md = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        raise KeypointFileError(f"its sidecar {side.name} is not readable JSON", folder) from None
    listed = md.get("frame_files") if isinstance(md, dict) else None
    if listed != [f.name for f in files] or md.get("format") != FORMAT:
        raise KeypointFileError(
            f"does not match its sidecar {side.name} ({len(files)} frame files, the sidecar "
            f"lists {len(listed) if isinstance(listed, list) else 'none'})",
            folder,
        )
    return md


def read_openpose_json(folder: str | Path) -> dict[str, np.ndarray]:
    """Read an OpenPose JSON folder: ``frame_index`` and (N, K, 3) arrays with NaN for 0,0,0.

    Keys: ``pose_keypoints_2d`` (25), ``face_keypoints_2d`` (70), ``hand_left_keypoints_2d``
    and ``hand_right_keypoints_2d`` (21). A frame without people is all NaN. A folder medswap
    wrote is checked against its sidecar (``FOLDER.medswap.json``), which also gives
    ``time_s``; a folder of OpenPose itself (no sidecar) reads with frame indices from the
    file names.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*_keypoints.json"))
    if not files:
        raise KeypointFileError("no *_keypoints.json files", folder)
    md = _openpose_sidecar(folder, files)
    sizes = {
        "pose_keypoints_2d": 25,
        "face_keypoints_2d": 70,
        "hand_left_keypoints_2d": 21,
        "hand_right_keypoints_2d": 21,
    }
    out = {k: np.full((len(files), n, 3), np.nan) for k, n in sizes.items()}
    index = []
    for i, f in enumerate(files):
        index.append(int(f.name.rsplit("_", 2)[-2]))
        people = json.loads(f.read_text()).get("people", [])
        if not people:
            continue
        for key, n in sizes.items():
            arr = np.asarray(people[0].get(key, []), dtype=np.float64).reshape(-1, 3)
            if arr.shape != (n, 3):
                raise KeypointFileError(f"{key} has {arr.shape[0]} points, expected {n}", f)
            zero = (arr == 0).all(axis=1)
            arr[zero] = np.nan
            out[key][i] = arr
    out["frame_index"] = np.asarray(index, dtype=np.int64)
    if md is not None:
        out["frame_index"] = np.asarray(md["frame_index"], dtype=np.int64)
        out["time_s"] = np.asarray(md["time_s"], dtype=np.float64)
    return out
