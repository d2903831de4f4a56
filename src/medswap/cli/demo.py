"""``medswap demo``: a short clip from packaged portraits, de-identified."""

from __future__ import annotations

import argparse
import sys

from medswap.cli.args import positive
from medswap.progress import ProgressDisplay


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="demo-output", help="folder for the demo files")
    p.add_argument("--frames", type=positive, default=50, help="length of the demo clip")


def run(args: argparse.Namespace) -> int:
    from medswap.demo import run_demo

    display = ProgressDisplay(enabled=not args.quiet)
    try:
        result = run_demo(
            args.output,
            args.frames,
            progress=display.step("demo: de-identify"),
        )
    finally:
        display.close()
    if args.quiet:
        return 0
    t = result.totals
    print(
        f"medswap demo: {t.frames} frames, {t.frames_swapped} swapped, "
        f"{t.frames_obscured} obscured -> {args.output}/demo_deidentified.mp4, "
        f"demo_before_after.png, demo_report.json",
        file=sys.stderr,
    )
    if result.audit is not None:
        print(f"medswap demo: audit: {result.audit.summary()}", file=sys.stderr)
    return 0
