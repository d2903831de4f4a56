"""``medswap batch``: parse, run :func:`medswap.batch.run_batch`, print progress and a summary."""

from __future__ import annotations

import argparse
import logging
import sys

from medswap.batch.runner import Progress, run_batch
from medswap.cli.args import whole
from medswap.cli.options import add_donor_options, add_how_options, config_from_args
from medswap.errors import BatchFailedError
from medswap.progress import ProgressDisplay


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input",
        help="a folder of videos (recursive) or a CSV manifest with columns path, subject_id, task",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output folder (created; must not exist or be empty unless --resume or --overwrite)",
    )
    add_donor_options(
        p,
        "donor face image or built-in name; repeat for several (each subject gets one, chosen "
        "from its pseudonym)",
    )
    add_how_options(p)  # the same options as deidentify, into the same configuration
    engine = p.add_mutually_exclusive_group()
    engine.add_argument(
        "--workers",
        type=whole(0),
        help="local Dask worker processes (default: one "
        "per core, at most one per 2 GiB); 0 runs in this process",
    )
    engine.add_argument(
        "--scheduler", help="an existing Dask cluster: tcp://HOST:PORT or a scheduler JSON file"
    )
    again = p.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="keep videos an earlier run finished (record and checksum match); redo the rest",
    )
    again.add_argument("--overwrite", action="store_true", help="redo every video")
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="run the per-video evaluation and aggregate it in manifest.json",
    )
    p.add_argument(
        "--key-file",
        help="private pseudonym key (created on first use; default "
        "OUTPUT.pseudonym-key beside the output folder)",
    )
    p.add_argument(
        "--input-root", help="root that manifest paths must lie in (default: the manifest's folder)"
    )
    p.add_argument(
        "--no-audit",
        action="store_true",
        help="skip the privacy audit and release gate (by default every video is judged frame "
        "by frame and one its audit flags fails and is not published)",
    )
    p.add_argument(  # release review (issue 24)
        "--require-approval",
        action="store_true",
        help="audit each video and stage it as <job>.unreviewed.mp4 with a scrubbed report "
        "beside it; medswap review, then medswap release copies the approved ones",
    )


def run(args: argparse.Namespace) -> int:
    quiet = getattr(args, "quiet", False)
    if not getattr(args, "verbose", False):  # Dask's own start/stop chatter is not progress
        logging.getLogger("distributed").setLevel(logging.WARNING)

    display = ProgressDisplay(not quiet)

    def show(p: Progress) -> None:
        last = p.last
        state = f"last {last.job_id} {last.status}; " if last else ""
        display.update(
            "batch",
            p.videos_done,
            p.videos_total,
            unit="videos",
            extra=f"{state}{p.frames_done} frames at {p.fps:.1f} fps",
            eta_s=p.eta_s,
        )

    result = run_batch(
        args.input,
        args.output,
        config_from_args(args),
        workers=args.workers,
        scheduler=args.scheduler,
        resume=args.resume,
        overwrite=args.overwrite,
        evaluate=args.evaluate,
        key_file=args.key_file,
        input_root=args.input_root,
        progress=show,
        require_approval=args.require_approval,
    )
    display.close()
    if not quiet:
        for problem in result.problems:
            print(f"medswap: {args.input}: {problem}", file=sys.stderr)
        for o in result.failed:
            print(f"medswap: {o.job_id} failed: {o.error}", file=sys.stderr)
        print(f"medswap: {result.summary()}", file=sys.stderr)
        print(
            f"medswap: manifest {result.manifest_csv}; private mapping {result.map_file} "
            f"(keep it and {result.key_file} out of any release)",
            file=sys.stderr,
        )
    if result.failed:
        raise BatchFailedError(
            f"{len(result.failed)} of {len(result.outcomes)} videos failed "
            f"(see {result.manifest_csv})"
        )
    return 0
