"""The review steps as plain functions: build the page, sign a decision.

The CLI (:mod:`medswap.cli.review`, ``approve``, ``release``) and the server
(:mod:`medswap.review.server`) call these; tests call them too. Files are written only through
:mod:`medswap.outputs`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from medswap.batch import pseudonyms as ps
from medswap.errors import InputNotFoundError, OutputError, UsageError
from medswap.outputs import check_new_output, write_json_atomic, write_text_atomic
from medswap.review.frames import read_stills
from medswap.review.load import load_review_set
from medswap.review.model import ReviewSet
from medswap.review.page import approve_command, picks_for, render_page
from medswap.review.sign import Decision, default_key_file, load_key, sign_decision

#: Frames sampled evenly from the unflagged rest of each video.
DEFAULT_SAMPLE = 12


@dataclass
class ReviewPage:
    """A written review page and what it was built from."""

    reviews: ReviewSet
    path: Path
    html: str
    share: bool
    key_file: Path
    picks: dict[str, list[int]]


def default_page_path(root: Path, share: bool) -> Path:
    """``DIR/review.html`` for sharing; ``DIR.review-private.html`` beside it with originals.

    A page holding original faces never goes inside the output folder, which may be shared
    as it is (the same rule as the pseudonym key and mapping).
    """
    root = Path(root).resolve()
    return root / "review.html" if share else root.with_name(root.name + ".review-private.html")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def original_sources(reviews: ReviewSet, input_root: Path | None, key_file: Path) -> dict:
    """Each video's original: the audit's path for a video folder; the private map for a batch."""
    sources: dict[str, Path] = {}
    if reviews.kind == "video":
        for v in reviews.videos:
            report = json.loads((reviews.root / v.file).with_suffix(".json").read_text())
            original = (report.get("audit") or {}).get("original")
            if not original or not Path(original).is_file():
                raise InputNotFoundError(
                    "the original is not where the audit read it (needed for --originals)",
                    original or v.file,
                )
            sources[v.file] = Path(original)
        return sources
    if input_root is None:
        raise UsageError("--originals on a batch needs --input-root (the folder batch read)")
    map_path = ps.map_file(key_file, reviews.root)
    if not map_path.is_file():
        raise InputNotFoundError("no private mapping table for this batch", map_path)
    with map_path.open(newline="", encoding="utf-8", errors="surrogateescape") as fh:
        by_output = {row["output"]: row["source_path"] for row in csv.DictReader(fh)}
    for v in reviews.videos:
        if v.file not in by_output:
            raise InputNotFoundError(f"{v.file} is not in the private mapping table", map_path)
        sources[v.file] = Path(input_root) / by_output[v.file]
    return sources


def build_review_page(
    path: str | Path,
    *,
    out: str | Path | None = None,
    originals: bool = False,
    input_root: str | Path | None = None,
    key_file: str | Path | None = None,
    sample: int = DEFAULT_SAMPLE,
    overwrite: bool = False,
) -> ReviewPage:
    """Write the review page of a video folder or batch folder; return what was written.

    Without ``originals`` the page is marked for sharing and is made from output frames only.
    With it, each frame also carries the original behind "show original", the page says so at
    the top, and it may not be written inside the output folder.
    """
    if sample < 0:
        raise UsageError(f"--sample must be 0 or more, got {sample}")
    reviews = load_review_set(path)
    share = not originals
    page_path = Path(out) if out else default_page_path(reviews.root, share)
    if not share and _inside(page_path, reviews.root):
        raise OutputError(
            "a page with original faces must not be written inside the output folder "
            "(it may be shared as it is)",
            page_path,
        )
    check_new_output(page_path, overwrite=overwrite, what="review page")
    keys = Path(key_file) if key_file else default_key_file(reviews.root, reviews.kind)
    picks = {v.file: picks_for(v, sample) for v in reviews.videos}
    stills = {v.file: read_stills(reviews.root / v.file, picks[v.file]) for v in reviews.videos}
    origs = None
    if originals:
        sources = original_sources(reviews, Path(input_root) if input_root else None, keys)
        origs = {f: read_stills(src, picks[f]) for f, src in sources.items()}
    hint = None if key_file is None else str(key_file)
    html = render_page(
        reviews,
        picks,
        stills,
        origs,
        share=share,
        approve_command=approve_command(Path(path), hint),
    )
    write_text_atomic(page_path, html, what="review page")
    return ReviewPage(reviews, page_path, html, share, keys, picks)


def approve(
    reviews: ReviewSet, decision: Decision, key_file: Path, *, overwrite: bool = True
) -> tuple[Path, dict]:
    """Sign one decision and write its manifest beside the video; return both."""
    key = load_key(key_file, reviews.root, create=True)
    path, manifest = sign_decision(reviews, decision, key)
    if not overwrite:
        check_new_output(path, overwrite=False, what="release manifest")
    write_json_atomic(path, manifest, what="release manifest")
    return path, manifest
