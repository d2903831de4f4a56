"""The paper's experiment as one call: de-identify each video every way, measure, compare.

For each video: run :func:`medswap.pipeline.deidentify` once per method, plus the ``reencode``
control (the original re-encoded once through the same encoder, with no de-identification),
extract keypoints of the original and of every output once (cached under
``DIR/videos/<name>/keypoints``, keyed by the video's SHA-256), and evaluate each output
against the original. Then aggregate across videos (:mod:`medswap.evaluate.compare`: methods
in columns, keypoint groups in rows, median and IQR, the paired Wilcoxon signed-rank test of
swap against each baseline, a plain-language verdict) and write the tables and
``report.html``.

Beside the keypoints: a privacy audit of every output (:mod:`medswap.evaluate.privacy`) on
every ``privacy_stride``-th frame (a sample: ``medswap audit`` scans every frame for leaks),
with the original's faces found once per video (off with ``privacy=False``); and the
clinical measures of every output against the original's (:mod:`medswap.evaluate.clinical`),
per video and across videos.

This module runs the pipeline and writes files, so it sits above ``pipeline``, ``evaluate``
and ``report``; the aggregation it calls stays in ``evaluate``, which imports neither.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from medswap.config import DeidentifyConfig
from medswap.errors import KeypointFileError, MedswapError, OutputError, UsageError
from medswap.evaluate.compare import (
    CONTROL,
    ORIGINALS_WARNING,
    PRIVACY_STRIDE,
    Comparison,
    _unique_names,
    aggregate,
    aggregate_clinical,
    aggregate_privacy,
    check_claims,
    clinical_verdict,
    privacy_verdict,
    verdict,
)
from medswap.evaluate.invariance import (
    Evaluation,
    check_videos_aligned,
    evaluate_series,
    flagged_frames,
)
from medswap.evaluate.stats import CI_METHOD
from medswap.models import AUDIT_MODELS, DEIDENTIFY_MODELS, KEYPOINT_MODELS
from medswap.models import require as require_models
from medswap.outputs import json_safe, write_text_atomic
from medswap.studies.invariance import _prepare_dir, write_evaluation
from medswap.swap.donors import DEFAULT_DONOR
from medswap.types import METHODS, KeypointSeries
from medswap.video import reencode

log = logging.getLogger(__name__)

#: ``progress(video, stage, done, total)``: stage is "deidentify <method>" or "keypoints <label>".
Progress = Callable[[str, str, int, int], None]
#: A de-identifier: ``fn(input, output, report_json, max_frames)`` writes ``output``.
Deidentifier = Callable[[Path, Path, Path, "int | None"], object]


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
        config = DeidentifyConfig(method=method, max_frames=max_frames, **options, **more)
        return deidentify(input, output, config, report=report, overwrite=True, progress=progress)

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
    from medswap.evaluate.privacy import audit, scan_original

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
        audit_json = json.dumps(results[label].to_json(), indent=2)
        write_text_atomic(out_dir / "audit" / f"{label}.json", audit_json, "audit")
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
