"""The table of ``medswap`` subcommands. Each feature module contributes one entry.

An entry is ``name -> (help, (add_arguments, run))``; ``run`` returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medswap.cli_args import add_max_frames, number, positive, whole
from medswap.pipeline import ENGINES, METHODS
from medswap.progress import ProgressDisplay
from medswap.swap.engine import SwapSettings


def _add_deidentify(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="video to de-identify")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4, .mov, .mkv)")
    p.add_argument(
        "--method",
        choices=METHODS,
        default="swap",
        help="swap (default) or a traditional baseline on the same face regions",
    )
    p.add_argument(
        "--donor",
        action="append",
        metavar="IMAGE",
        help="donor face image, folder of images, or a built-in: grace_hopper (default), "
        "average, astronaut; with several, each face track gets the one farthest from its "
        "patient for both recognisers (report: donor_choice)",
    )
    p.add_argument(
        "--donor-seed",
        type=whole(0),
        default=0,
        help="picks the donor of a track whose face cannot be measured (reproducibly)",
    )
    p.add_argument(
        "--audio",
        choices=("drop", "keep"),
        default="drop",
        help="drop (default: a voice identifies) or keep unchanged and in sync",
    )
    p.add_argument("--report", metavar="OUTPUT.json", help="write the per-frame JSON report")
    p.add_argument(
        "--shape",
        type=number(0, 1),
        default=None,
        metavar="BLEND",
        help="resting face shape, outline and jaw included: 0 the patient's .. 1 the donor's "
        "(default 1; the patient's expression and motion are kept at every value)",
    )
    p.add_argument(
        "--strength",
        type=number(),
        default=None,
        help="baseline strength relative to face size (blur: kernel / face width, 0.1..4; "
        "pixelate: blocks across the face, 2..32)",
    )
    p.add_argument(
        "--mask-shape",
        choices=("ellipse", "box", "eyes"),
        default="ellipse",
        help="shape of the mask baseline: the face ellipse (default), its box, or an eye bar",
    )
    p.add_argument(
        "--detail",
        type=number(0, 3),
        default=0.0,
        metavar="STRENGTH",
        help="experimental: the patient's expression shading (forehead lines, folds) on the "
        "donor's skin as a ratio image; 0 (default) off, 1 as measured (README 'Expression "
        "detail')",
    )
    p.add_argument(
        "--eyes",
        choices=("none", "gaze", "iris", "opening"),
        default="none",
        help="the patient's eyes: none of them (default: the donor's eyes, opened and shut by "
        "the patient's eyelids), gaze (the donor's eyes turned where the patient looks), or "
        "the patient's own pixels: iris, or the whole opening. Each step shows more of the "
        "patient to a face recogniser (README)",
    )
    p.add_argument(
        "--no-occlusion",
        action="store_true",
        help="do not look for hands in front of the face (faster)",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="mesh",
        help="mesh (default: landmark-driven warp) or learned (a model from medswap train)",
    )
    p.add_argument(
        "--model", metavar="MODEL.medswap", help="the trained model for --engine learned"
    )
    add_max_frames(p, "stop after N frames")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument(
        "--no-audit",
        action="store_true",
        help="skip the privacy audit and its release gate (every frame is judged before it is "
        "written by default, and nothing is published if the audit is not clean: exit 20)",
    )
    p.add_argument(
        "--gallery",
        metavar="DIR",
        help="the audit's lineup: a folder of person folders (default: built-in donors + "
        "scikit-image's LFW subset)",
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
    p.add_argument(
        "--text",
        choices=("redact", "keep", "phi"),
        default="redact",
        help="text burned into the video (date stamps, title cards): redact every line "
        "(default), keep it, or phi: redact only lines that read as a date, time, number of 4+ "
        "digits or name (README: what it can miss)",
    )
    p.add_argument(
        "--text-method",
        choices=("box", "blur"),
        default="box",
        help="how text is redacted: a solid box (default) or a strong blur",
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
            method=args.method,
            donors=args.donor,
            donor_seed=args.donor_seed,
            audio=args.audio,
            report=args.report,
            shape=args.shape,
            strength=args.strength,
            mask_shape=args.mask_shape,
            occlusion=not args.no_occlusion,
            overwrite=args.overwrite,
            max_frames=args.max_frames,
            progress=display.step(f"{name}: de-identify"),
            audit=not args.no_audit,
            gallery=args.gallery,
            quarantine=args.quarantine,
            swap_settings=SwapSettings(keep_eyes=args.eyes, detail=args.detail),
            engine=args.engine,
            model=args.model,
            text=args.text,
            text_method=args.text_method,
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

from medswap.measures import cli as _measures_cli  # noqa: E402

COMMANDS["measures"] = (
    "Clinical measures (finger tapping, hand movements, tremor, blinks, mouth, facial motion) "
    "from a video or its keypoints.",
    (_measures_cli.add_arguments, _measures_cli.run),
)

from medswap.batch import cli as _batch_cli  # noqa: E402

COMMANDS["batch"] = (
    "De-identify a whole dataset (folder or CSV manifest): pseudonyms, resume, Dask.",
    (_batch_cli.add_arguments, _batch_cli.run),
)

from medswap.studies import cli as _evaluate_cli  # noqa: E402

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

from medswap.evaluate import audit_cli as _audit_cli  # noqa: E402

COMMANDS["audit"] = (
    "Audit a de-identified video: re-identification, identification, a leak scan of every frame.",
    (_audit_cli.add_arguments, _audit_cli.run),
)

from medswap.learned import cli as _learned_cli  # noqa: E402

COMMANDS["train"] = (
    "Train a learned swap model (shared encoder, one decoder per identity) for one patient "
    "and one donor; needs the extra medswap[learned] (torch).",
    (_learned_cli.add_arguments, _learned_cli.run),
)

# -- release review (issue 24) --------------------------------------------------------------
from medswap.review import cli as _review_cli  # noqa: E402

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
