"""Face motion in the evaluation's tables and report: what a person reads of
:mod:`medswap.evaluate.motion` (computed there, rendered here)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from medswap.report.html import ReportSection, bullet_list, table_html

if TYPE_CHECKING:
    from medswap.evaluate.invariance import Evaluation, MethodResult
    from medswap.evaluate.motion import EventMatch, MotionResult

_EVENT_NAMES = {
    "blink_onsets": "blink onsets",
    "mouth_peaks": "mouth openings",
    "blink_onsets_mesh": "blink onsets (face mesh)",
}


def _v(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _csv_text(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if ("," in value or '"' in value) else value


def _with_motion(result: Evaluation) -> list[tuple[str, MotionResult]]:
    return [(m.label, m.motion) for m in result.methods if m.motion is not None]


def motion_csv(result: Evaluation) -> str:
    """Long table ``method,group,metric,value,reason``: displacement figures and events."""
    lines = ["method,group,metric,value,reason"]
    for label, motion in _with_motion(result):
        for name, g in motion.groups.items():
            for metric, value in g.figures().items():
                lines.append(f"{label},{name},{metric},{_v(value)},{_csv_text(g.reason)}")
        for e in motion.events:
            for metric, value in e.figures().items():
                lines.append(f"{label},{e.kind},{metric},{_v(value)},{_csv_text(e.reason)}")
    return "\n".join(lines) + "\n"


def motion_events_csv(result: Evaluation) -> str:
    """``method,event,video,time_s,matched_time_s``: every event, and its partner if any."""
    lines = ["method,event,video,time_s,matched_time_s"]
    for label, motion in _with_motion(result):
        for e in motion.events:
            if e.original_s is None or e.deidentified_s is None:
                continue
            partner = dict(e.pairs)
            back = {j: i for i, j in e.pairs}
            for i, t in enumerate(e.original_s):
                other = e.deidentified_s[partner[i]] if i in partner else math.nan
                lines.append(f"{label},{e.kind},original,{t:.4f},{_v(float(other))}")
            for j, t in enumerate(e.deidentified_s):
                other = e.original_s[back[j]] if j in back else math.nan
                lines.append(f"{label},{e.kind},deidentified,{t:.4f},{_v(float(other))}")
    return "\n".join(lines) + "\n"


def motion_points_csv(result: Evaluation) -> str:
    """Per point: how much it moves in the original, its correlation and amplitude ratio."""
    lines = [
        "method,group,point,name,expressive,motion_sd_original,correlation,"
        "correlation_x,correlation_y,amplitude_ratio"
    ]
    for label, motion in _with_motion(result):
        for name, g in motion.groups.items():
            if g.reason:
                continue
            expressive = set(g.layout.expressive)
            for k, point in enumerate(g.layout.names):
                cells = (
                    g.motion_original[k],
                    g.correlation[k],
                    g.correlation_x[k],
                    g.correlation_y[k],
                    g.amplitude_ratio[k],
                )
                lines.append(
                    f"{label},{name},{k},{point},{int(k in expressive)},"
                    + ",".join(_v(float(c)) for c in cells)
                )
    return "\n".join(lines) + "\n"


def motion_files(result: Evaluation) -> dict[str, tuple[str, str]]:
    """The motion tables as ``{key: (file name, text)}``; empty when nothing was computed."""
    if not _with_motion(result):
        return {}
    return {
        "motion": ("motion.csv", motion_csv(result)),
        "motion_events": ("motion_events.csv", motion_events_csv(result)),
        "motion_points": ("motion_points.csv", motion_points_csv(result)),
    }


def _events_text(e: EventMatch) -> str:
    name = _EVENT_NAMES.get(e.kind, e.kind)
    if e.matched is None:
        return f"{name} not compared ({e.reason})"
    if not e.n_original and not e.n_deidentified:
        return f"no {name} in either video"
    return (
        f"{name} {e.matched} of {e.n_original} matched within {e.tolerance_s * 1000:.0f} ms "
        f"({e.n_deidentified} in the copy)"
    )


def motion_verdict(m: MethodResult) -> str | None:
    """One plain line on the face's motion in one de-identified video (dlib 68)."""
    if m.motion is None:
        return None
    g = m.motion.headline
    if g.reason:
        text = f"face motion (dlib 68) not measured: {g.reason}"
    else:
        text = (
            f"face motion (dlib 68): displacement error {g.nme_median:.3f} of the inter-ocular "
            f"distance, trajectories correlate {g.correlation_median:.2f} "
            f"(eyes, brows, mouth {g.correlation_expressive_median:.2f}), amplitude "
            f"{g.amplitude_ratio_expressive_median:.2f}x"
        )
        r = m.motion.readers
        if not r.reason:
            text += (
                f" (dlib and the face mesh, both on the original, correlate "
                f"{r.correlation_median:.2f})"
            )
    events = "; ".join(_events_text(e) for e in m.motion.events)
    return f"{m.label}: {text}; {events}"


_EXPLAIN = [
    "Each face is compared with its own resting (neutral) shape, so a de-identified face "
    "with another person's proportions is judged by how it moves, not where its features sit.",
    "displacement error: how far each landmark's movement from rest differs between the "
    "original and the copy, in inter-ocular distances (0.03 = 3% of the eye-corner "
    "distance); median over frames, and the 95th percentile (the worst 5% of frames).",
    "correlation: whether each landmark moves in step with the original's (1 = the same "
    "motion over time, 0 = unrelated); median over the landmarks that move, and over the "
    "eyelids, brows and lips.",
    "amplitude: how large the copy's movements are against the original's (1 = the same "
    "size, 0.5 = half).",
    "events: blinks (onset) and mouth openings (middle of the opening) found in each video "
    "and paired within 100 ms.",
]


def motion_section(result: Evaluation) -> ReportSection | None:
    """Displacement figures per face layout and events per method, with definitions."""
    items = _with_motion(result)
    if not items:
        return None
    rows = []
    for label, motion in items:
        for name, g in motion.groups.items():
            rows.append(
                [
                    label,
                    name,
                    g.nme_median,
                    g.nme_p95,
                    g.correlation_median,
                    g.correlation_expressive_median,
                    g.amplitude_ratio_median,
                    g.amplitude_ratio_expressive_median,
                    g.points_moving,
                    g.frames_compared,
                    g.reason,
                ]
            )
    body = table_html(
        rows,
        [
            "method",
            "group",
            "displacement error median",
            "displacement error p95",
            "correlation median",
            "correlation eyes/brows/mouth",
            "amplitude ratio",
            "amplitude ratio eyes/brows/mouth",
            "points moving",
            "frames",
            "not measured because",
        ],
        caption="Face motion from each face's own neutral shape (errors in inter-ocular "
        "distances; n/a = not measured)",
    )
    rows = [
        [
            label,
            _EVENT_NAMES.get(e.kind, e.kind),
            e.n_original,
            e.n_deidentified,
            e.matched,
            e.timing_error_ms_median,
            e.reason,
        ]
        for label, motion in items
        for e in motion.events
    ]
    body += table_html(
        rows,
        [
            "method",
            "event",
            "original",
            "copy",
            "matched",
            "median timing error (ms)",
            "not measured because",
        ],
        caption="Events matched in time: dlib 68 landmarks, which the swap does not use, "
        "and blinks on the face mesh, which drives the swap",
    )
    body += bullet_list(_EXPLAIN)
    return ReportSection("Face motion", body)
