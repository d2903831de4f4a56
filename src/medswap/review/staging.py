"""``--require-approval``: where an output waits for review, and what it may say.

An output that needs approval is written under a staging name (``exam.mp4`` becomes
``exam.unreviewed.mp4``) with its JSON report beside it, so nothing that looks like a
releasable file exists until ``medswap release`` copies the approved bytes into a release
folder under the plain name. A batch's report is scrubbed of the input's path and name
(which may be a patient's) before it goes into the output folder
(:func:`medswap.outputs.scrub`, which batch uses without importing review).
"""

from __future__ import annotations

from pathlib import Path

from medswap.review.model import STAGED_MARK


def staged_paths(output: str | Path, report: str | Path | None) -> tuple[Path, Path]:
    """The staging video name and its report (``--report`` if given, else beside it)."""
    output = Path(output)
    staged = output.with_name(output.stem + STAGED_MARK + output.suffix)
    return staged, Path(report) if report else staged.with_suffix(".json")
