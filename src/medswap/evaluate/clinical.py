"""Clinical measures beside the keypoint metrics: do the numbers a clinician reads survive?

``evaluate`` and ``compare`` already hold the keypoints of the original and of every
de-identified video; this module computes the clinical measures (:mod:`medswap.measures`) on
each, compares every de-identified video with the original (:func:`~medswap.measures.agreement`),
and across videos (:func:`~medswap.measures.agreement_across`: Bland-Altman and ICC(3,1), with
95 % confidence intervals, on at least 3 videos; below that the table says so).
Nothing is extracted again. A measure a method destroys (blur hides the eyes: no blinks) is a
``lost`` row, counted against the method, never dropped from the table.

The same helpers turn a privacy audit into the few numbers a comparison table shows.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medswap.measures import too_few
from medswap.outputs import json_safe
from medswap.types import KeypointSeries

log = logging.getLogger(__name__)

STATUSES = ("ok", "differs", "lost", "absent")
#: Top-level keys that describe the recording, not the patient: equal by construction, so
#: counting them would flatter every method.
RECORDING_KEYS = ("n_frames", "frame_rate_hz")


@dataclass
class ClinicalAgreement:
    """The measures of one original and of each de-identified version, and their agreement."""

    original: dict
    outputs: dict[str, dict]  # label -> measures dict
    rows: dict[str, list[dict]]  # label -> agreement rows (medswap.measures.agreement)
    overlays: dict[str, list[str]] = field(default_factory=dict)  # label -> PNGs (relative)

    def counts(self, label: str) -> dict[str, int]:
        return status_counts(self.rows[label])

    def score(self, label: str) -> float:
        return agreement_score(self.rows[label])

    def to_json(self) -> dict:
        return {
            "definition": "measures of each de-identified video against the original's; "
            "status ok (within tolerance), differs, lost (the original has it, the "
            "de-identified video does not), absent (the original has none)",
            "agreement_score": "ok / (ok + differs + lost)",
            "methods": {
                label: {
                    "counts": self.counts(label),
                    "agreement_score": _finite_or_none(self.score(label)),
                    "rows": json_safe(rows),
                    "overlays": self.overlays.get(label, []),
                }
                for label, rows in self.rows.items()
            },
        }


def status_counts(rows: Sequence[dict]) -> dict[str, int]:
    """How many measures are ``ok``, ``differs``, ``lost`` and ``absent``."""
    c = Counter(r["status"] for r in rows)
    return {s: int(c.get(s, 0)) for s in STATUSES}


def agreement_score(rows: Sequence[dict]) -> float:
    """The share of the original's measures that the de-identified video reproduces.

    ``ok / (ok + differs + lost)``: a lost measure counts as a failure, so hiding the face
    cannot score well. NaN when the original has no measure at all.
    """
    c = status_counts(rows)
    n = c["ok"] + c["differs"] + c["lost"]
    return c["ok"] / n if n else math.nan


def _finite_or_none(v: float) -> float | None:
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


def clinical_agreement(
    original: KeypointSeries,
    outputs: Mapping[str, KeypointSeries],
    out_dir: str | Path | None = None,
    task: str = "auto",
    original_set=None,
) -> ClinicalAgreement:
    """Measures on the original and on each output, their agreement, and overlay plots.

    With ``out_dir`` the overlays go to ``out_dir/signals/<label>/<signal>_overlay.png``.
    ``original_set`` is the original's :class:`~medswap.measures.MeasureSet` when already
    computed (a sweep measures one original against many outputs).
    """
    from medswap.measures import agreement, measure_set, write_overlays

    mo = original_set if original_set is not None else measure_set(original, task)
    result = ClinicalAgreement(original=mo.values, outputs={}, rows={})
    for label, series in outputs.items():
        md = measure_set(series, task)
        result.outputs[label] = md.values
        result.rows[label] = [
            r for r in agreement(mo.values, md.values) if r["measure"] not in RECORDING_KEYS
        ]
        if out_dir is not None:
            folder = Path(out_dir) / "signals" / label
            paths = write_overlays(mo.signals, md.signals, folder)
            result.overlays[label] = [p.relative_to(out_dir).as_posix() for p in paths]
    return result


def across_videos(per_video: Mapping[str, ClinicalAgreement], label: str) -> dict:
    """Bland-Altman and ICC(3,1) of one method's measures across videos.

    Every measure of a method run on fewer than 3 videos says ``needs at least 3 videos,
    had N`` (see :func:`~medswap.measures.agreement_across`).
    """
    from medswap.measures import agreement_across

    pairs = [(c.original, c.outputs[label]) for c in per_video.values() if label in c.outputs]
    return agreement_across(pairs)


def across_note(n_videos: int) -> str:
    """The line a report shows instead of the across-video table when videos are too few."""
    return f"Bland-Altman limits and ICC(3,1) across videos: {too_few(n_videos)}."


# -- privacy numbers ------------------------------------------------------------------------------


def privacy_numbers(result) -> dict:
    """The few numbers of an :class:`~medswap.evaluate.privacy.AuditResult` a table shows."""
    from medswap.evaluate.privacy import RECOGNISERS

    if result.nothing_to_protect:
        return {"nothing_to_protect": True, "frames": result.frames}
    ident = result.identification
    rec = ident.get("recognisers", {})
    out: dict = {"nothing_to_protect": False, "frames": result.frames, "stride": result.stride}
    for r in RECOGNISERS:
        v = result.verification.get(r, {})
        out[f"reid_rate_{r}"] = v.get("reid_rate")
        out[f"median_distance_{r}"] = v.get("distance", {}).get("median")
        out[f"rank1_{r}"] = rec.get(r, {}).get("rank1_rate")
        out[f"rank1_without_donor_{r}"] = rec.get(r, {}).get("rank1_rate_without_donors")
    out["chance_rank1"] = ident.get("chance_rank1")
    out["chance_rank1_without_donor"] = ident.get("chance_rank1_without_donors")
    out["leak_frames"] = len(result.leak_frames)
    out["frames_no_face_in_output"] = len(result.frames_no_face_in_output)
    out["safe"] = result.safe
    return out
