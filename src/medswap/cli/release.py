"""``medswap release``: verify signed manifests and copy the approved videos out."""

from __future__ import annotations

import argparse
import sys

from medswap.review.release import release


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "manifests",
        nargs="+",
        metavar="MANIFEST",
        help="signed release manifests (NAME.release.json), or folders to search for them",
    )
    p.add_argument("--to", required=True, metavar="DIR", help="the release folder (created)")
    p.add_argument(
        "--key",
        metavar="FILE",
        help="signing key (default: OUT.pseudonym-key or DIR.release-key beside the folder)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace files already released")


def run(args: argparse.Namespace) -> int:
    done = release(
        args.manifests,
        args.to,
        key_file=args.key,
        overwrite=args.overwrite,
        notice=lambda line: print(f"medswap: {line}", file=sys.stderr),
        refusal=lambda exc: print(f"medswap: error: {exc}", file=sys.stderr),
    )
    for r in done:
        print(f"medswap: released {r.video} (SHA-256 {r.sha256[:12]}...)", file=sys.stderr)
    print(f"medswap: {len(done)} video(s) released to {args.to}", file=sys.stderr)
    return 0
