"""``medswap evaluate``: how far de-identification moved a video's keypoints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medswap.cli.args import add_max_frames
from medswap.errors import UsageError
from medswap.progress import ProgressDisplay


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--original", required=True, help="the original video")
    p.add_argument(
        "--deidentified", required=True, nargs="+", help="one or more de-identified versions of it"
    )
    p.add_argument("-o", "--output", required=True, help="evaluation folder (created)")
    p.add_argument("--labels", help="comma-separated names for the de-identified videos")
    p.add_argument(
        "--original-keypoints",
        help="keypoint file of the original (refused if made from another video)",
    )
    add_max_frames(p)


def run(args: argparse.Namespace) -> int:
    from medswap.studies.invariance import evaluate

    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
    if labels is not None and len(labels) != len(args.deidentified):
        raise UsageError(
            f"--labels names {len(labels)} videos but {len(args.deidentified)} were given"
        )
    display = ProgressDisplay(not args.quiet)
    result = evaluate(
        args.original,
        args.deidentified,
        args.output,
        labels=labels,
        max_frames=args.max_frames,
        progress=display.update,
        original_keypoints=args.original_keypoints,
    )
    display.close()
    if not args.quiet:
        from medswap.report.sections import evaluation_verdict

        for line in evaluation_verdict(result):
            print(f"medswap: {line}", file=sys.stderr)
        print(f"medswap: wrote {Path(args.output) / 'report.html'}", file=sys.stderr)
    return 0
