"""What every medswap keypoint file shares: the format tag, the metadata, the sidecar's name.

The tables (:mod:`medswap.keypoints.io`: Parquet, CSV and the evaluation's npz cache) and the
OpenPose folder (:mod:`medswap.keypoints.openpose`) carry the same metadata (format version,
video name, its SHA-256, size, fps, the versions and hashes of every model), so a file of
either kind can be checked against the video it claims to describe.
"""

from __future__ import annotations

from pathlib import Path

from medswap.errors import OutputError
from medswap.types import SCORE_SETS, KeypointSeries

FORMAT = "medswap-keypoints/1"
#: The sidecar beside a CSV or an OpenPose folder: ``NAME.medswap.json``.
SIDECAR_SUFFIX = ".medswap.json"
FORMATS = ("parquet", "csv", "openpose-json", "npz")


def present_score_sets(series: KeypointSeries) -> list[str]:
    """The per-frame score sets ``series`` holds, in file order."""
    return [s for s in SCORE_SETS if s in series.scores]


def keypoint_metadata(series: KeypointSeries) -> dict:
    """The metadata every keypoint file carries (in its schema, its sidecar or its cache)."""
    return {
        "format": FORMAT,
        "width": series.width,
        "height": series.height,
        "fps": series.fps,
        "groups": {name: int(arr.shape[1]) for name, arr in series.groups.items()},
        "scores": {name: int(series.scores[name].shape[1]) for name in present_score_sets(series)},
        "meta": series.meta,
    }


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
