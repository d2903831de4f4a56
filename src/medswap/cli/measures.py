"""``medswap measures VIDEO|KEYPOINTS -o MEASURES.json``: parse, compute, write. Nothing more."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from medswap.cli.args import add_max_frames
from medswap.errors import InputNotFoundError, MedswapError

log = logging.getLogger("medswap")

#: Files with these suffixes are keypoint files (read, not extracted).
KEYPOINT_SUFFIXES = (".parquet", ".pq")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from medswap.measures import TASKS

    p.add_argument("input", help="a video, or a keypoints file (.parquet) from 'medswap keypoints'")
    p.add_argument("-o", "--output", required=True, help="MEASURES.json to write")
    p.add_argument(
        "--task",
        default="auto",
        choices=TASKS,
        help="which measures (default: auto, every measure; those that cannot be "
        "computed are reported with the reason)",
    )
    p.add_argument(
        "--signals",
        metavar="DIR",
        help="also write each measure's signal as CSV and a PNG plot into DIR",
    )
    add_max_frames(p, "only the first N frames of a video")


def load_series(path: Path, max_frames: int | None = None):
    """Keypoints of ``path``: read from a keypoints file, or extracted from a video."""
    if not path.exists():
        raise InputNotFoundError("no such file", path)
    try:
        if path.suffix.lower() in KEYPOINT_SUFFIXES:
            from medswap.keypoints.io import load_keypoints

            return load_keypoints(path)
        from medswap.keypoints import extract_keypoints
    except ImportError as exc:  # keypoint extraction ships separately (medswap.keypoints)
        raise MedswapError(
            f"keypoint extraction is not available in this installation ({exc})", path
        ) from None
    kwargs = {"max_frames": max_frames} if max_frames else {}
    return extract_keypoints(path, **kwargs)


def _errors(values: object) -> int:
    """How many measures in a JSON-ready tree hold an ``error`` instead of a value."""
    if isinstance(values, dict):
        return int("error" in values) + sum(_errors(v) for v in values.values())
    if isinstance(values, list):
        return sum(_errors(v) for v in values)
    return 0


def run(args: argparse.Namespace) -> int:
    src = Path(args.input)
    out = Path(args.output)
    if not out.parent.is_dir():  # fail before the slow extraction, not after it
        from medswap.errors import OutputError

        raise OutputError("the output folder does not exist", out.parent)
    log.info("keypoints of %s ...", src)
    series = load_series(src, args.max_frames)
    from medswap.measures import measure_set, write_json, write_signals  # scipy: after checks

    ms = measure_set(series, args.task)
    write_json(ms.values, out)
    missing = _errors(ms.values)
    log.info(
        "wrote %s%s",
        out,
        f" ({missing} measures could not be computed; each says why in the file)"
        if missing
        else "",
    )
    if args.signals:
        files = write_signals(ms.signals, args.signals)
        log.info("wrote %d signal files into %s", len(files), args.signals)
    return 0
