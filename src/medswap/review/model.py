"""The records of a release review: what a reviewer is shown, and what they decided.

They are built once from the files a run left behind (a video and its JSON report, or a batch
folder with its manifest) and then only read: by the page, the server and the signer. Nothing
here holds an original file name or path, because the page marked for sharing is made from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

#: Suffix of a video that awaits review (``--require-approval``): ``exam.unreviewed.mp4``.
STAGED_MARK = ".unreviewed"
#: Suffix of a signed release manifest, beside its video: ``exam.release.json``.
MANIFEST_SUFFIX = ".release.json"


class Verdict(str, Enum):
    """The colour of one summary line: the page's whole judgement in four words."""

    PASS = "pass"
    WARN = "warn"  # not a failure of a rule, but something a reviewer must weigh
    FAIL = "fail"
    NONE = "n/a"  # no figure to judge (no audit, no evaluation)


class FlagKind(str, Enum):
    """Why a frame is on the contact sheet. The page groups and colours by kind."""

    LEAK = "leak"  # the audit's recognisers took an output face for the patient
    NO_FACE = "no-face"  # the audit found no face in the output where the original had one
    OBSCURED = "obscured"  # the swap could not draw the face; a mosaic hides it
    BRIDGED = "bridged"  # the face was lost for a few frames; obscured where it was heading
    SAFETY_NET = "safety-net"  # only the second detector saw a face; obscured
    HAND = "hand"  # a hand over the face is kept in front of the swap
    SAMPLE = "sample"  # not flagged: an even sample of the rest


@dataclass(frozen=True)
class FrameFlag:
    """One reason to look at one frame, in words a reviewer reads."""

    kind: FlagKind
    text: str


@dataclass(frozen=True)
class SummaryLine:
    """One line of the one-screen summary: a label, a verdict and the figure behind it."""

    label: str
    verdict: Verdict
    detail: str


@dataclass
class VideoReview:
    """One output video as the reviewer sees it.

    ``file`` is the video's path relative to the review root; ``release_name`` is the name it
    gets in a release folder (the staging mark taken off). ``flags`` maps frame index to the
    reasons to look at it; frames not in it are only sampled.
    """

    file: str
    release_name: str
    sha256: str
    frames: int
    width: int
    height: int
    settings: dict
    totals: dict
    audit: dict | None  # the audit's figures (no paths), None when it was not run
    evaluation: dict = field(default_factory=dict)  # keypoint figures (batch --evaluate)
    flags: dict[int, list[FrameFlag]] = field(default_factory=dict)
    summary: list[SummaryLine] = field(default_factory=list)
    staged: bool = False

    @property
    def key(self) -> str:
        """A stable id for the page's elements and the server's requests."""
        return self.file

    def manifest_path(self, root: Path) -> Path:
        """Where this video's signed release manifest is written: beside the video."""
        stem = Path(self.release_name).stem
        return (root / self.file).with_name(stem + MANIFEST_SUFFIX)


@dataclass
class ReviewSet:
    """Everything under review: one video's folder, or a whole batch output folder."""

    root: Path
    kind: str  # "video" | "batch"
    videos: list[VideoReview]
