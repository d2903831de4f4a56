"""Keypoint files: Parquet and CSV (one row per frame), and saving and loading any format.

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

The OpenPose folder is written and read by :mod:`medswap.keypoints.openpose`; what every
keypoint file shares (the format tag, the metadata, the sidecar's name) is in
:mod:`medswap.keypoints.fileformat`.

Every file is written through :mod:`medswap.outputs` (partial name, then rename); the schema,
units and the meaning of ``c`` per group are written down in ``docs/keypoints.md``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medswap.errors import InputNotFoundError, KeypointFileError, OutputError
from medswap.keypoints.blendshapes import BLENDSHAPE_NAMES
from medswap.keypoints.fileformat import (
    FORMAT,
    keypoint_format,
    keypoint_metadata,
    present_score_sets,
    sidecar_path,
)
from medswap.keypoints.openpose import check_new_folder, write_openpose_json
from medswap.keypoints.schema import LAYOUTS
from medswap.outputs import atomic_path, check_new_output, sha256_file, write_json_atomic
from medswap.types import KEYPOINT_GROUPS, SCORE_SETS, KeypointSeries

_AXES = ("x", "y", "c")


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


def _score_matrix(series: KeypointSeries) -> np.ndarray:
    parts = [series.scores[s] for s in present_score_sets(series)]
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
        check_new_folder(path, overwrite, inputs)
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
    md = keypoint_metadata(series)
    if fmt == "npz":  # the evaluation's cache: fast, no extra dependency
        _write_npz(series, path, md)
        return path
    matrix = np.concatenate([_matrix(series), _score_matrix(series)], axis=1).astype(np.float64)
    names = [*columns(), *score_columns(present_score_sets(series))]
    if fmt == "parquet":
        _write_parquet(series, path, md, matrix, names)
    else:
        _write_csv(series, path, md, matrix, names)
    return path


def _write_npz(series: KeypointSeries, path: Path, md: dict) -> None:
    with atomic_path(path, "keypoint cache") as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            frame_index=series.frame_index,
            time_s=series.time_s,
            matrix=_matrix(series),
            scores=_score_matrix(series),
            medswap=np.array(json.dumps(md)),
        )


def _write_parquet(
    series: KeypointSeries, path: Path, md: dict, matrix: np.ndarray, names: list[str]
) -> None:
    """The wide table as Parquet, the metadata in its schema."""
    pa, pq = _pyarrow(OutputError, path)
    arrays = [pa.array(series.frame_index, pa.int64()), pa.array(series.time_s, pa.float64())]
    arrays += [pa.array(matrix[:, j].astype(np.float32)) for j in range(matrix.shape[1])]
    table = pa.Table.from_arrays(arrays, names=["frame_index", "time_s", *names])
    table = table.replace_schema_metadata({b"medswap": json.dumps(md).encode()})
    with atomic_path(path, "keypoint file") as tmp:
        pq.write_table(table, tmp)


def _write_csv(
    series: KeypointSeries, path: Path, md: dict, matrix: np.ndarray, names: list[str]
) -> None:
    """The wide table as a plain CSV, the metadata and the CSV's SHA-256 in its sidecar."""
    import pandas as pd

    df = pd.DataFrame(matrix, columns=names)
    df.insert(0, "time_s", series.time_s)
    df.insert(0, "frame_index", series.frame_index)
    with atomic_path(path, "keypoint file") as tmp:
        df.to_csv(tmp, index=False, na_rep="")
        sidecar = {**md, "data_file": path.name, "data_sha256": sha256_file(tmp)}
        write_json_atomic(sidecar_path(path), sidecar, "keypoint sidecar")


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
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        series, md = _read_parquet(path)
    elif suffix == ".csv":
        series, md = _read_csv(path)
    elif suffix == ".npz":
        series, md = _read_npz(path)
    else:
        raise KeypointFileError("unknown keypoint file type (use .parquet or .csv)", path)
    if md.get("format") != FORMAT:
        raise KeypointFileError(f"has format {md.get('format')!r}, expected {FORMAT}", path)
    _check_video(series, video, path)
    return series


def _read_parquet(path: Path) -> tuple[KeypointSeries, dict]:
    """The series and the metadata of a Parquet file (the metadata from its schema)."""
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
    return series, md


def _read_csv(path: Path) -> tuple[KeypointSeries, dict]:
    """The series and the metadata of a CSV (the metadata from its checked sidecar)."""
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
    return series, md


def _read_npz(path: Path) -> tuple[KeypointSeries, dict]:
    """The series and the metadata of the evaluation's npz cache."""
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
    return series, md
