"""Keypoint files: Parquet and CSV (one row per frame) and OpenPose-style JSON.

Parquet and CSV hold the same wide table: ``frame_index``, ``time_s``, then three columns per
point named ``<group>.<point>.<x|y|c>`` (for example ``body.left_shoulder.x``). A missing point
is an empty cell (NaN), never 0. The metadata travels inside the file (Parquet schema metadata;
the first ``#`` line of a CSV): format version, video name, its SHA-256, size, fps and the
versions and hashes of every model, so a file can be checked against the video it claims to
describe (:func:`load_keypoints` with ``video=``). Per-frame scores that are not points follow
the point columns, one column each, named ``<set>.<name>`` (``face_blendshapes.jawOpen``);
a file without them (written before they existed) still reads, with no scores.

The OpenPose export writes one ``<stem>_<frame:012d>_keypoints.json`` per frame in OpenPose's
``people`` format, so existing analysis code reads it unchanged: ``pose_keypoints_2d`` in the
BODY_25 order (built from MediaPipe's 33 points; the neck and mid-hip are shoulder and hip
midpoints; the small toes, which MediaPipe does not have, are 0), ``hand_left_keypoints_2d``
and ``hand_right_keypoints_2d`` (the same 21-point order) and ``face_keypoints_2d``: dlib's 68
points plus the right and left pupils from the mesh irises, 70 points as OpenPose's face.
OpenPose writes a missing point as ``0, 0, 0``; so does this export.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from medswap.errors import AlignmentError, InputNotFoundError, KeypointFileError, OutputError
from medswap.keypoints.blendshapes import BLENDSHAPE_NAMES
from medswap.keypoints.schema import LAYOUTS, MESH_LEFT_IRIS, MESH_RIGHT_IRIS
from medswap.types import KEYPOINT_GROUPS, SCORE_SETS, KeypointSeries

FORMAT = "medswap-keypoints/1"
_CSV_PREFIX = "# medswap-keypoints "
_AXES = ("x", "y", "c")
FORMATS = ("parquet", "csv", "openpose-json", "npz")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def save_keypoints(series: KeypointSeries, path: str | Path, fmt: str | None = None) -> Path:
    """Write keypoints as Parquet, CSV or an OpenPose JSON folder (``fmt`` or the suffix)."""
    path = Path(path)
    fmt = fmt or {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}.get(
        path.suffix.lower(), "openpose-json"
    )
    if fmt not in FORMATS:
        raise OutputError(f"unknown keypoint format '{fmt}'; use one of {', '.join(FORMATS)}")
    if fmt == "openpose-json":
        return write_openpose_json(series, path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError("output folder does not exist", path)
    md = json.dumps(_metadata(series))
    if fmt == "npz":  # the evaluation's cache: fast, no extra dependency
        np.savez(
            path,
            frame_index=series.frame_index,
            time_s=series.time_s,
            matrix=_matrix(series),
            scores=_score_matrix(series),
            medswap=np.array(md),
        )
        return path
    matrix = np.concatenate([_matrix(series), _score_matrix(series)], axis=1).astype(np.float64)
    names = [*columns(), *score_columns(_score_sets(series))]
    if fmt == "parquet":
        pa, pq = _pyarrow(OutputError, path)
        arrays = [pa.array(series.frame_index, pa.int64()), pa.array(series.time_s, pa.float64())]
        arrays += [pa.array(matrix[:, j].astype(np.float32)) for j in range(matrix.shape[1])]
        table = pa.Table.from_arrays(arrays, names=["frame_index", "time_s", *names])
        table = table.replace_schema_metadata({b"medswap": md.encode()})
        pq.write_table(table, path)
    else:
        import pandas as pd

        df = pd.DataFrame(matrix, columns=names)
        df.insert(0, "time_s", series.time_s)
        df.insert(0, "frame_index", series.frame_index)
        with open(path, "w", newline="") as fh:
            fh.write(_CSV_PREFIX + md + "\n")
            df.to_csv(fh, index=False, na_rep="")
    return path


def _check_video(series: KeypointSeries, video: str | Path | None, path: Path) -> None:
    if video is None:
        return
    want = series.meta.get("video_sha256")
    have = file_sha256(video)
    if want != have:
        raise AlignmentError(
            f"keypoints were extracted from another video (sha256 {str(want)[:12]}...), "
            f"not {Path(video).name} (sha256 {have[:12]}...)",
            path,
        )


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

        with open(path) as fh:
            first = fh.readline()
            if not first.startswith(_CSV_PREFIX):
                raise KeypointFileError("is not a medswap keypoint CSV (no metadata line)", path)
            md = json.loads(first[len(_CSV_PREFIX) :])
            df = pd.read_csv(fh, float_precision="round_trip")
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


def write_openpose_json(
    series: KeypointSeries, out_dir: str | Path, stem: str | None = None
) -> Path:
    """One OpenPose-style JSON per frame in ``out_dir`` (created), plus ``medswap_meta.json``."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder ({exc.strerror})", out_dir) from None
    stem = stem or Path(str(series.meta.get("video", "video"))).stem
    pose = body25(series.groups["body"])
    face = face70(series.groups["face_dlib68"], series.groups["face_mesh"])
    g = series.groups
    for i, frame_index in enumerate(series.frame_index):
        parts = (pose[i], face[i], g["left_hand"][i], g["right_hand"][i])
        people = []
        if any(np.isfinite(p[:, :2]).any() for p in parts):
            people.append(
                {
                    "person_id": [-1],
                    "pose_keypoints_2d": _flat(pose[i]),
                    "face_keypoints_2d": _flat(face[i]),
                    "hand_left_keypoints_2d": _flat(g["left_hand"][i]),
                    "hand_right_keypoints_2d": _flat(g["right_hand"][i]),
                    "pose_keypoints_3d": [],
                    "face_keypoints_3d": [],
                    "hand_left_keypoints_3d": [],
                    "hand_right_keypoints_3d": [],
                }
            )
        doc = {"version": 1.3, "people": people}
        (out_dir / f"{stem}_{int(frame_index):012d}_keypoints.json").write_text(json.dumps(doc))
    meta = {
        **_metadata(series),
        "frame_index": series.frame_index.tolist(),
        "time_s": series.time_s.tolist(),
    }
    (out_dir / "medswap_meta.json").write_text(json.dumps(meta))
    return out_dir


def read_openpose_json(folder: str | Path) -> dict[str, np.ndarray]:
    """Read an OpenPose JSON folder: ``frame_index`` and (N, K, 3) arrays with NaN for 0,0,0.

    Keys: ``pose_keypoints_2d`` (25), ``face_keypoints_2d`` (70), ``hand_left_keypoints_2d``
    and ``hand_right_keypoints_2d`` (21). A frame without people is all NaN.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*_keypoints.json"))
    if not files:
        raise KeypointFileError("no *_keypoints.json files", folder)
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
    return out
