"""The table of ``medswap`` subcommands. Each feature module contributes one entry.

An entry is ``name -> (help, (add_arguments, run))``; ``run`` returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medswap.cli.args import add_max_frames, positive
from medswap.cli.options import add_donor_options, add_donor_seed, add_how_options, config_from_args
from medswap.progress import ProgressDisplay


def _add_deidentify(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="video to de-identify")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4, .mov, .mkv)")
    add_donor_options(
        p,
        "donor face image, folder of images, or a built-in: grace_hopper (default), "
        "average, astronaut; with several, each face track gets the one farthest from its "
        "patient for both recognisers (report: donor_choice)",
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


def _run_deidentify(args: argparse.Namespace) -> int:
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
            f"medswap: notice: {args.input}: no face found in any of {t['frames']} frames; "
            + (
                f"{t['frames_obscured']} frames with a possible face (safety-net detector) "
                "were obscured"
                if t["frames_obscured"]
                else "the output is a re-encoded copy"
            ),
            file=sys.stderr,
        )
    else:
        print(
            f"medswap: {args.output}: {t['frames']} frames, {t['frames_with_face']} with a "
            f"face: {t['frames_swapped']} swapped, {t['frames_obscured']} obscured"
            + ("" if args.method == "swap" else f", {t['frames_baseline']} {args.method}"),
            file=sys.stderr,
        )
    if result.audit is not None:
        print(f"medswap: audit: {result.audit.summary()}", file=sys.stderr)
    if args.text != "keep":
        tt = t["text"]
        line = (
            f"medswap: text: {tt['frames_redacted']} frames with text redacted "
            f"({tt['regions_redacted']} regions, {tt['regions_kept']} kept)"
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


def _add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="demo-output", help="folder for the demo files")
    p.add_argument("--frames", type=positive, default=50, help="length of the demo clip")


def _run_demo(args: argparse.Namespace) -> int:
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
        f"medswap demo: {t['frames']} frames, {t['frames_swapped']} swapped, "
        f"{t['frames_obscured']} obscured -> {args.output}/demo_deidentified.mp4, "
        f"demo_before_after.png, demo_report.json",
        file=sys.stderr,
    )
    if result.audit is not None:
        print(f"medswap demo: audit: {result.audit.summary()}", file=sys.stderr)
    return 0


COMMANDS: dict = {
    "deidentify": (
        "De-identify a video: swap (or blur, pixelate, mask) every face.",
        (_add_deidentify, _run_deidentify),
    ),
    "demo": (
        "Build a short clip from packaged public-domain portraits and de-identify it.",
        (_add_demo, _run_demo),
    ),
}

from medswap.cli import measures as _measures_cli  # noqa: E402

COMMANDS["measures"] = (
    "Clinical measures (finger tapping, hand movements, tremor, blinks, mouth, facial motion) "
    "from a video or its keypoints.",
    (_measures_cli.add_arguments, _measures_cli.run),
)

from medswap.cli import batch as _batch_cli  # noqa: E402

COMMANDS["batch"] = (
    "De-identify a whole dataset (folder or CSV manifest): pseudonyms, resume, Dask.",
    (_batch_cli.add_arguments, _batch_cli.run),
)

from medswap.cli import compare as _evaluate_cli  # noqa: E402

COMMANDS["keypoints"] = (
    "Extract whole-body keypoints (body, hands, face mesh, dlib 68) from a video.",
    (_evaluate_cli.add_keypoints_args, _evaluate_cli.run_keypoints),
)
COMMANDS["evaluate"] = (
    "Measure how far de-identification moved a video's keypoints (vs the original).",
    (_evaluate_cli.add_evaluate_args, _evaluate_cli.run_evaluate),
)
COMMANDS["compare"] = (
    "De-identify videos every way, evaluate each, and write the paper's table and a report.",
    (_evaluate_cli.add_compare_args, _evaluate_cli.run_compare),
)

from medswap.cli import audit as _audit_cli  # noqa: E402

COMMANDS["audit"] = (
    "Audit a de-identified video: re-identification, identification, a leak scan of every frame.",
    (_audit_cli.add_arguments, _audit_cli.run),
)

from medswap.cli import train as _learned_cli  # noqa: E402

COMMANDS["train"] = (
    "Train a learned swap model (shared encoder, one decoder per identity) for one patient "
    "and one donor; needs the extra medswap[learned] (torch).",
    (_learned_cli.add_arguments, _learned_cli.run),
)

# -- release review (issue 24) --------------------------------------------------------------
from medswap.cli import review as _review_cli  # noqa: E402

COMMANDS["review"] = (
    "Write the release review page of a video's or a batch's output (--serve to sign as you "
    "click).",
    (_review_cli.add_review_arguments, _review_cli.run_review),
)
COMMANDS["approve"] = (
    "Sign a decision downloaded from a review page opened from disk: a release manifest.",
    (_review_cli.add_approve_arguments, _review_cli.run_approve),
)
COMMANDS["release"] = (
    "Verify signed release manifests and copy the approved videos into a release folder.",
    (_review_cli.add_release_arguments, _review_cli.run_release),
)
