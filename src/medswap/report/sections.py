"""Report sections for the keypoint invariance evaluation (single video and comparisons)."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

from medswap.evaluate.invariance import nothing_measured_text
from medswap.keypoints.schema import EVAL_GROUPS, LAYOUTS
from medswap.report.html import (
    ReportSection,
    bullet_list,
    escape,
    img_html,
    paragraphs,
    table_html,
)
from medswap.report.motion import motion_section, motion_verdict

_SHOWN = (
    "nme_median",
    "nme_p95",
    "pck_0.05",
    "pck_0.10",
    "detection_rate",
    "detection_rate_original",
    "jitter_ratio",
)


def evaluation_verdict(result) -> list[str]:
    """Plain-language lines for one original and its de-identified versions."""
    if result.nothing_measured:
        return [nothing_measured_text(f"the original video {Path(result.original).name}")]
    lines = []
    floor = next((m for m in result.methods if m.label == "reencode"), None)
    for m in result.methods:
        face = m.groups["face-dlib68"].metrics
        body = m.groups["body-nonfacial"].metrics
        parts = []
        if face["detection_rate_original"] > 0:
            ratio = face["detection_rate"] / face["detection_rate_original"]
            nme = face["nme_median"]
            parts.append(
                f"independent face landmarks (dlib 68) found {ratio:.0%} as often as in the "
                "original"
                + (
                    f", median error {nme:.3f} of the inter-ocular distance"
                    if math.isfinite(nme)
                    else ""
                )
            )
        if math.isfinite(body["nme_median"]):
            txt = f"body below the face moved {body['nme_median']:.3f} of the shoulder width"
            if floor is not None and m is not floor:
                fb = floor.groups["body-nonfacial"].metrics["nme_median"]
                if math.isfinite(fb):
                    txt += f" (re-encoding alone: {fb:.3f})"
            parts.append(txt)
        lines.append(f"{m.label}: " + ("; ".join(parts) if parts else "nothing comparable"))
    lines += [line for line in map(motion_verdict, result.methods) if line]
    return lines


def metrics_table(result, label: str) -> str:
    m = next(x for x in result.methods if x.label == label)
    rows = [
        [
            g.name,
            LAYOUTS[g.layout].normaliser_name,
            *[m.groups[g.name].metrics[k] for k in _SHOWN],
            m.groups[g.name].frames_compared,
        ]
        for g in EVAL_GROUPS
    ]
    return table_html(
        rows,
        ["group", "normaliser", *_SHOWN, "frames compared"],
        caption=f"{label}: {Path(m.video).name}",
    )


def flagged_html(result) -> str:
    rows = [
        [m.label, f.get("frame_index"), f.get("time_s"), f.get("reason", "")]
        for m in result.methods
        for f in m.flagged
    ]
    if not rows:
        return paragraphs(
            [
                "No frame was flagged by the de-identification reports (or no "
                "report was found next to the videos)."
            ]
        )
    return table_html(rows[:500], ["method", "frame", "time (s)", "reason"]) + (
        paragraphs([f"... and {len(rows) - 500} more"]) if len(rows) > 500 else ""
    )


def evaluation_sections(result, out_dir: Path) -> list[ReportSection]:
    """Verdict, tables, plots, stills and flagged frames of one evaluation."""
    verdict = evaluation_verdict(result)
    sections = [ReportSection("Verdict", paragraphs(verdict))]
    if result.nothing_measured:
        return sections
    sections.append(
        ReportSection("Metrics", "".join(metrics_table(result, m.label) for m in result.methods))
    )
    motion = motion_section(result)
    if motion is not None:
        sections.append(motion)
    figs = ""
    for key, caption in (
        ("plot_nme_by_group", "Median NME per keypoint group"),
        ("plot_nme_over_time", "NME per frame"),
    ):
        if key in result.files:
            figs += img_html(out_dir / result.files[key], caption, caption)
    sections.append(ReportSection("Plots", figs or paragraphs(["No plot."])))
    stills = "".join(
        img_html(out_dir / name, key, key.removeprefix("still_") + " (red: original's points)")
        for key, name in result.files.items()
        if key.startswith("still_")
    )
    if stills:
        sections.append(ReportSection("Keypoints overlaid", stills))
    sections += extra_sections(result, out_dir)
    sections.append(ReportSection("Flagged frames", flagged_html(result)))
    sections.append(ReportSection("Definitions", definitions_html()))
    return sections


def extra_sections(result, out_dir: Path) -> list[ReportSection]:
    """The privacy audit and clinical measures of one evaluation, when they were computed."""
    sections = []
    if result.privacy:
        from medswap.evaluate.privacy import privacy_section

        sections.append(ReportSection(*privacy_section(result.privacy)))
    if result.clinical is not None:
        from medswap.report.clinical import clinical_section

        sections.append(clinical_section(result.clinical, out_dir))
    return sections


def comparison_extra_sections(comp) -> list[ReportSection]:
    """Privacy and clinical measures across the compared videos, when they were computed."""
    sections = []
    if comp.privacy:
        rows = [
            [
                m,
                p["videos"],
                p["reid_rate_dlib"],
                p["reid_rate_sface"],
                p["median_distance_dlib"],
                p["median_distance_sface"],
                p["rank1_dlib"],
                p["rank1_sface"],
                p["chance_rank1"],
                p.get("rank1_without_donor_dlib"),
                p.get("rank1_without_donor_sface"),
                p.get("chance_rank1_without_donor"),
                p["leak_frames"],
                p["frames"],
            ]
            for m, p in comp.privacy.items()
        ]
        sections.append(
            ReportSection(
                "Privacy across videos",
                table_html(
                    rows,
                    [
                        "method",
                        "videos",
                        "re-id dlib",
                        "re-id SFace",
                        "median dlib distance",
                        "median SFace distance",
                        "rank-1 dlib",
                        "rank-1 SFace",
                        "chance",
                        "rank-1 dlib, no donor",
                        "rank-1 SFace, no donor",
                        "chance, no donor",
                        "leak frames",
                        "frames",
                    ],
                    caption="Median across videos (leak frames and frames summed). Same "
                    "person: dlib distance < 0.6, SFace cosine > 0.363 (distance < 0.637); a "
                    "face not found in the output counts as hidden. Rank-1: how often the "
                    'patient is the nearest of the gallery; "no donor": the same without the '
                    "donor in the gallery, as an attacker with a short list of candidate patients "
                    "would rank them.",
                ),
            )
        )
    if comp.clinical:
        from medswap.evaluate.clinical import across_note
        from medswap.report.clinical import across_table

        rows = []
        for m, c in comp.clinical.items():
            k = c["counts"]
            rows.append([m, k["ok"], k["differs"], k["lost"], k["absent"], c["agreement_score"]])
        body = table_html(
            rows,
            ["method", "ok", "differs", "LOST", "absent in original", "agreement score"],
            caption="Clinical measures pooled over videos: LOST = the original "
            "has the measure, the de-identified video does not",
        )
        across = {m: c["across_videos"] for m, c in comp.clinical.items() if c["across_videos"]}
        if across:
            body += across_table(across)
        else:
            body += paragraphs([across_note(len(comp.evaluations))])
        sections.append(ReportSection("Clinical measures across videos", body))
    return sections


def definitions_html() -> str:
    from medswap.evaluate.invariance import DEFINITIONS

    items = [f"{k}: {v}" for k, v in DEFINITIONS.items() if isinstance(v, str)]
    items.append(
        "normalisers: "
        + ", ".join(f"{g.name} = {LAYOUTS[g.layout].normaliser_name}" for g in EVAL_GROUPS)
    )
    return bullet_list(items) + f"<p>{escape('Missing keypoints are NaN, never zeros.')}</p>"


def _ci_text(t) -> str:
    """A paired test's CI as text; empty where it was not computed (too few videos)."""
    if not (math.isfinite(t.ci_low) and math.isfinite(t.ci_high)):
        return ""
    return f"{t.ci_low:.4g} to {t.ci_high:.4g}"


#: What each check of the comparison summary means, in the words a clinician reads first.
SUMMARY_DEFINITIONS = (
    "NME: how far a keypoint moved between the original and the de-identified video, as a "
    "fraction of a size that does not depend on the camera (the distance between the outer eye "
    "corners for the face, the shoulder width for the body, the palm for a hand).",
    "Re-encode floor: the same video compressed once more and nothing else; no method can move "
    "keypoints less than this.",
    "Face landmarks: found by dlib's 68-point model, which the swap never uses. Face motion: "
    "how each landmark moves away from the face's own resting shape (the swap draws the "
    "donor's resting shape on purpose, so motion, not position, is what must be kept); motion "
    "NME is the difference of those movements, r their correlation over time.",
    "Re-identified: a face recogniser (dlib ResNet or SFace) judges the de-identified face to be "
    "the patient.",
    "Rank-1 without the donor: how often the patient is the closest of a gallery of other "
    "people (the donor left out), as an attacker with a list of patients' photos would check.",
    "Clinical measures: tapping, hand movements, tremor, blinks and mouth opening computed on "
    "both videos; ok when within the measure's tolerance.",
)

#: Rank-1 identification without the donor above this is a privacy failure (issue-19 bar).
RANK1_MAX = 0.10


Cell = tuple[str, str]  # (text, "pass" | "fail" | "na")
NA: Cell = ("n/a", "na")


def _judged(text: str, ok: bool) -> Cell:
    return text, "pass" if ok else "fail"


def _median(comp, metric: str, group: str, method: str) -> float:
    stat = comp.summary.get(metric, {}).get(group, {}).get(method)
    return math.nan if stat is None else stat.median


def _face_cell(comp, method: str) -> Cell:
    from medswap.evaluate.compare import (
        FACE_DETECTION_RATIO,
        FACE_MOTION_CORRELATION_MIN,
        FACE_MOTION_NME_MAX,
    )

    ratio = _median(comp, "detection_ratio", "face-dlib68", method)
    motion = _median(comp, "motion_nme_median", "face-dlib68", method)
    corr = _median(comp, "motion_correlation", "face-dlib68", method)
    if not math.isfinite(ratio):
        return NA
    if not (math.isfinite(motion) and math.isfinite(corr)):
        return _judged(f"found {ratio:.0%}", False)
    ok = (
        ratio >= FACE_DETECTION_RATIO
        and motion <= FACE_MOTION_NME_MAX
        and corr >= FACE_MOTION_CORRELATION_MIN
    )
    return _judged(f"found {ratio:.0%}, motion NME {motion:.3f}, r {corr:.2f}", ok)


def _floor_cell(comp, group: str, method: str) -> Cell:
    from medswap.evaluate.compare import CONTROL, FLOOR_FACTOR

    nme, floor = (
        _median(comp, "nme_median", group, method),
        _median(comp, "nme_median", group, CONTROL),
    )
    if not math.isfinite(nme):
        return NA
    if method == CONTROL or not math.isfinite(floor) or floor <= 0:
        return f"NME {nme:.3f}", "na"
    return _judged(f"{nme / floor:.1f}x floor", nme / floor <= FLOOR_FACTOR)


def _leak_cell(comp, method: str) -> Cell:
    p = (comp.privacy or {}).get(method)
    if p is None:
        return NA
    return _judged(f"{p['leak_frames']} of {p['frames']} frames", p["leak_frames"] == 0)


def _rank1_cell(comp, method: str) -> Cell:
    p = (comp.privacy or {}).get(method) or {}
    r1 = [p.get(f"rank1_without_donor_{r}") for r in ("dlib", "sface")]
    if any(v is None or not math.isfinite(v) for v in r1):
        return NA
    return _judged(f"dlib {r1[0]:.0%}, SFace {r1[1]:.0%}", max(r1) <= RANK1_MAX)


def _clinical_cell(comp, method: str) -> Cell:
    k = ((comp.clinical or {}).get(method) or {}).get("counts")
    n = k["ok"] + k["differs"] + k["lost"] if k else 0
    return _judged(f"{k['ok']} of {n} ok", k["ok"] == n) if n else NA


def summary_rows(comp) -> list[tuple[str, list[Cell]]]:
    """One row per check, one cell per method; a row that is n/a for every method is left out."""
    from medswap.evaluate.compare import (
        FACE_DETECTION_RATIO,
        FACE_MOTION_CORRELATION_MIN,
        FACE_MOTION_NME_MAX,
        FLOOR_FACTOR,
    )

    checks = [
        (
            f"Face motion kept (found >= {FACE_DETECTION_RATIO:.0%}, motion NME <= "
            f"{FACE_MOTION_NME_MAX}, r >= {FACE_MOTION_CORRELATION_MIN})",
            lambda m: _face_cell(comp, m),
        ),
        *(
            (f"{label} at the re-encode floor (<= {FLOOR_FACTOR}x)", partial(_floor_cell, comp, g))
            for g, label in (
                ("body-nonfacial", "Body (shoulders down)"),
                ("left-hand", "Left hand"),
                ("right-hand", "Right hand"),
            )
        ),
        ("Frames where a recogniser re-identifies the patient (none)", partial(_leak_cell, comp)),
        (f"Rank-1 without the donor (<= {RANK1_MAX:.0%})", partial(_rank1_cell, comp)),
        ("Clinical measures within tolerance (all)", partial(_clinical_cell, comp)),
    ]
    rows = [(label, [cell(m) for m in comp.methods]) for label, cell in checks]
    return [(label, cells) for label, cells in rows if any(c != NA for c in cells)]


def summary_html(comp) -> str:
    """Definitions first, then one check per row with pass/fail in colour."""
    head = "".join(f"<th>{escape(m)}</th>" for m in comp.methods)
    body = "".join(
        f"<tr><th class='check'>{escape(label)}</th>"
        + "".join(f'<td class="{cls}">{escape(text)}</td>' for text, cls in cells)
        + "</tr>"
        for label, cells in summary_rows(comp)
    )
    table = (
        f"<table class='summary'><thead><tr><th>check</th>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )
    return bullet_list(SUMMARY_DEFINITIONS) + table


def comparison_sections(comp, out_dir: Path) -> list[ReportSection]:
    """The paper's table, the tests, the plots and each video's details for ``compare``."""
    if comp.nothing_measured:
        return [ReportSection("Verdict", paragraphs(comp.verdict))]
    sections = [ReportSection("Summary", summary_html(comp)), *_summary_tables(comp)]
    if tests := _tests_section(comp):
        sections.append(tests)
    sections.append(_nme_plot_section(comp, out_dir))
    sections += comparison_extra_sections(comp)
    sections += [_video_section(name, ev) for name, ev in comp.evaluations.items()]
    sections.append(ReportSection("Definitions", definitions_html()))
    return sections


#: The across-video tables of ``compare``: (metric, caption); the title is the caption's head.
_SUMMARY_TABLES = (
    (
        "nme_median",
        "Median NME per video (normalised error; lower is better): median [IQR]; 95 % CI "
        "of the median across videos",
    ),
    ("detection_ratio", "Detection rate relative to the original: median [IQR]; 95 % CI"),
    ("pck_0.10", "PCK@0.10: median [IQR]; 95 % CI"),
    ("jitter_ratio", "Jitter relative to the original: median [IQR]; 95 % CI"),
)


def _summary_tables(comp) -> list[ReportSection]:
    """One table per metric: each group's median [IQR] and CI, per method, across videos."""
    from medswap.evaluate.stats import CI_METHOD

    header = ["group", *comp.methods]
    sections = []
    for metric, caption in _SUMMARY_TABLES:
        caption += f" (CI: {CI_METHOD})"
        rows = [
            [g, *[comp.summary[metric][g][m].format() for m in comp.methods]]
            for g in comp.summary[metric]
        ]
        sections.append(
            ReportSection(
                caption.split(" (")[0].split(":")[0], table_html(rows, header, caption=caption)
            )
        )
    return sections


def _tests_section(comp) -> ReportSection | None:
    """The Wilcoxon tests of the swap against each baseline (None when none was run)."""
    rows = [
        [base, g, metric, t.n, t.p_value, t.median_difference, _ci_text(t), t.note]
        for base, groups in comp.tests.items()
        for g, row in groups.items()
        for metric, t in row.items()
    ]
    if not rows:
        return None
    header = [
        "baseline",
        "group",
        "metric",
        "n",
        "p",
        "median swap - baseline",
        "95 % CI (bootstrap over videos)",
        "note",
    ]
    return ReportSection(
        "Wilcoxon signed-rank tests, swap vs each baseline", table_html(rows, header)
    )


def _nme_plot_section(comp, out_dir: Path) -> ReportSection:
    """The error per keypoint group as bars (median, IQR), also written as nme_by_group.png."""
    from medswap.report import plots

    nme = comp.summary["nme_median"]
    med = {g: {m: s.median for m, s in row.items()} for g, row in nme.items()}
    lo = {g: {m: s.q1 for m, s in row.items()} for g, row in nme.items()}
    hi = {g: {m: s.q3 for m, s in row.items()} for g, row in nme.items()}
    png = plots.bar_by_group(
        med, "median NME (IQR)", "Keypoint error per group across videos", lo, hi
    )
    (out_dir / "nme_by_group.png").write_bytes(png)
    return ReportSection("Error per keypoint group", img_html(png, "error per group"))


def _video_section(name: str, ev) -> ReportSection:
    """One video's plots, stills, extra sections and flagged frames, and a link to its report."""
    body = ""
    if ev.nothing_measured:
        body = paragraphs(evaluation_verdict(ev))
    else:
        for key in ("plot_nme_over_time",):
            if key in ev.files:
                body += img_html(ev.out_dir / ev.files[key], "error over time", "NME per frame")
        body += "".join(
            img_html(ev.out_dir / f, k, k.removeprefix("still_") + " (red: original's points)")
            for k, f in ev.files.items()
            if k.startswith("still_")
        )
        for sec in extra_sections(ev, ev.out_dir):
            body += f"<h3>{escape(sec.title)}</h3>{sec.html}"
        body += "<h3>Flagged frames</h3>" + flagged_html(ev)
    rel = Path("videos") / name / "report.html"
    body += f'<p><a href="{escape(rel.as_posix())}">Full metrics of {escape(name)}</a></p>'
    return ReportSection(f"Video: {name}", body)
