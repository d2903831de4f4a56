"""``medswap compare`` (and its ``--sweep``): de-identify videos every way and evaluate each.

Parses nothing itself: it calls one API function and returns an exit code. Progress goes to
stderr (off with ``-q``); errors are raised as MedswapError for :func:`medswap.cli.main`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medswap.cli.args import add_max_frames, positive
from medswap.errors import UsageError
from medswap.progress import ProgressDisplay


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="+", help="original videos")
    p.add_argument("-o", "--output", required=True, help="output folder (created)")
    p.add_argument(
        "--methods",
        default="swap,blur,pixelate,mask",
        help="comma-separated methods (default: swap,blur,pixelate,mask); the "
        "reencode control is always added",
    )
    p.add_argument(
        "--engines",
        default="mesh",
        help="swap engines to compare: mesh (default), learned, or mesh,learned; learned "
        "trains a model on each video with one budget (--learned-steps) and adds the "
        "column swap-learned (needs medswap[learned])",
    )
    p.add_argument(
        "--learned-steps",
        type=positive,
        default=500,
        metavar="N",
        help="training steps per video for --engines learned (default 500)",
    )
    p.add_argument(
        "--learned-size",
        type=int,
        choices=(64, 96, 128),
        default=64,
        help="face crop size for --engines learned (default 64)",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where --engines learned trains (default cpu)",
    )
    p.add_argument(
        "--donor",
        action="append",
        metavar="IMAGE",
        help="donor of the (mesh) swap column: an image or a built-in (grace_hopper, the "
        "default, average, astronaut); repeat for several, as in deidentify; the learned "
        "column trains on the default donor",
    )
    add_max_frames(p, "only the first N frames of each")
    p.add_argument(
        "--no-privacy", action="store_true", help="skip the privacy audit of every output (faster)"
    )
    p.add_argument(
        "--privacy-stride",
        type=positive,
        default=3,
        metavar="N",
        help="audit every N-th frame (default 3)",
    )
    p.add_argument(
        "--sweep",
        action="store_true",
        help="the privacy-utility frontier: every method at several strengths "
        "(blur kernels, pixelation blocks, mask shapes, swap --shape blends); "
        "writes sweep.json, sweep.csv, frontier.png and report.html",
    )


def _engine_methods(
    args: argparse.Namespace, methods: list[str]
) -> tuple[list[str], dict[str, object]]:
    """The method columns and plugged-in de-identifiers for ``--engines``."""
    from medswap.studies.compare import LEARNED, learned_deidentifier

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ("mesh", "learned")]
    if unknown or not engines:
        raise UsageError(
            f"unknown engine '{unknown[0] if unknown else ''}'; choose from mesh, learned"
        )
    if "learned" not in engines:
        return methods, {}
    if args.sweep:
        raise UsageError("--sweep runs the mesh engine only; drop --engines learned")
    from medswap.learned import require_torch

    require_torch()
    rest = [m for m in methods if m != "swap" or "mesh" in engines]
    at = methods.index("swap") + 1 if "swap" in methods else 0
    columns = [*rest[:at], LEARNED, *rest[at:]] if "mesh" in engines else [LEARNED, *rest]
    return columns, {
        LEARNED: learned_deidentifier(args.learned_steps, args.learned_size, args.device)
    }


def run(args: argparse.Namespace) -> int:
    from medswap.studies.compare import METHODS, compare

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UsageError(
            f"unknown method '{unknown[0] if unknown else ''}'; choose from {', '.join(METHODS)}"
        )
    methods, plugged = _engine_methods(args, methods)
    display = ProgressDisplay(not args.quiet)
    videos = list(args.videos)
    if args.sweep:
        if args.no_privacy:
            raise UsageError("--sweep measures privacy: it cannot be combined with --no-privacy")
        if args.donor:
            raise UsageError("--sweep runs the default donor; drop --donor")
        return _run_sweep(args, methods, videos)
    if args.donor and "swap" in methods:
        from medswap.studies.compare import pipeline_deidentifier
        from medswap.swap.donors import load_donor

        for spec in args.donor:  # a bad donor is refused before hours of work
            load_donor(spec)
        plugged["swap"] = pipeline_deidentifier("swap", donors=list(args.donor))

    def progress(video: str, stage: str, done: int, total: int) -> None:
        i = next((k for k, v in enumerate(videos, 1) if Path(v).stem == video), 0)
        display.update(f"video {i}/{len(videos)} {video}: {stage}", done, total)

    comp = compare(
        videos,
        args.output,
        methods,
        max_frames=args.max_frames,
        progress=progress,
        deidentifiers=plugged,
        privacy=not args.no_privacy,
        privacy_stride=args.privacy_stride,
    )
    display.close()
    if not args.quiet:
        for line in comp.verdict:
            print(f"medswap: {line}", file=sys.stderr)
        print(f"medswap: wrote {Path(args.output) / 'report.html'}", file=sys.stderr)
    return 0


def _run_sweep(args: argparse.Namespace, methods: list[str], videos: list[str]) -> int:
    from medswap.studies.sweep import sweep

    display = ProgressDisplay(not args.quiet)

    def progress(video: str, stage: str, done: int, total: int) -> None:
        display.update(f"sweep {video}: {stage}", done, total)

    result = sweep(
        videos,
        args.output,
        methods,
        max_frames=args.max_frames,
        stride=args.privacy_stride,
        progress=progress,
    )
    display.close()
    if not args.quiet:
        for line in result.verdict:
            print(f"medswap: {line}", file=sys.stderr)
        print(f"medswap: wrote {Path(args.output) / 'report.html'}", file=sys.stderr)
    return 0
