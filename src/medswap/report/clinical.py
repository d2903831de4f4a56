"""The clinical measures as a person reads them: tables and overlay figures.

Computed by :mod:`medswap.evaluate.clinical`, which returns results and builds no HTML; the
tables live here so that ``evaluate`` never imports ``report`` (issue 21).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from medswap.evaluate.clinical import ClinicalAgreement, agreement_score, status_counts
from medswap.measures import CI_METHODS, MIN_VIDEOS
from medswap.report.html import ReportSection, escape, img_html, paragraphs, table_html


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
