"""``medswap review``: write the release review page of an output (``--serve`` to sign live)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medswap.review.api import DEFAULT_SAMPLE, build_review_page


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "outdir",
        help="a de-identified video's folder (video + --report JSON), one such video, or a "
        "batch output folder",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="PAGE.html",
        help="where to write the page (default: OUTDIR/review.html; with --originals "
        "OUTDIR.review-private.html beside the folder)",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="serve the page on 127.0.0.1 with a random token in the URL; approve/reject "
        "then signs and writes the manifest at once (Ctrl-C stops)",
    )
    p.add_argument("--port", type=int, default=0, help="port for --serve (default: any free)")
    p.add_argument(
        "--originals",
        action="store_true",
        help="also embed each original frame behind a 'show original' control: the page is "
        "then marked as holding identifiable faces and is never written inside OUTDIR",
    )
    p.add_argument(
        "--input-root",
        metavar="DIR",
        help="with --originals on a batch: the folder the batch read its videos from",
    )
    p.add_argument(
        "--key",
        metavar="FILE",
        help="signing key (default: the batch's OUT.pseudonym-key, or DIR.release-key "
        "beside a video folder, created on first use)",
    )
    p.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help=f"unflagged frames sampled evenly per video (default {DEFAULT_SAMPLE})",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing page")


def run(args: argparse.Namespace) -> int:
    page = build_review_page(
        args.outdir,
        out=args.output,
        originals=args.originals,
        input_root=args.input_root,
        key_file=args.key,
        sample=args.sample,
        overwrite=args.overwrite,
    )
    flagged = sum(len(v.flags) for v in page.reviews.videos)
    marking = "for sharing" if page.share else "HOLDS ORIGINAL FACES: do not share"
    print(
        f"medswap: review page {page.path} ({len(page.reviews.videos)} video(s), "
        f"{flagged} flagged frames; {marking})",
        file=sys.stderr,
    )
    if not args.serve:
        return 0
    from medswap.review.server import ReviewServer

    def said(path: Path, manifest: dict) -> None:
        print(
            f"medswap: {manifest['decision']} by {manifest['reviewer']}: {path}",
            file=sys.stderr,
            flush=True,
        )

    server = ReviewServer(page, page.key_file, args.port, on_decision=said)
    print(f"medswap: reviewing at {server.url}  (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("medswap: review server stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
