"""What a sweep leaves on disk: sweep.json, sweep.csv, frontier.png and report.html.

The numbers are measured in :mod:`medswap.studies.sweep` and judged in
:mod:`medswap.studies.frontier`; here they are only written down, as a table a spreadsheet
opens, a plot of the frontier and a report a person reads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from medswap.studies.frontier import SFACE_COSINE_MARGIN, TARGET

if TYPE_CHECKING:
    from medswap.report.html import ReportSection
    from medswap.studies.sweep import Sweep


COLUMNS = (
    "point",
    "method",
    "value",
    "videos",
    "reid_rate_dlib",
    "reid_rate_sface",
    "median_distance_dlib",
    "median_distance_sface",
    "leak_frames",
    "frames_audited",
    "face_nme",
    "face_detection_ratio",
    "face_pck_0.10",
    "mesh_nme",
    "body_nme",
    "hand_nme",
    "clinical_agreement",
    "clinical_lost",
    "privacy",
    "utility",
    "pareto",
)


def write_csv(rows: Sequence[dict], path: Path) -> Path:
    lines = [",".join(COLUMNS)]
    for r in rows:
        cells = []
        for c in COLUMNS:
            v = r.get(c)
            if isinstance(v, float):
                cells.append(f"{v:.6g}" if math.isfinite(v) else "")
            else:
                cells.append("" if v is None else str(v))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def frontier_plot(rows: Sequence[dict], front: Sequence[str]) -> bytes:
    """Two panels: privacy vs face PCK (the frontier, Pareto front marked) and re-id rate vs
    face NME (lost faces drawn at the top)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medswap.report.plots import _png, colour

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.2), dpi=100)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    nme_cap = max([0.3] + [r["face_nme"] * 1.1 for r in rows if math.isfinite(r["face_nme"])])
    for i, m in enumerate(methods):
        pts = [r for r in rows if r["method"] == m]
        c = colour(m, i)
        x = [r["privacy"] for r in pts]
        y = [r["utility"] for r in pts]
        ax.plot(x, y, "-o", color=c, label=m, ms=6, lw=1.2, alpha=0.9)
        for r, xi, yi in zip(pts, x, y):
            if math.isfinite(xi) and math.isfinite(yi):
                txt = (
                    ""
                    if r["value"] is None
                    else f"{r['value']:g}"
                    if isinstance(r["value"], float | int)
                    else str(r["value"])
                )
                ax.annotate(
                    txt, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7, color=c
                )
        reid = [max(r["reid_rate_dlib"], r["reid_rate_sface"]) for r in pts]
        nme = [r["face_nme"] if math.isfinite(r["face_nme"]) else nme_cap for r in pts]
        bx.plot(reid, nme, "-", color=c, lw=1.0, alpha=0.7)
        for r, xi, yi in zip(pts, reid, nme):
            lost = not math.isfinite(r["face_nme"])
            bx.plot(xi, yi, "x" if lost else "o", color=c, ms=7 if lost else 6, label=None)
        bx.plot([], [], "-o", color=c, label=m)
    fr = sorted((r for r in rows if r["point"] in front), key=lambda r: r["privacy"])
    if fr:
        ax.step(
            [r["privacy"] for r in fr],
            [r["utility"] for r in fr],
            where="pre",
            color="k",
            lw=2,
            alpha=0.35,
            label="Pareto front",
        )
        ax.plot(
            [r["privacy"] for r in fr],
            [r["utility"] for r in fr],
            "s",
            mfc="none",
            mec="k",
            ms=11,
            label="_nolegend_",
        )
    ax.set_xlabel("privacy: 1 - re-identification rate (worse of dlib and SFace)")
    ax.set_ylabel("utility: face-dlib68 PCK@0.10 (lost face = 0)")
    ax.set_title("Privacy-utility frontier (up and right is better)")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    bx.axhline(TARGET["face_nme_max"], color="0.5", ls=":", lw=1)
    bx.axvline(TARGET["reid_rate_max"], color="0.5", ls=":", lw=1)
    bx.axhline(nme_cap, color="0.8", lw=0.8)
    bx.text(0.5, nme_cap, "x: face lost (no NME)", ha="center", va="bottom", fontsize=7)
    bx.set_xlabel("re-identification rate (worse of dlib and SFace)")
    bx.set_ylabel("face-dlib68 median NME")
    bx.set_title("Re-identification vs landmark error (down and left is better)")
    bx.set_xlim(-0.05, 1.05)
    bx.set_ylim(0, nme_cap * 1.08)
    bx.grid(alpha=0.3)
    bx.legend(fontsize=8)
    return _png(fig)


def write_outputs(result: Sweep, out_dir: Path) -> None:
    """sweep.json, sweep.csv, frontier.png and report.html."""
    from medswap.report.html import write_report

    (out_dir / "sweep.json").write_text(json.dumps(result.to_json(), indent=2))
    write_csv(result.rows, out_dir / "sweep.csv")
    png = frontier_plot(result.rows, result.front)
    (out_dir / "frontier.png").write_bytes(png)
    write_report(
        out_dir / "report.html",
        "Privacy-utility frontier",
        report_sections(result, png),
        result.verdict,
        {"videos": len(result.videos)},
    )


#: The report's table of every setting: (column heading, key of the summary row).
SETTING_COLUMNS = (
    ("setting", "point"),
    ("re-id dlib", "reid_rate_dlib"),
    ("re-id SFace", "reid_rate_sface"),
    ("median dlib dist", "median_distance_dlib"),
    ("median SFace dist", "median_distance_sface"),
    ("leak frames", "leak_frames"),
    ("face NME", "face_nme"),
    ("face det. ratio", "face_detection_ratio"),
    ("face PCK@0.10", "face_pck_0.10"),
    ("body NME", "body_nme"),
    ("hand NME", "hand_nme"),
    ("clinical agreement", "clinical_agreement"),
    ("clinical lost", "clinical_lost"),
)
#: The conditions of issue 7's target, in the order the report's target table shows them.
TARGET_CHECKS = (
    "reid_dlib",
    "reid_sface",
    "median_distance_dlib",
    "sface_cosine_well_below",
    "face_nme",
    "all",
)


def setting_table(rows: Sequence[dict]) -> tuple[list[list], list[str]]:
    """The rows and header of the report's table of every setting, Pareto front marked."""
    header = [title for title, _ in SETTING_COLUMNS] + ["Pareto"]
    table = [[r[key] for _, key in SETTING_COLUMNS] + ["yes" if r["pareto"] else ""] for r in rows]
    return table, header


def target_table(targets: dict[str, dict]) -> tuple[list[list], list[str]]:
    """The rows and header of the report's table of each swap setting against the target."""
    header = [
        "setting",
        "re-id dlib <= 1%",
        "re-id SFace <= 1%",
        "median dlib >= 0.75",
        f"SFace cosine <= {SFACE_COSINE_MARGIN}",
        "face NME <= 0.05",
        "all",
        "median SFace cosine",
    ]
    table = [
        [p, *[("yes" if t[k] else "NO") for k in TARGET_CHECKS], t["median_sface_cosine"]]
        for p, t in targets.items()
    ]
    return table, header


def report_sections(result: Sweep, png: bytes) -> list[ReportSection]:
    """The report's sections: the frontier plot, every setting, the target, the reading."""
    from medswap.report.html import ReportSection, img_html, paragraphs, table_html

    rows, header = setting_table(result.rows)
    sections = [
        ReportSection(
            "Frontier",
            img_html(
                png,
                "privacy-utility frontier",
                "Left: each method's settings as a curve, the "
                "Pareto front in black. Right: re-identification "
                "against face landmark error; x = face lost.",
            ),
        ),
        ReportSection(
            "Every setting",
            table_html(
                rows,
                header,
                caption="Median across videos. Distances: dlib euclidean (same "
                "person < 0.6), SFace 1 - cosine (same person < 0.637); n/a where no face was "
                "found in the output. Clinical agreement: ok / (ok + differs + lost).",
            ),
        ),
    ]
    targets, target_header = target_table(result.targets)
    if targets:
        sections.append(
            ReportSection("Swap against issue 7's target", table_html(targets, target_header))
        )
    sections.append(ReportSection("Reading", paragraphs(result.verdict)))
    return sections
