"""The paper's experiment as one call: de-identify each video every way, measure, compare.

For each video: run :func:`medswap.pipeline.deidentify` once per method, plus the ``reencode``
control (the original re-encoded once through the same encoder, with no de-identification),
extract keypoints of the original and of every output once (cached under
``DIR/videos/<name>/keypoints``, keyed by the video's SHA-256), and evaluate each output
against the original. Then aggregate across videos: methods in columns, keypoint groups in
rows, median and IQR, the paired Wilcoxon signed-rank test of swap against each baseline, a
plain-language verdict, and ``report.html``.

Beside the keypoints: a privacy audit of every output (:mod:`medswap.evaluate.privacy`) on
every ``privacy_stride``-th frame (a sample: ``medswap audit`` scans every frame for leaks),
with the original's faces found once per video (off with ``privacy=False``); and the
clinical measures of every output against the original's (:mod:`medswap.evaluate.clinical`),
per video and across videos.

Every method is measured on its delivered, encoded output, as a user would share it, and read
against ``reencode``, the noise floor that encoding alone causes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medswap.errors import KeypointFileError, MedswapError, OutputError, UsageError
from medswap.evaluate.invariance import (
    METRICS,
    Evaluation,
    _prepare_dir,
    check_videos_aligned,
    evaluate_series,
    flagged_frames,
    write_evaluation,
)
from medswap.evaluate.stats import (
    CI_METHOD,
    MIN_VIDEOS,
    MedianIQR,
    PairedTest,
    median_iqr,
    too_few,
    wilcoxon_paired,
)
from medswap.keypoints.schema import EVAL_GROUPS
from medswap.models import AUDIT_MODELS, DEIDENTIFY_MODELS, KEYPOINT_MODELS
from medswap.models import require as require_models
from medswap.outputs import json_safe, write_text_atomic
from medswap.swap.donors import DEFAULT_DONOR
from medswap.types import METHODS, KeypointSeries

log = logging.getLogger(__name__)

CONTROL = "reencode"
#: Thresholds of the claims the verdict checks (the paper's).
FACE_DETECTION_RATIO = 0.98
#: The face's motion kept (issue 19): displacement from its own neutral within 0.03 of the
#: inter-ocular distance, and each point's trajectory correlated >= 0.9 with the original's.
FACE_MOTION_NME_MAX = 0.03
FACE_MOTION_CORRELATION_MIN = 0.9
FLOOR_FACTOR = 1.5
#: compare's report shows frames of the original videos (the re-encode column, overlays).
ORIGINALS_WARNING = (
    "This report and its folder hold frames of the original videos: identifiable faces. "
    "Keep them with the original data; do not share them."
)
#: ``compare`` audits every n-th frame (detection and both recognisers; about 1 s a frame on
#: a loaded 2-core machine, so a full scan of every output would dominate the comparison).
PRIVACY_STRIDE = 3
#: The privacy numbers aggregated across videos (median), from ``clinical.privacy_numbers``.
PRIVACY_KEYS = (
    "reid_rate_dlib",
    "reid_rate_sface",
    "median_distance_dlib",
    "median_distance_sface",
    "rank1_dlib",
    "rank1_sface",
    "chance_rank1",
    "rank1_without_donor_dlib",
    "rank1_without_donor_sface",
    "chance_rank1_without_donor",
)

#: ``progress(video, stage, done, total)``: stage is "deidentify <method>" or "keypoints <label>".
Progress = Callable[[str, str, int, int], None]
#: A de-identifier: ``fn(input, output, report_json, max_frames)`` writes ``output``.
Deidentifier = Callable[[Path, Path, Path, "int | None"], object]


def reencode(input: str | Path, output: str | Path, max_frames: int | None = None) -> Path:
    """Re-encode a video once through medswap's encoder, changing nothing else (the control)."""
    from medswap.video import VideoWriter, probe, read_frames

    info = probe(input)
    with VideoWriter(output, info) as writer:
        for frame in read_frames(input, info=info, max_frames=max_frames):
            writer.write(frame.image, frame.pts)
    return Path(output)


def pipeline_deidentifier(method: str, **options) -> Deidentifier:
    """The product's own de-identification (``medswap.pipeline.deidentify``) for a method.

    ``options`` go to every call (``engine="learned"``); a call may add more (``model=``).
    """

    def run(
        input: Path,
        output: Path,
        report: Path,
        max_frames: int | None,
        progress: Callable[[int, int], None] | None = None,
        **more,
    ):
        try:
            from medswap.pipeline import deidentify
        except ImportError as exc:
            raise UsageError(
                f"method '{method}' needs medswap.pipeline, which does not load ({exc})"
            ) from None
        return deidentify(
            input,
            output,
            method=method,
            report=report,
            overwrite=True,
            max_frames=max_frames,
            progress=progress,
            **options,
            **more,
        )

    run.accepts_progress = True
    return run


#: The method label of the learned engine's column in ``compare --engines mesh,learned``.
LEARNED = "swap-learned"


def learned_deidentifier(steps: int, size: int = 64, device: str = "cpu") -> Deidentifier:
    """Train the learned engine on each original video, then swap it with that model.

    The same budget (``steps``, ``size``, ``device``) for every video, so the column compares
    like with like. The model is trained on the clip it de-identifies (the paper's setting:
    the patient's own frames), with the default donor rendered in the patient's poses; it is
    written beside the output as ``<output>.medswap`` (and its checkpoint, which is patient
    data). Needs the ``medswap[learned]`` extra.
    """

    swap = pipeline_deidentifier("swap", engine="learned")

    def run(input: Path, output: Path, report: Path, max_frames: int | None, progress=None):
        from medswap.learned.train import TrainConfig, train_model

        model = Path(output).with_suffix(".medswap")
        config = TrainConfig(
            size=size, steps=steps, device=device, max_frames=max_frames, checkpoint_every=10**9
        )
        trained = train_model([input], [DEFAULT_DONOR], model, config)
        log.info("%s: learned engine trained in %.0f s", Path(input).name, trained.seconds)
        return swap(input, output, report, max_frames, progress, model=model)

    run.accepts_progress = True
    return run


@dataclass
class Comparison:
    """The aggregated result of :func:`compare`."""

    videos: list[str]
    methods: list[str]  # columns, reencode first
    evaluations: dict[str, Evaluation]  # per video name
    summary: dict[str, dict[str, dict[str, MedianIQR]]]  # metric -> group -> method -> stats
    tests: dict[str, dict[str, dict[str, PairedTest]]]  # baseline -> group -> metric -> test
    claims: dict[str, dict] = field(default_factory=dict)
    verdict: list[str] = field(default_factory=list)
    out_dir: Path | None = None
    privacy: dict[str, dict] = field(default_factory=dict)  # method -> aggregated numbers
    clinical: dict[str, dict] = field(default_factory=dict)  # method -> counts, across stats

    @property
    def nothing_measured(self) -> bool:
        return all(e.nothing_measured for e in self.evaluations.values())

    def to_json(self) -> dict:
        return {
            "videos": self.videos,
            "methods": self.methods,
            "nothing_measured": self.nothing_measured,
            "verdict": self.verdict,
            "claims": self.claims,
            "summary": {
                metric: {g: {m: s.to_json() for m, s in row.items()} for g, row in groups.items()}
                for metric, groups in self.summary.items()
            },
            "wilcoxon_swap_vs": {
                b: {g: {k: t.to_json() for k, t in row.items()} for g, row in groups.items()}
                for b, groups in self.tests.items()
            },
            "per_video": {name: str(e.out_dir) for name, e in self.evaluations.items()},
            "privacy": self.privacy,
            "clinical_measures": self.clinical,
        }


def _unique_names(videos: Sequence[Path]) -> list[str]:
    names, seen = [], {}
    for v in videos:
        base = v.stem
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


def _cached_keypoints(
    video: Path, cache: Path, max_frames: int | None, progress: Callable[[int, int], None] | None
) -> KeypointSeries:
    """Keypoints of a video from the cache when it was made from this exact file."""
    from medswap.keypoints import extract_keypoints, load_keypoints, save_keypoints

    if cache.is_file():
        try:
            series = load_keypoints(cache, video=video)
            if series.meta.get("max_frames") == max_frames:
                log.info("%s: keypoints from cache %s", video.name, cache)
                return series
        except MedswapError as exc:  # stale (another video) or damaged: extract again
            log.info("%s: cache not used (%s)", video.name, exc)
    series = extract_keypoints(video, max_frames=max_frames, progress=progress)
    try:
        save_keypoints(series, cache, fmt="npz", overwrite=True, inputs=[video])
    except (OSError, KeypointFileError, OutputError) as exc:
        log.warning("%s: could not cache keypoints (%s)", cache, exc)
    return series


def _donor_names(ret: object, label: str) -> list[str] | None:
    """The donors a de-identifier used, as the audit takes them (built-in names or paths)."""
    names = getattr(ret, "donors", None)
    if names:
        return [str(n).split(":", 1)[0] for n in names]
    return [DEFAULT_DONOR] if label == "swap" else None


def audit_outputs(
    video: Path,
    outputs: dict[str, Path],
    donors: dict[str, list | None],
    out_dir: Path,
    max_frames: int | None,
    stride: int = PRIVACY_STRIDE,
    original_faces=None,
    progress: Progress | None = None,
    name: str = "",
):
    """Privacy audit of each output; the original's faces are found once and reused.

    Only every ``stride``-th frame is analysed (the audit's ``grid_only`` sample). Writes
    ``out_dir/audit/<label>.json``; returns ``{label: AuditResult}``.
    """
    from medswap.evaluate.privacy import audit, scan_original, write_json

    _prepare_dir(out_dir / "audit")
    if original_faces is None:
        if progress:
            progress(name, "privacy original", 0, 1)
        original_faces = scan_original(video, max_frames=max_frames, stride=stride, grid_only=True)
    results = {}
    for i, (label, out) in enumerate(outputs.items()):
        if progress:
            progress(name, f"privacy {label}", i, len(outputs))
        results[label] = audit(
            video,
            out,
            donors=donors.get(label),
            max_frames=max_frames,
            stride=stride,
            original_faces=original_faces,
            grid_only=True,
        )
        write_json(results[label], out_dir / "audit" / f"{label}.json")
    return results


def compare_one(
    video: Path,
    name: str,
    out_dir: Path,
    methods: Sequence[str],
    deidentifiers: dict[str, Deidentifier],
    max_frames: int | None = None,
    progress: Progress | None = None,
    privacy: bool = True,
    privacy_stride: int = PRIVACY_STRIDE,
) -> Evaluation:
    """De-identify one video every way, extract, evaluate, audit; files under ``out_dir``."""
    _prepare_dir(out_dir / "keypoints")
    outputs: dict[str, Path] = {}
    reports: dict[str, Path] = {}
    donors: dict[str, list | None] = {}
    for label in (CONTROL, *methods):
        out = out_dir / f"{label}.mp4"
        report = out_dir / f"{label}.report.json"
        if progress:
            progress(name, f"deidentify {label}", 0, 1)
        log.info("%s: %s -> %s", name, label, out)
        if label == CONTROL:
            reencode(video, out, max_frames=max_frames)
        else:
            fn = deidentifiers[label]
            extra = {}
            if progress and getattr(fn, "accepts_progress", False):
                extra["progress"] = lambda d, t, lb=label: progress(name, f"deidentify {lb}", d, t)
            donors[label] = _donor_names(fn(video, out, report, max_frames, **extra), label)
        check_videos_aligned(video, out, max_frames)
        outputs[label], reports[label] = out, report

    def kp(label: str, path: Path) -> KeypointSeries:
        cb = (lambda d, t: progress(name, f"keypoints {label}", d, t)) if progress else None
        return _cached_keypoints(path, out_dir / "keypoints" / f"{label}.npz", max_frames, cb)

    original = kp("original", video)
    series = {label: kp(label, path) for label, path in outputs.items()}
    result = evaluate_series(
        original,
        series,
        {k: str(v) for k, v in outputs.items()},
        {k: flagged_frames(v) for k, v in reports.items()},
    )
    result.original = str(video)
    if privacy:
        result.privacy = audit_outputs(
            video,
            outputs,
            donors,
            out_dir,
            max_frames,
            privacy_stride,
            progress=progress,
            name=name,
        )
    write_evaluation(
        result, out_dir, original, series, videos={"original": video, **outputs}, write_report=True
    )
    return result


def aggregate_privacy(evaluations: dict[str, Evaluation], methods: Sequence[str]) -> dict:
    """Per method: the median across videos of each privacy number, and summed leak frames."""
    from medswap.evaluate.clinical import privacy_numbers

    out = {}
    for m in methods:
        nums = [privacy_numbers(e.privacy[m]) for e in evaluations.values() if m in e.privacy]
        nums = [n for n in nums if not n["nothing_to_protect"]]
        if not nums:
            continue
        row = {}
        for k in PRIVACY_KEYS:
            vals = [n[k] for n in nums if n.get(k) is not None]
            row[k] = float(np.median(vals)) if vals else None
        row["leak_frames"] = int(sum(n["leak_frames"] for n in nums))
        row["frames"] = int(sum(n["frames"] for n in nums))
        row["videos"] = len(nums)
        out[m] = row
    return out


def aggregate_clinical(evaluations: dict[str, Evaluation], methods: Sequence[str]) -> dict:
    """Per method: measure counts pooled over videos, and Bland-Altman/ICC across videos."""
    from medswap.evaluate.clinical import across_videos, agreement_score, status_counts

    per_video = {n: e.clinical for n, e in evaluations.items() if e.clinical is not None}
    enough = len(per_video) >= MIN_VIDEOS
    out = {}
    for m in methods:
        rows = [r for c in per_video.values() for r in c.rows.get(m, [])]
        if not rows:
            continue
        out[m] = {
            "counts": status_counts(rows),
            "agreement_score": agreement_score(rows),
            # Bland-Altman and ICC on two videos are a guess: not computed, and said so.
            "across_videos": across_videos(per_video, m) if enough else {},
            "across_videos_note": "" if enough else too_few(len(per_video)),
        }
    return json_safe(out)


def aggregate(evaluations: dict[str, Evaluation], methods: Sequence[str]):
    """Median/IQR per metric, group and method; Wilcoxon swap vs each other method."""

    def values(metric: str, group: str, method: str) -> list[float]:
        out = []
        for e in evaluations.values():
            m = next((x for x in e.methods if x.label == method), None)
            out.append(math.nan if m is None else m.groups[group].metrics[metric])
        return out

    summary = {
        metric: {
            g.name: {m: median_iqr(values(metric, g.name, m)) for m in methods} for g in EVAL_GROUPS
        }
        for metric in METRICS
    }
    summary["detection_ratio"] = {g.name: {} for g in EVAL_GROUPS}
    # detection_ratio: the de-identified video's detection rate over the original's
    for g in EVAL_GROUPS:
        for m in methods:
            det, orig = (
                values("detection_rate", g.name, m),
                values("detection_rate_original", g.name, m),
            )
            summary["detection_ratio"][g.name][m] = median_iqr(
                [d / o if o and o > 0 else math.nan for d, o in zip(det, orig)]
            )
    # The face judged by its motion from its own neutral shape (dlib 68, the headline): the swap
    # draws the donor's resting shape by design, so absolute positions no longer say whether
    # the patient's expression, blinks and mouth were kept.
    for key, figure in (
        ("motion_nme_median", lambda d: d.nme_median),
        ("motion_correlation", lambda d: d.correlation_median),
    ):
        summary[key] = {
            "face-dlib68": {
                m: median_iqr([_motion(e, m, figure) for e in evaluations.values()])
                for m in methods
            }
        }
    tests = {}
    if "swap" in methods:
        for base in methods:
            if base == "swap":
                continue
            tests[base] = {
                g.name: {
                    metric: wilcoxon_paired(
                        values(metric, g.name, "swap"), values(metric, g.name, base)
                    )
                    for metric in ("nme_median", "pck_0.10")
                }
                for g in EVAL_GROUPS
            }
    return summary, tests


def _motion(evaluation: Evaluation, method: str, figure) -> float:
    """One motion figure of ``method``'s output on one video (NaN where the face was lost)."""
    m = next((x for x in evaluation.methods if x.label == method), None)
    if m is None or m.motion is None:
        return math.nan
    return float(figure(m.motion.headline))


def _v(summary, metric, group, method) -> float:
    s = summary[metric][group].get(method)
    return math.nan if s is None else s.median


def check_claims(summary, methods: Sequence[str]) -> dict[str, dict]:
    """The paper's claims, each with the measured values and whether it holds."""
    claims = {}
    nme = math.nan
    if "swap" in methods:
        ratio = _v(summary, "detection_ratio", "face-dlib68", "swap")
        nme = _v(summary, "nme_median", "face-dlib68", "swap")
        motion = _v(summary, "motion_nme_median", "face-dlib68", "swap")
        corr = _v(summary, "motion_correlation", "face-dlib68", "swap")
        claims["swap_face_kept"] = {
            "detection_ratio": ratio,
            "nme_median": nme,  # absolute: the donor's resting shape, reported, not judged
            "motion_nme_median": motion,
            "motion_correlation": corr,
            "holds": bool(
                ratio >= FACE_DETECTION_RATIO
                and motion <= FACE_MOTION_NME_MAX
                and corr >= FACE_MOTION_CORRELATION_MIN
            ),
        }
        for group in ("body-nonfacial", "left-hand", "right-hand"):
            s = _v(summary, "nme_median", group, "swap")
            f = _v(summary, "nme_median", group, CONTROL)
            ratio_floor = s / f if math.isfinite(s) and math.isfinite(f) and f > 0 else math.nan
            claims[f"swap_{group}_at_floor"] = {
                "swap": s,
                "reencode": f,
                "ratio": ratio_floor,
                "holds": bool(ratio_floor <= FLOOR_FACTOR) if math.isfinite(ratio_floor) else None,
            }
    # A baseline is "much worse" when the face is lost in most frames, or its error is at
    # least 3x the swap's (3x the re-encode noise floor when swap was not run).
    ref = nme if math.isfinite(nme) else _v(summary, "nme_median", "face-dlib68", CONTROL)
    for base in ("blur", "pixelate", "mask"):
        if base not in methods:
            continue
        r = _v(summary, "detection_ratio", "face-dlib68", base)
        e = _v(summary, "nme_median", "face-dlib68", base)
        lost = math.isfinite(r) and r < 0.5
        worse = math.isfinite(e) and math.isfinite(ref) and e >= 3 * ref
        claims[f"{base}_face_worse"] = {
            "detection_ratio": r,
            "nme_median": e,
            "holds": bool(lost or worse or not math.isfinite(e)),
        }
    return claims


def _pct(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.0%}"


def _num(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.3f}"


def verdict(
    summary, claims: dict, methods: Sequence[str], n_videos: int, nothing: bool
) -> list[str]:
    """A short plain-language reading of the table."""
    if nothing:
        from medswap.report.sections import nothing_measured_text

        return [nothing_measured_text("any of the original videos")]
    lines = [f"Measured on {n_videos} video(s); each figure is the median across videos."]
    if n_videos < MIN_VIDEOS:
        lines[0] += (
            f" IQR, confidence intervals, Wilcoxon tests, Bland-Altman limits and ICC: "
            f"{too_few(n_videos)}; read the figures as per-video values, not as evidence."
        )
    c = claims.get("swap_face_kept")
    if c:
        ok = "kept" if c["holds"] else "NOT kept"
        lines.append(
            f"Face swap: facial motion {ok}. The independent face landmarks (dlib 68) were "
            f"found {_pct(c['detection_ratio'])} as often as in the original (needs >= "
            f"{FACE_DETECTION_RATIO:.0%}); their movement from the face's own resting shape "
            f"differs by a median {_num(c['motion_nme_median'])} of the inter-ocular distance "
            f"(needs <= {FACE_MOTION_NME_MAX}) and follows the original's with a median "
            f"correlation of {_num(c['motion_correlation'])} (needs >= "
            f"{FACE_MOTION_CORRELATION_MIN}). Their absolute positions differ by "
            f"{_num(c['nme_median'])}: the swap draws the donor's resting face shape."
        )
    floor = [
        (g, claims[f"swap_{g}_at_floor"])
        for g in ("body-nonfacial", "left-hand", "right-hand")
        if f"swap_{g}_at_floor" in claims
    ]
    measured = [(g, c) for g, c in floor if c["holds"] is not None]
    if measured:
        bad = [g for g, c in measured if not c["holds"]]
        detail = ", ".join(f"{g} {_num(c['swap'])} vs {_num(c['reencode'])}" for g, c in measured)
        lines.append(
            (
                "Body and hands: unchanged by the swap beyond re-encoding noise"
                if not bad
                else f"Body and hands: the swap moved {', '.join(bad)} more than "
                f"{FLOOR_FACTOR}x the re-encoding noise"
            )
            + f" (median NME swap vs re-encode: "
            f"{detail})."
        )
    for base in ("blur", "pixelate", "mask"):
        c = claims.get(f"{base}_face_worse")
        if c:
            lines.append(
                f"{base.capitalize()}: face landmarks found {_pct(c['detection_ratio'])} as "
                f"often as in the original; median error {_num(c['nme_median'])}."
            )
    return lines


def privacy_verdict(privacy: dict) -> list[str]:
    """One line per method: re-identification by both recognisers, and leak frames."""
    lines = []
    for m, p in privacy.items():
        leaks = p["leak_frames"]
        line = (
            f"Privacy, {m}: re-identified in {_pct(_f(p['reid_rate_dlib']))} (dlib) and "
            f"{_pct(_f(p['reid_rate_sface']))} (SFace) of checked frames (median across "
            f"videos); {leaks} of {p['frames']} frames show the original identity."
        )
        if p.get("chance_rank1_without_donor") is not None:
            # The donor in the gallery makes rank-1 look safe; an attacker's list has no donor.
            line += (
                " Without the donor in the gallery the patient is the nearest identity in "
                f"{_pct(_f(p.get('rank1_without_donor_dlib')))} (dlib) and "
                f"{_pct(_f(p.get('rank1_without_donor_sface')))} (SFace) of checked frames "
                f"(chance {_pct(_f(p['chance_rank1_without_donor']))})."
            )
        lines.append(line)
    return lines


def clinical_verdict(clinical: dict) -> list[str]:
    """One line per method: how many of the original's clinical measures it reproduces."""
    lines = []
    for m, c in clinical.items():
        k = c["counts"]
        n = k["ok"] + k["differs"] + k["lost"]
        if n:
            lines.append(
                f"Clinical measures, {m}: {k['ok']} of {n} within tolerance, {k['differs']} "
                f"differ, {k['lost']} lost (pooled over videos)."
            )
    return lines


def _f(v) -> float:
    return math.nan if v is None else float(v)


def _write_csv(path: Path, rows: list[list[object]]) -> None:
    """A CSV table through medswap.outputs; notes with commas are quoted."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    write_text_atomic(path, buf.getvalue(), "table")


def _g(v: float) -> str:
    return f"{v:.6g}" if math.isfinite(v) else ""


def _write_tables(comp: Comparison, out_dir: Path) -> None:
    for metric, name in (
        ("nme_median", "table_nme_median.csv"),
        ("detection_ratio", "table_detection_ratio.csv"),
        ("pck_0.10", "table_pck_0.10.csv"),
    ):
        cols = ("median", "q1", "q3", "ci_low", "ci_high", "n", "note")
        rows: list[list[object]] = [["group", *[f"{m} {c}" for m in comp.methods for c in cols]]]
        for g, row in comp.summary[metric].items():
            cells: list[object] = [g]
            for m in comp.methods:
                s = row[m]
                cells += [_g(v) for v in (s.median, s.q1, s.q3, s.ci_low, s.ci_high)]
                cells += [s.n, s.note]
            rows.append(cells)
        _write_csv(out_dir / name, rows)
    rows = [
        [
            "baseline",
            "group",
            "metric",
            "n",
            "statistic",
            "p_value",
            "median_difference",
            "ci_low",
            "ci_high",
            "note",
        ]
    ]
    for base, groups in comp.tests.items():
        for g, row in groups.items():
            for metric, t in row.items():
                vals = (t.statistic, t.p_value, t.median_difference, t.ci_low, t.ci_high)
                rows.append([base, g, metric, t.n, *[_g(v) for v in vals], t.note])
    _write_csv(out_dir / "wilcoxon.csv", rows)
    doc = {**comp.to_json(), "confidence_intervals": CI_METHOD}
    write_text_atomic(out_dir / "summary.json", json.dumps(json_safe(doc), indent=2), "summary")


def compare(
    videos: Sequence[str | Path],
    out_dir: str | Path,
    methods: Sequence[str] = METHODS,
    *,
    max_frames: int | None = None,
    progress: Progress | None = None,
    deidentifiers: dict[str, Deidentifier] | None = None,
    privacy: bool = True,
    privacy_stride: int = PRIVACY_STRIDE,
) -> Comparison:
    """De-identify each video with each method, evaluate all, write the table and report.

    ``deidentifiers`` maps a method name to a function writing its output; by default every
    method runs through ``medswap.pipeline.deidentify``. ``privacy=False`` skips the audits.
    """
    from medswap.video import probe

    videos = [Path(v) for v in videos]
    if not videos:
        raise UsageError("give at least one video to compare")
    methods = [m for m in dict.fromkeys(methods) if m != CONTROL]
    deidentifiers = dict(deidentifiers or {})
    for m in methods:
        deidentifiers.setdefault(m, pipeline_deidentifier(m))
    for v in videos:  # refuse a bad input before hours of work
        probe(v)
    if privacy_stride < 1:
        raise UsageError(f"--privacy-stride must be 1 or more, got {privacy_stride}")
    require_models(  # every model of every step, before the output folder is made
        [
            *(n for m in methods if m in DEIDENTIFY_MODELS for n in DEIDENTIFY_MODELS[m]),
            *KEYPOINT_MODELS,
            *(AUDIT_MODELS if privacy else ()),
        ]
    )
    out_dir = _prepare_dir(out_dir)
    evaluations = {}
    for i, (video, name) in enumerate(zip(videos, _unique_names(videos)), 1):
        log.info("video %d/%d: %s", i, len(videos), video)
        evaluations[name] = compare_one(
            video,
            name,
            out_dir / "videos" / name,
            methods,
            deidentifiers,
            max_frames,
            progress,
            privacy,
            privacy_stride,
        )
    columns = [CONTROL, *methods]
    summary, tests = aggregate(evaluations, columns)
    claims = check_claims(summary, columns)
    comp = Comparison(
        [str(v) for v in videos],
        columns,
        evaluations,
        summary,
        tests,
        claims,
        out_dir=out_dir,
        privacy=aggregate_privacy(evaluations, columns),
        clinical=aggregate_clinical(evaluations, columns),
    )
    comp.verdict = verdict(summary, claims, columns, len(videos), comp.nothing_measured)
    if not comp.nothing_measured:
        comp.verdict += privacy_verdict(comp.privacy) + clinical_verdict(comp.clinical)
    _write_tables(comp, out_dir)
    from medswap.report.html import write_report
    from medswap.report.sections import comparison_sections

    write_report(
        out_dir / "report.html",
        "Keypoint invariance across de-identification methods",
        comparison_sections(comp, out_dir),
        comp.verdict,
        {"videos": len(videos), "max frames": max_frames or "all"},
        warning=ORIGINALS_WARNING,
    )
    return comp
