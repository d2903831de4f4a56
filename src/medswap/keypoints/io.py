"""Keypoint files: Parquet and CSV (one row per frame) and OpenPose-style JSON.

Parquet and CSV hold the same wide table: ``frame_index``, ``time_s``, then three columns per
point named ``<group>.<point>.<x|y|c>`` (for example ``body.left_shoulder.x``). A missing point
is an empty cell (NaN), never 0. The metadata (format version, video name, its SHA-256, size,
fps, the versions and hashes of every model) travels inside a Parquet file's schema metadata;
a CSV stays plain (the header row first, so ``pandas.read_csv(path)`` gives the columns) and its
metadata goes to a sidecar ``NAME.csv.medswap.json`` that also records the CSV's own SHA-256, so
a file can be checked against the video it claims to describe (:func:`load_keypoints` with
``video=``) and a CSV against the sidecar written with it. Per-frame scores that are not
points follow the point columns, one column each, named ``<set>.<name>``
(``face_blendshapes.jawOpen``); a file without them (written before they existed) still
reads, with no scores.

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

Every file is written through :mod:`medswap.outputs` (partial name, then rename); the schema,
units and the meaning of ``c`` per group are written down in ``docs/keypoints.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medswap.errors import InputNotFoundError, KeypointFileError, OutputError
from medswap.keypoints.blendshapes import BLENDSHAPE_NAMES
from medswap.keypoints.schema import LAYOUTS, MESH_LEFT_IRIS, MESH_RIGHT_IRIS
from medswap.outputs import (
    atomic_path,
    check_new_output,
    json_safe,
    partial_path,
    same_file,
    sha256_file,
    write_json_atomic,
)
from medswap.types import KEYPOINT_GROUPS, SCORE_SETS, KeypointSeries

FORMAT = "medswap-keypoints/1"
#: The sidecar beside a CSV or an OpenPose folder: ``NAME.medswap.json``.
SIDECAR_SUFFIX = ".medswap.json"
_AXES = ("x", "y", "c")
FORMATS = ("parquet", "csv", "openpose-json", "npz")


def columns() -> list[str]:
    """The point columns of the wide table, in file order."""
    return [
        f"{group}.{name}.{axis}"
        for group in KEYPOINT_GROUPS
        for name in LAYOUTS[group].names
        for axis in _AXES
    ]


#: The names behind each score set's columns.
SCORE_NAMES: dict[str, tuple[str, ...]] = {"face_blendshapes": BLENDSHAPE_NAMES}


def score_columns(sets: list[str] | tuple[str, ...]) -> list[str]:
    """The score columns of the given sets, in file order (after the point columns)."""
    return [f"{s}.{name}" for s in SCORE_SETS if s in sets for name in SCORE_NAMES[s]]


def _score_sets(series: KeypointSeries) -> list[str]:
    return [s for s in SCORE_SETS if s in series.scores]


def _metadata(series: KeypointSeries) -> dict:
    return {
        "format": FORMAT,
        "width": series.width,
        "height": series.height,
        "fps": series.fps,
        "groups": {name: int(arr.shape[1]) for name, arr in series.groups.items()},
        "scores": {name: int(series.scores[name].shape[1]) for name in _score_sets(series)},
        "meta": series.meta,
    }


def _score_matrix(series: KeypointSeries) -> np.ndarray:
    parts = [series.scores[s] for s in _score_sets(series)]
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(series), 0), np.float32)


def _scores_from(matrix: np.ndarray, md: dict, path: Path) -> dict[str, np.ndarray]:
    """Split the score columns back into sets, as the metadata lists them."""
    sets = [s for s in SCORE_SETS if s in md.get("scores", {})]
    unknown = set(md.get("scores", {})) - set(sets)
    if unknown:
        raise KeypointFileError(f"has unknown score set {sorted(unknown)[0]!r}", path)
    out, col = {}, 0
    for s in sets:
        k = SCORE_SETS[s]
        out[s] = np.ascontiguousarray(matrix[:, col : col + k], dtype=np.float32)
        col += k
    return out


def _matrix(series: KeypointSeries) -> np.ndarray:
    n = len(series)
    parts = [series.groups[g].reshape(n, -1) for g in KEYPOINT_GROUPS]
    return np.concatenate(parts, axis=1) if n else np.zeros((0, len(columns())), np.float32)


def _from_matrix(
    frame_index, time_s, matrix, md: dict, path: Path, scores: dict | None = None
) -> KeypointSeries:
    groups = {}
    col = 0
    for g, k in KEYPOINT_GROUPS.items():
        groups[g] = np.ascontiguousarray(
            matrix[:, col : col + 3 * k].reshape(-1, k, 3), dtype=np.float32
        )
        col += 3 * k
    try:
        return KeypointSeries(
            frame_index=np.asarray(frame_index, dtype=np.int64),
            time_s=np.asarray(time_s, dtype=np.float64),
            groups=groups,
            width=int(md["width"]),
            height=int(md["height"]),
            fps=float(md["fps"]),
            meta=dict(md.get("meta", {})),
            scores=scores or {},
        )
    except (KeyError, ValueError) as exc:
        raise KeypointFileError(f"not a valid medswap keypoint file ({exc})", path) from None


def _pyarrow(error: type, path: Path):
    """pyarrow and pyarrow.parquet, or a one-line error (a pyarrow built for NumPy 2 fails to
    import beside MediaPipe's NumPy 1.26)."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise error(
            f"Parquet is unavailable, pyarrow does not load ({exc}); use CSV", path
        ) from None
    return pyarrow, pyarrow.parquet


def sidecar_path(path: str | Path) -> Path:
    """The metadata file beside a CSV or an OpenPose folder: ``NAME.medswap.json``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def keypoint_format(path: str | Path, fmt: str | None = None) -> str:
    """``fmt``, or the format the output's suffix names (a name without one is a folder)."""
    fmt = fmt or {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}.get(
        Path(path).suffix.lower(), "openpose-json"
    )
    if fmt not in FORMATS:
        raise OutputError(f"unknown keypoint format '{fmt}'; use one of {', '.join(FORMATS)}")
    return fmt


def _ours(entry: Path) -> bool:
    """Whether a folder entry is one medswap's OpenPose export writes (or wrote before 0.x)."""
    return entry.is_file() and (
        entry.name.endswith("_keypoints.json") or entry.name == "medswap_meta.json"
    )


def _check_new_folder(path: Path, overwrite: bool, inputs: Sequence[str | Path]) -> None:
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


def check_keypoint_output(
    path: str | Path,
    fmt: str | None = None,
    *,
    overwrite: bool = False,
    inputs: Sequence[str | Path] = (),
) -> str:
    """Refuse, before any extraction, a keypoint output (and its sidecar) that must not be
    written: an existing one without ``overwrite``, one of ``inputs`` ever. Returns the format.
    """
    path = Path(path)
    fmt = keypoint_format(path, fmt)
    if fmt == "openpose-json":
        _check_new_folder(path, overwrite, inputs)
    else:
        check_new_output(path, overwrite=overwrite, inputs=inputs, what="keypoint file")
    if fmt in ("csv", "openpose-json"):
        check_new_output(
            sidecar_path(path), overwrite=overwrite, inputs=inputs, what="keypoint sidecar"
        )
    return fmt


def save_keypoints(
    series: KeypointSeries,
    path: str | Path,
    fmt: str | None = None,
    *,
    overwrite: bool = False,
    inputs: Sequence[str | Path] = (),
) -> Path:
    """Write keypoints as Parquet, CSV or an OpenPose JSON folder (``fmt`` or the suffix).

    An existing output is refused unless ``overwrite``; ``inputs`` (the video the keypoints
    come from) are never written. Every file appears complete or not at all.
    """
    path = Path(path)
    fmt = check_keypoint_output(path, fmt, overwrite=overwrite, inputs=inputs)
    if fmt == "openpose-json":
        return write_openpose_json(series, path, overwrite=overwrite, inputs=inputs)
    md = _metadata(series)
    if fmt == "npz":  # the evaluation's cache: fast, no extra dependency
        with atomic_path(path, "keypoint cache") as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                frame_index=series.frame_index,
                time_s=series.time_s,
                matrix=_matrix(series),
                scores=_score_matrix(series),
                medswap=np.array(json.dumps(md)),
            )
        return path
    matrix = np.concatenate([_matrix(series), _score_matrix(series)], axis=1).astype(np.float64)
    names = [*columns(), *score_columns(_score_sets(series))]
    if fmt == "parquet":
        pa, pq = _pyarrow(OutputError, path)
        arrays = [pa.array(series.frame_index, pa.int64()), pa.array(series.time_s, pa.float64())]
        arrays += [pa.array(matrix[:, j].astype(np.float32)) for j in range(matrix.shape[1])]
        table = pa.Table.from_arrays(arrays, names=["frame_index", "time_s", *names])
        table = table.replace_schema_metadata({b"medswap": json.dumps(md).encode()})
        with atomic_path(path, "keypoint file") as tmp:
            pq.write_table(table, tmp)
        return path
    import pandas as pd

    df = pd.DataFrame(matrix, columns=names)
    df.insert(0, "time_s", series.time_s)
    df.insert(0, "frame_index", series.frame_index)
    with atomic_path(path, "keypoint file") as tmp:
        df.to_csv(tmp, index=False, na_rep="")
        sidecar = {**md, "data_file": path.name, "data_sha256": sha256_file(tmp)}
        write_json_atomic(sidecar_path(path), sidecar, "keypoint sidecar")
    return path


def _check_video(series: KeypointSeries, video: str | Path | None, path: Path) -> None:
    if video is None:
        return
    want = series.meta.get("video_sha256")
    have = sha256_file(video)
    if want != have:
        raise KeypointFileError(
            f"keypoints were extracted from another video (sha256 {str(want)[:12]}...), "
            f"not {Path(video).name} (sha256 {have[:12]}...)",
            path,
        )


def _read_sidecar(path: Path) -> dict:
    """The metadata of a CSV from its sidecar, refused when missing or not this CSV's."""
    side = sidecar_path(path)
    if not side.is_file():
        with open(path, errors="replace") as fh:
            if fh.readline().startswith("# medswap-keypoints "):
                raise KeypointFileError(
                    "is a keypoint CSV of an older medswap (metadata in its first line, no "
                    f"sidecar {side.name}); extract the keypoints again",
                    path,
                )
        raise KeypointFileError(
            f"is not a medswap keypoint CSV (no sidecar {side.name} beside it)", path
        )
    try:
        md = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        raise KeypointFileError(f"its sidecar {side.name} is not readable JSON", path) from None
    if not isinstance(md, dict) or md.get("data_sha256") != sha256_file(path):
        raise KeypointFileError(
            f"does not match its sidecar {side.name} (the CSV was changed after it was "
            "written, or the sidecar belongs to another file)",
            path,
        )
    return md


def load_keypoints(path: str | Path, video: str | Path | None = None) -> KeypointSeries:
    """Read a Parquet or CSV keypoint file; with ``video``, refuse one made from another video."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError("no such keypoint file", path)
    if path.suffix.lower() in (".parquet", ".pq"):
        _, pq = _pyarrow(KeypointFileError, path)
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise KeypointFileError(f"not a readable Parquet file ({exc})", path) from None
        raw = (table.schema.metadata or {}).get(b"medswap")
        if raw is None:
            raise KeypointFileError("is not a medswap keypoint file (no metadata)", path)
        md = json.loads(raw)
        wanted = [*columns(), *score_columns(list(md.get("scores", {})))]
        missing = [c for c in ["frame_index", "time_s", *wanted] if c not in table.column_names]
        if missing:
            raise KeypointFileError(f"lacks {len(missing)} columns, first {missing[0]}", path)
        matrix = (
            np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in wanted])
            if table.num_rows
            else np.zeros((0, len(wanted)), np.float32)
        )
        n_points = len(columns())
        series = _from_matrix(
            table.column("frame_index").to_numpy(),
            table.column("time_s").to_numpy(),
            matrix[:, :n_points],
            md,
            path,
            _scores_from(matrix[:, n_points:], md, path),
        )
    elif path.suffix.lower() == ".csv":
        import pandas as pd

        md = _read_sidecar(path)
        try:
            df = pd.read_csv(path, float_precision="round_trip")
        except (ValueError, UnicodeDecodeError) as exc:
            raise KeypointFileError(f"not a readable CSV ({exc})", path) from None
        wanted = score_columns(list(md.get("scores", {})))
        missing = [c for c in ["frame_index", "time_s", *columns(), *wanted] if c not in df.columns]
        if missing:
            raise KeypointFileError(f"lacks {len(missing)} columns, first {missing[0]}", path)
        series = _from_matrix(
            df["frame_index"].to_numpy(),
            df["time_s"].to_numpy(),
            df[columns()].to_numpy(dtype=np.float64),
            md,
            path,
            _scores_from(df[wanted].to_numpy(dtype=np.float64), md, path),
        )
    elif path.suffix.lower() == ".npz":
        try:
            with np.load(path) as z:
                md = json.loads(str(z["medswap"]))
                extra = z["scores"] if "scores" in z.files else np.zeros((len(z["time_s"]), 0))
                series = _from_matrix(
                    z["frame_index"],
                    z["time_s"],
                    z["matrix"],
                    md,
                    path,
                    _scores_from(extra, md, path),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise KeypointFileError(f"not a medswap keypoint cache ({exc})", path) from None
    else:
        raise KeypointFileError("unknown keypoint file type (use .parquet or .csv)", path)
    if md.get("format") != FORMAT:
        raise KeypointFileError(f"has format {md.get('format')!r}, expected {FORMAT}", path)
    _check_video(series, video, path)
    return series


# -- OpenPose ------------------------------------------------------------------------------

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
    _check_new_folder(out_dir, overwrite, inputs)
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
            **_metadata(series),
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
