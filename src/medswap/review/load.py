"""Read what a run left behind into :class:`ReviewSet`: which videos, which frames, what verdicts.

Two layouts are understood. A single video's folder holds ``NAME.mp4`` with its ``--report``
JSON ``NAME.json`` beside it (``deidentify --require-approval`` writes ``NAME.unreviewed.mp4``
and ``NAME.unreviewed.json``). A batch folder holds ``manifest.json`` and, per video,
``sub-<pseudonym>/<job>.mp4``, with a report beside each video when the batch ran with
``--require-approval``. The judging functions are pure (dicts in, records out) so they are
tested without a video.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from medswap.errors import InputNotFoundError, UsageError
from medswap.outputs import sha256_file
from medswap.review.model import (
    STAGED_MARK,
    FlagKind,
    FrameFlag,
    ReviewSet,
    SummaryLine,
    Verdict,
    VideoReview,
)
from medswap.types import Reason

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
#: Faces the pipeline obscured because no mesh was found there, flagged as such for review.
_FLAG_OF_REASON = {Reason.BRIDGED: FlagKind.BRIDGED, Reason.DETECTOR_ONLY: FlagKind.SAFETY_NET}
#: Median NME (of the inter-ocular distance) above which the face keypoints count as moved:
#: the usual PCK@0.05 hit radius; the swap measures 0.024-0.039 on the shared clips.
NME_LIMIT = 0.05
#: Face keypoint groups whose fidelity is judged (hands measure ~0.06 even on a re-encode).
FACE_GROUPS = ("face-dlib68", "face-mesh")


def release_name(file: str) -> str:
    """The name a staged video gets when released: ``a/exam.unreviewed.mp4`` -> ``a/exam.mp4``."""
    path = Path(file)
    name = path.name
    if path.stem.endswith(STAGED_MARK):
        name = path.stem[: -len(STAGED_MARK)] + path.suffix
    return str(path.with_name(name).as_posix())


def frame_flags(report: dict | None) -> dict[int, list[FrameFlag]]:
    """Every frame a reviewer must see, with why: obscured, bridged, hands, and audit findings."""
    flags: dict[int, list[FrameFlag]] = {}

    def add(index: int, kind: FlagKind, text: str) -> None:
        items = flags.setdefault(int(index), [])
        if FrameFlag(kind, text) not in items:
            items.append(FrameFlag(kind, text))

    for frame in (report or {}).get("frames", []):
        for face in frame.get("faces", []):
            reason = face.get("reason", "")
            if face.get("status") == "obscured":
                kind = _FLAG_OF_REASON.get(reason, FlagKind.OBSCURED)
                add(frame["frame_index"], kind, f"obscured: {reason or 'no reason recorded'}")
            if face.get("hands_in_front"):
                add(frame["frame_index"], FlagKind.HAND, "hand over the face, kept in front")
    audit = (report or {}).get("audit") or {}
    for hit in (audit.get("leaks") or {}).get("hits", []):
        add(
            hit["frame_index"],
            FlagKind.LEAK,
            f"audit: {hit.get('recogniser', '?')} takes this face for the patient "
            f"(distance {hit.get('distance', float('nan')):.3f})",
        )
    for index in audit.get("frames_no_face_in_output", []):
        add(index, FlagKind.NO_FACE, "audit: no face found in the output here")
    return dict(sorted(flags.items()))


def sample_frames(n_frames: int, flagged: set[int], k: int) -> list[int]:
    """``k`` frames spread evenly over the video, none of them already flagged."""
    rest = np.array([i for i in range(n_frames) if i not in flagged])
    if k <= 0 or rest.size == 0:
        return []
    picks = np.linspace(0, rest.size - 1, min(k, rest.size)).round().astype(int)
    return sorted({int(rest[i]) for i in picks})


def audit_figures(audit: dict | None) -> dict | None:
    """The audit's figures without any path or file name (the original's may name a patient)."""
    if not audit:
        return None
    ident = audit.get("identification") or {}
    return {
        "safe": bool(audit.get("safe")),
        "nothing_to_protect": bool(audit.get("nothing_to_protect")),
        "frames": audit.get("frames"),
        "frames_with_original_face": audit.get("frames_with_original_face"),
        "leak_frames": list((audit.get("leaks") or {}).get("frames", [])),
        "frames_no_face_in_output": list(audit.get("frames_no_face_in_output", [])),
        "reid_rate": {r: v.get("reid_rate") for r, v in (audit.get("verification") or {}).items()},
        "rank1_rate": {r: v.get("rank1_rate") for r, v in ident.get("recognisers", {}).items()},
        "rank1_within_threshold_rate": {
            r: v.get("rank1_within_threshold_rate") for r, v in ident.get("recognisers", {}).items()
        },
        "rank1_rate_without_donors": {
            r: v.get("rank1_rate_without_donors") for r, v in ident.get("recognisers", {}).items()
        },
        "chance_rank1": ident.get("chance_rank1"),
        "chance_rank1_without_donors": ident.get("chance_rank1_without_donors"),
        "n_identities": ident.get("n_identities"),
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _rates(rates: dict) -> str:
    return ", ".join(f"{r} {_pct(v)}" for r, v in sorted(rates.items())) or "n/a"


def audit_line(audit: dict | None) -> SummaryLine:
    """Privacy audit: fail on any leak frame or re-identified frame; n/a when it did not run."""
    if audit is None:
        return SummaryLine("Privacy audit", Verdict.FAIL, "not run: nothing proves this output")
    if audit["nothing_to_protect"]:
        return SummaryLine("Privacy audit", Verdict.PASS, "no face in the original")
    leaks = audit["leak_frames"]
    reid = [v for v in audit["reid_rate"].values() if v]
    verdict = Verdict.FAIL if leaks or reid else Verdict.PASS
    first = f" (first at frame {leaks[0]})" if leaks else ""
    return SummaryLine(
        "Privacy audit",
        verdict,
        f"{len(leaks)} of {audit['frames']} frames show the patient{first}; "
        f"re-identified: {_rates(audit['reid_rate'])}",
    )


def lineup_line(audit: dict | None) -> SummaryLine:
    """Lineup rank-1: fail if a recogniser names the patient, warn if nearest more than chance.

    The rank-1 rate is closed-set (README, "Nearest is not recognised"): with the donor left out
    of the gallery the patient is often the nearest of a few strangers although no recogniser
    would call the output the patient. That is a limit to weigh (warn), not a leak (fail).
    """
    if audit is None or audit["nothing_to_protect"] or audit["chance_rank1"] is None:
        return SummaryLine("Lineup rank-1", Verdict.NONE, "no identification figure")
    chance = audit["chance_rank1"]
    chance_nd = audit["chance_rank1_without_donors"]
    named = [v for v in audit["rank1_within_threshold_rate"].values() if v]
    above = [v for v in audit["rank1_rate"].values() if v is not None and v > chance]
    above_nd = [
        v
        for v in audit["rank1_rate_without_donors"].values()
        if v is not None and chance_nd is not None and v > chance_nd
    ]
    verdict = Verdict.FAIL if named or above else Verdict.WARN if above_nd else Verdict.PASS
    detail = (
        f"{_rates(audit['rank1_rate'])} of {audit['n_identities']} (chance {_pct(chance)}); "
        f"without the donor {_rates(audit['rank1_rate_without_donors'])} "
        f"(chance {_pct(chance_nd)})"
    )
    return SummaryLine("Lineup rank-1", verdict, detail)


def obscured_line(totals: dict, frames: int) -> SummaryLine:
    """Frames obscured and why: never a failure (fail-closed), but a reviewer must look."""
    n = int(totals.get("frames_obscured", 0) or 0)
    reasons = {k: v for k, v in (totals.get("obscured_reasons") or {}).items() if k and v}
    why = "; ".join(f"{v} x {k}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return SummaryLine(
        "Frames obscured",
        Verdict.WARN if n else Verdict.PASS,
        f"{n} of {frames}" + (f": {why}" if why else ""),
    )


def fidelity_line(evaluation: dict) -> SummaryLine:
    """Keypoint fidelity from an evaluation: pass if the face groups' median NME <= 0.05."""
    nme = {
        k.split(".", 1)[1]: v
        for k, v in evaluation.items()
        if k.startswith("nme_median.") and v is not None
    }
    if not nme:
        return SummaryLine("Keypoint fidelity", Verdict.NONE, "no evaluation (batch --evaluate)")
    judged = {g: v for g, v in nme.items() if g in FACE_GROUPS}
    verdict = (
        Verdict.NONE
        if not judged
        else Verdict.PASS
        if max(judged.values()) <= NME_LIMIT
        else Verdict.FAIL
    )
    detail = ", ".join(f"{g} {v:.3f}" for g, v in sorted(nme.items()))
    return SummaryLine("Keypoint fidelity", verdict, f"median NME {detail} (face limit 0.05)")


def summarise(video: VideoReview) -> list[SummaryLine]:
    """The one-screen summary of one video, in the order a reviewer reads it."""
    return [
        audit_line(video.audit),
        lineup_line(video.audit),
        obscured_line(video.totals, video.frames),
        fidelity_line(video.evaluation),
    ]


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_report(data: dict | None) -> bool:
    return bool(data) and data.get("tool") == "medswap" and "frames" in data


def video_review(root: Path, file: Path, report: dict | None, row: dict | None) -> VideoReview:
    """One video's review record from its report and (for a batch) its manifest row."""
    rel = file.relative_to(root).as_posix()
    report = report or {}
    row = row or {}
    totals = report.get("totals") or row.get("metrics") or {}
    info = report.get("input") or {}
    review = VideoReview(
        file=rel,
        release_name=release_name(rel),
        sha256=sha256_file(file),
        frames=int(totals.get("frames") or row.get("frames") or 0),
        width=int(info.get("width") or 0),
        height=int(info.get("height") or 0),
        settings=dict(report.get("settings") or {}),
        totals=dict(totals),
        audit=audit_figures(report.get("audit")),
        evaluation=dict(row.get("evaluation") or report.get("evaluation") or {}),
        flags=frame_flags(report),
        staged=Path(rel).stem.endswith(STAGED_MARK),
    )
    review.summary = summarise(review)
    return review


def _single(root: Path, only: Path | None) -> list[VideoReview]:
    videos = []
    candidates = [only] if only else sorted(root.iterdir())
    for file in candidates:
        if file.suffix.lower() not in VIDEO_SUFFIXES or file.name.startswith("."):
            continue
        report = _read_json(file.with_suffix(".json"))
        if not _is_report(report):
            log.warning("%s: no report beside it (%s); not reviewed", file, file.stem + ".json")
            continue
        videos.append(video_review(root, file, report, None))
    return videos


def _batch(root: Path, manifest: dict) -> list[VideoReview]:
    videos = []
    for row in manifest.get("videos", []):
        if row.get("status") != "done":
            continue
        file = root / row["file"]
        if not file.is_file():
            raise InputNotFoundError("a video the batch manifest lists is missing", file)
        report = _read_json(file.with_suffix(".json"))
        videos.append(video_review(root, file, report if _is_report(report) else None, row))
    return videos


def load_review_set(path: str | Path) -> ReviewSet:
    """The videos under review in a batch folder, a video's folder, or one video file."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError("no such folder or video", path)
    if path.is_file():
        root, kind, videos = path.parent, "video", _single(path.parent, path)
    else:
        root = path
        manifest = _read_json(path / "manifest.json")
        if manifest is not None and "videos" in manifest:
            kind, videos = "batch", _batch(root, manifest)
        else:
            kind, videos = "video", _single(root, None)
    if not videos:
        raise UsageError(
            f"{path}: nothing to review (a de-identified video with its --report JSON beside "
            "it, or a batch folder with manifest.json and finished videos)"
        )
    return ReviewSet(root.resolve(), kind, videos)
