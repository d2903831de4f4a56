"""``medswap keypoints``: extract whole-body keypoints of a video into a file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medswap.cli.args import add_max_frames
from medswap.errors import UsageError
from medswap.progress import ProgressDisplay


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="input video")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="KEYPOINTS.parquet | .csv, or a folder for --format openpose-json",
    )
    p.add_argument(
        "--format",
        choices=["parquet", "csv", "openpose-json"],
        help="file format (default: from the output's suffix)",
    )
    add_max_frames(p)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing keypoint file or folder (and its sidecar); never the input",
    )


def run(args: argparse.Namespace) -> int:
    from medswap.keypoints import extract_keypoints, save_keypoints
    from medswap.keypoints.io import check_keypoint_output

    out = Path(args.output)
    fmt = args.format or {".parquet": "parquet", ".csv": "csv"}.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"cannot tell the format of '{out}': use a .parquet or .csv name, "
            "or --format openpose-json with a folder"
        )
    # Refused before minutes of extraction: a bad input, an existing output, the input itself.
    from medswap.video import probe

    probe(args.video)
    check_keypoint_output(out, fmt, overwrite=args.overwrite, inputs=[args.video])
    display = ProgressDisplay(not args.quiet)
    name = Path(args.video).name
    series = extract_keypoints(
        args.video, max_frames=args.max_frames, progress=display.step(f"{name}: keypoints")
    )
    display.close()
    save_keypoints(series, out, fmt=fmt, overwrite=args.overwrite, inputs=[args.video])
    if not args.quiet:
        print(f"medswap: wrote keypoints of {len(series)} frames to {out}", file=sys.stderr)
    return 0
