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

from medswap.measures import CI_METHODS, MIN_VIDEOS, too_few
from medswap.outputs import json_safe
from medswap.report.html import ReportSection, escape, img_html, paragraphs, table_html
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


# -- report ---------------------------------------------------------------------------------------


def _value(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else "n/a"
    return str(v)


def summary_table(per_label: Mapping[str, Sequence[dict]]) -> str:
    """One row per method: how many measures agree, differ, are lost; the agreement score."""
    rows = []
    for label, r in per_label.items():
        c = status_counts(r)
        rows.append([label, c["ok"], c["differs"], c["lost"], c["absent"], agreement_score(r)])
    return table_html(
        rows,
        ["method", "ok", "differs", "LOST", "absent in original", "agreement score"],
        caption="Clinical measures against the original: ok = within tolerance (counts exact, "
        "frequencies 2 %, others 5 %); LOST = the original has the measure and the "
        "de-identified video does not; score = ok / (ok + differs + lost)",
    )


def detail_table(clin: ClinicalAgreement) -> str:
    """Measures in rows, the original and every method in columns; lost ones say so."""
    labels = list(clin.rows)
    by_label = {lb: {r["measure"]: r for r in rows} for lb, rows in clin.rows.items()}
    measures = list(dict.fromkeys(r["measure"] for rows in clin.rows.values() for r in rows))
    rows = []
    for m in measures:
        first = next(by_label[lb][m] for lb in labels if m in by_label[lb])
        cells: list[object] = [m, _value(first["original"])]
        for lb in labels:
            r = by_label[lb].get(m)
            if r is None:
                cells.append("-")
            elif r["status"] == "lost":
                cells.append(f"LOST ({r.get('error', '')})")
            elif r["status"] == "absent":
                cells.append("absent")
            else:
                cells.append(f"{_value(r['deidentified'])} ({r['status']})")
        rows.append(cells)
    return table_html(rows, ["measure", "original", *labels])


def _ci(v: object) -> str:
    if not isinstance(v, (list, tuple)) or len(v) != 2 or None in v:
        return ""
    return f"{v[0]:.4g} to {v[1]:.4g}"


def across_table(across: Mapping[str, dict]) -> str:
    """Per method and measure: n videos, Bland-Altman bias and limits, ICC(3,1), each with
    its 95 % confidence interval; a measure on fewer than 3 videos says so instead."""
    rows = []
    for label, stats in across.items():
        for measure, s in stats.items():
            if "error" in s:
                rows.append([label, measure, s["n"], *[None] * 4, "", s["error"]])
                continue
            rows.append(
                [
                    label,
                    measure,
                    s["n"],
                    f"{_value(s['mean_diff'])} ({_ci(s.get('mean_diff_ci'))})",
                    f"{_value(s['loa_low'])} ({_ci(s.get('loa_low_ci'))})",
                    f"{_value(s['loa_high'])} ({_ci(s.get('loa_high_ci'))})",
                    _value(s["icc_3_1"]),
                    _ci(s.get("icc_3_1_ci")),
                    "",
                ]
            )
    return table_html(
        rows,
        [
            "method",
            "measure",
            "videos",
            "bias (de-id - orig) (95 % CI)",
            "LoA low (95 % CI)",
            "LoA high (95 % CI)",
            "ICC(3,1)",
            "ICC 95 % CI",
            "note",
        ],
        caption="Across videos (at least "
        f"{MIN_VIDEOS}): Bland-Altman mean difference with 95 % limits of agreement, and "
        "ICC(3,1) (consistency of original and de-identified values). Confidence intervals: "
        + "; ".join(
            f"{k.removesuffix('_ci').replace('_', ' ')}: {v}" for k, v in CI_METHODS.items()
        ),
    )


def overlays_html(clin: ClinicalAgreement, base_dir: Path, rel_to: Path | None = None) -> str:
    """Overlay plots of every method, one collapsible block per method."""
    out = []
    for label, pngs in clin.overlays.items():
        if not pngs:
            out.append(f"<p>{escape(label)}: no signal in both videos to overlay.</p>")
            continue
        figs = "".join(
            img_html(base_dir / p, p, f"{label}: {Path(p).stem.removesuffix('_overlay')}")
            for p in pngs
        )
        out.append(
            f"<details><summary>{escape(label)}: {len(pngs)} signal(s), original (solid) vs "
            f"de-identified (dashed)</summary>{figs}</details>"
        )
    return "".join(out)


def clinical_section(clin: ClinicalAgreement, base_dir: Path) -> ReportSection:
    """The clinical measures section of one original's evaluation."""
    if not clin.rows:
        return ReportSection("Clinical measures", paragraphs(["No de-identified video."]))
    body = summary_table(clin.rows) + detail_table(clin) + overlays_html(clin, base_dir)
    return ReportSection("Clinical measures", body)


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
