"""``medswap deidentify``: swap (or blur, pixelate, mask) every face of one video."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medswap.cli.args import add_max_frames
from medswap.cli.options import add_donor_options, add_donor_seed, add_how_options, config_from_args
from medswap.progress import ProgressDisplay


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="video to de-identify")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4, .mov, .mkv)")
    add_donor_options(
        p,
        "donor face image, folder of images, or a built-in: astronaut, grace_hopper, "
        "average; with several, each face track gets the one farthest from its patient for "
        "both recognisers (report: donor_choice). Default: astronaut where she is far enough "
        "from the patient, else grace_hopper (report: donor_retries); with --no-audit, "
        "grace_hopper",
    )
    add_donor_seed(p)
    p.add_argument("--report", metavar="OUTPUT.json", help="write the per-frame JSON report")
    add_how_options(p)
    add_max_frames(p, "stop after N frames")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument(
        "--no-audit",
        action="store_true",
        help="skip the privacy audit and its release gate (every frame is judged before it is "
        "written by default, and nothing is published if the audit is not clean: exit 20)",
    )
    p.add_argument(
        "--quarantine",
        metavar="DIR",
        help="when the release gate refuses the output (exit 20), keep it and its report in "
        "DIR as NAME.quarantined.EXT / .json (default: keep nothing)",
    )
    # -- release review (issue 24) --
    p.add_argument(
        "--require-approval",
        action="store_true",
        help="write OUTPUT as NAME.unreviewed.EXT with its report beside it; only "
        "medswap release, after a signed approval (medswap review), gives it its name",
    )


def run(args: argparse.Namespace) -> int:
    from medswap.pipeline import deidentify

    if args.require_approval:  # release review (issue 24): stage the output, keep a report
        from medswap.review.staging import staged_paths

        args.output, args.report = staged_paths(args.output, args.report)
    display = ProgressDisplay(enabled=not args.quiet)
    name = Path(args.input).name
    try:
        result = deidentify(
            args.input,
            args.output,
            config_from_args(args),
            report=args.report,
            quarantine=args.quarantine,
            overwrite=args.overwrite,
            progress=display.step(f"{name}: de-identify"),
        )
    finally:
        display.close()
    if args.quiet:
        return 0
    t = result.totals
    if not result.face_found:
        print(
            f"medswap: notice: {args.input}: no face found in any of {t.frames} frames; "
            + (
                f"{t.frames_obscured} frames with a possible face (safety-net detector) "
                "were obscured"
                if t.frames_obscured
                else "the output is a re-encoded copy"
            ),
            file=sys.stderr,
        )
    else:
        print(
            f"medswap: {args.output}: {t.frames} frames, {t.frames_with_face} with a "
            f"face: {t.frames_swapped} swapped, {t.frames_obscured} obscured"
            + ("" if args.method == "swap" else f", {t.frames_baseline} {args.method}"),
            file=sys.stderr,
        )
    if result.audit is not None:
        print(f"medswap: audit: {result.audit.summary()}", file=sys.stderr)
    if args.text != "keep":
        tt = t.text
        line = (
            f"medswap: text: {tt.frames_redacted} frames with text redacted "
            f"({tt.regions_redacted} regions, {tt.regions_kept} kept)"
        )
        if result.text_audit is not None:
            line += f"; audit: {result.text_audit.summary()}"
        print(line, file=sys.stderr)
    if args.require_approval:
        print(
            f"medswap: {args.output} awaits approval: medswap review {args.output.parent}",
            file=sys.stderr,
        )
    return 0
