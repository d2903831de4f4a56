"""``medswap approve``: sign a decision downloaded from a review page into a release manifest."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medswap.errors import InputNotFoundError, UsageError
from medswap.review.api import approve
from medswap.review.load import load_review_set
from medswap.review.sign import Decision, default_key_file


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("outdir", help="the folder the review page was made for")
    p.add_argument("decision", help="the decision file the page downloaded (NAME.decision.json)")
    p.add_argument("--key", metavar="FILE", help="signing key (default as for review)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier signed manifest")


def run(args: argparse.Namespace) -> int:
    path = Path(args.decision)
    if not path.is_file():
        raise InputNotFoundError("no such decision file", path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UsageError(f"{path}: not a decision file (JSON expected)") from None
    reviews = load_review_set(args.outdir)
    key = Path(args.key) if args.key else default_key_file(reviews.root, reviews.kind)
    out, manifest = approve(reviews, Decision.from_json(data), key, overwrite=args.overwrite)
    print(
        f"medswap: {manifest['decision']} by {manifest['reviewer']}, signed: {out}", file=sys.stderr
    )
    return 0
