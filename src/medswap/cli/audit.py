"""``medswap audit``: the privacy audit from the command line (parse, call, print one line)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from medswap.cli.args import add_max_frames, positive
from medswap.errors import OutputError, PrivacyError
from medswap.evaluate.privacy import audit
from medswap.outputs import write_text_atomic
from medswap.progress import ProgressDisplay


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--original", required=True, metavar="VIDEO", help="the original video")
    p.add_argument(
        "--deidentified",
        required=True,
        metavar="OUTPUT",
        help="the de-identified video made from it (same frames)",
    )
    p.add_argument("-o", "--output", metavar="AUDIT.json", help="write the full audit as JSON")
    p.add_argument(
        "--gallery",
        metavar="DIR",
        help="folder of person folders to hide the "
        "patient among (default: built-in donors + scikit-image's LFW subset)",
    )
    p.add_argument(
        "--donor",
        action="append",
        default=[],
        metavar="IMAGE",
        help="donor image used for the swap (repeatable): reports donor dominance",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with code 12 if any output frame shows the original identity, or the "
        "patient is nearest of the lineup (rank-1 without the donor) in more frames than the "
        "bound (10%%, or twice chance)",
    )
    p.add_argument(
        "--stride",
        type=positive,
        default=1,
        metavar="N",
        help="run dlib's descriptor on every N-th frame only (faster; detection and "
        "SFace still scan every frame)",
    )
    p.add_argument(
        "--workers",
        type=positive,
        default=1,
        metavar="N",
        help="split the scan over N worker processes (default 1; helps only on idle cores)",
    )
    add_max_frames(p, "audit the first N frames only")


def run(args: argparse.Namespace) -> int:
    out = Path(args.output) if args.output else None
    if out is not None and not out.parent.is_dir():
        raise OutputError("output folder does not exist", out)
    display = ProgressDisplay(not args.quiet)
    try:
        result = audit(
            args.original,
            args.deidentified,
            gallery=args.gallery,
            max_frames=args.max_frames,
            donors=args.donor or None,
            stride=args.stride,
            workers=args.workers,
            progress=display.step(f"{Path(args.deidentified).name}: audit"),
        )
    finally:
        display.close()
    if out is not None:  # before --strict fails, so a failed audit still leaves its evidence
        write_text_atomic(out, json.dumps(result.to_json(), indent=2), "audit")
    if args.strict and not result.clean:
        err = PrivacyError(result.failure_message(), args.deidentified)
        err.audit = result
        raise err
    print(result.summary())
    return 0
