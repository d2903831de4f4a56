"""``medswap evaluate`` as one call: extract keypoints, evaluate, write tables, plots, report.

The measuring itself is :mod:`medswap.evaluate.invariance`; this module runs it on videos and
writes its results through :mod:`medswap.report`. It sits above both, so that ``evaluate``
never imports ``report`` (issue 21).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from medswap.errors import OutputError
from medswap.evaluate.invariance import (
    Evaluation,
    check_videos_aligned,
    evaluate_series,
    find_report,
    flagged_frames,
)
from medswap.models import KEYPOINT_MODELS
from medswap.models import require as require_models
from medswap.outputs import PARTIAL_SUFFIX, partial_path, write_text_atomic
from medswap.types import KeypointSeries

log = logging.getLogger(__name__)


Progress = Callable[[str, int, int], None]


def evaluate(
    original: str | Path,
    deidentified: Sequence[str | Path],
    out_dir: str | Path,
    *,
    labels: Sequence[str] | None = None,
    max_frames: int | None = None,
    progress: Progress | None = None,
    keypoints: dict[str, KeypointSeries] | None = None,
    reports: dict[str, str | Path] | None = None,
    original_keypoints: str | Path | None = None,
    write_report: bool = True,
) -> Evaluation:
    """Evaluate de-identified videos against their original; write metrics, tables, plots.

    ``labels`` name the de-identified videos (default: their file stems). ``keypoints`` maps a
    video path (as given) to already extracted keypoints, so nothing is extracted twice.
    ``original_keypoints`` is a keypoint file of the original; it is refused if it was made
    from another video. ``progress(label, done, total)`` is called once per frame.

    Nothing is written until the results are computed, and then into a hidden partial folder
    that becomes ``out_dir`` only when complete: a run that fails leaves nothing behind that
    was not there before (no empty folder that looks like an evaluation).
    """
    from medswap.keypoints import extract_keypoints, load_keypoints

    original = Path(original)
    deidentified = [Path(p) for p in deidentified]
    if not deidentified:
        raise OutputError("give at least one de-identified video to evaluate")
    labels = list(labels) if labels else [p.stem for p in deidentified]
    if len(set(labels)) != len(labels):
        raise OutputError(f"de-identified videos need distinct names, got {labels}")
    require_models(KEYPOINT_MODELS)  # before any work
    out_dir = _check_out_dir(out_dir)
    for path in deidentified:  # refuse before any expensive work
        check_videos_aligned(original, path, max_frames)
    cache = dict(keypoints or {})

    def get(path: Path, label: str) -> KeypointSeries:
        if str(path) in cache:
            return cache[str(path)]
        cb = (lambda d, t: progress(label, d, t)) if progress else None
        series = extract_keypoints(path, max_frames=max_frames, progress=cb)
        cache[str(path)] = series
        return series

    if original_keypoints is not None:
        orig = load_keypoints(original_keypoints, video=original)
        if max_frames is not None and len(orig) > max_frames:
            orig = _head(orig, max_frames)
    else:
        orig = get(original, "original")
    series = {label: get(p, label) for label, p in zip(labels, deidentified)}
    reports = reports or {}
    flagged = {
        label: flagged_frames(reports.get(label) or find_report(p))
        for label, p in zip(labels, deidentified)
    }
    result = evaluate_series(
        orig, series, {lb: str(p) for lb, p in zip(labels, deidentified)}, flagged
    )
    result.original = str(original)
    with _partial_dir(out_dir) as tmp:
        write_evaluation(
            result,
            tmp,
            orig,
            series,
            videos={"original": original, **dict(zip(labels, deidentified))},
            write_report=write_report,
        )
    result.out_dir = out_dir
    return result


def _missing_top(path: Path) -> Path | None:
    """The outermost folder of ``path``'s parents (or ``path``) that does not exist yet."""
    top = None
    for p in (path, *path.parents):
        if p.exists():
            break
        top = p
    return top


def _check_out_dir(out_dir: str | Path) -> Path:
    """Refuse, before any work, an evaluation folder that cannot be written; create nothing."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError("output folder path is a file", out_dir)
    top = _missing_top(out_dir)
    existing = top.parent if top is not None else out_dir
    if not existing.is_dir():
        raise OutputError("output folder's parent is a file", out_dir)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError("output folder is not writable", out_dir)
    return out_dir


@contextlib.contextmanager
def _partial_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a hidden partial folder; its files become ``out_dir``'s only when the block
    succeeds. On any failure the partial folder and every folder this created are removed.

    A new ``out_dir`` is the partial folder renamed; in an existing one the partial folder
    sits inside it and its entries replace same-named results (other files stay).
    """
    top = _missing_top(out_dir)
    existed = top is None
    tmp = out_dir / f".evaluation{PARTIAL_SUFFIX}" if existed else partial_path(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists():  # left by a run that was killed
            shutil.rmtree(tmp)
        tmp.mkdir()
        yield tmp
        if not existed:
            os.replace(tmp, out_dir)
        else:
            for entry in sorted(tmp.iterdir()):
                target = out_dir / entry.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(entry, target)
    except BaseException as exc:
        if top is not None:
            shutil.rmtree(top, ignore_errors=True)
        if isinstance(exc, OSError):
            problem = exc.strerror or str(exc)
            raise OutputError(f"cannot write the evaluation ({problem})", out_dir) from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _head(series: KeypointSeries, n: int) -> KeypointSeries:
    return KeypointSeries(
        series.frame_index[:n],
        series.time_s[:n],
        {g: a[:n] for g, a in series.groups.items()},
        series.width,
        series.height,
        series.fps,
        dict(series.meta),
        {k: a[:n] for k, a in series.scores.items()},
    )


def _prepare_dir(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder ({exc.strerror})", out_dir) from None
    return out_dir


def _fmt(v: float) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.6g}"


def write_tables(result: Evaluation, out_dir: Path, original: KeypointSeries) -> dict[str, str]:
    """metrics.json, metrics.csv (long), summary_<metric>.csv (groups x methods), per_frame.csv."""
    files = {}
    (out_dir / "metrics.json").write_text(json.dumps(result.to_json(), indent=2))
    files["metrics"] = "metrics.json"
    with open(out_dir / "metrics.csv", "w") as fh:
        fh.write("method,group,metric,value\n")
        for m in result.methods:
            for g, r in m.groups.items():
                for k, v in r.metrics.items():
                    fh.write(f"{m.label},{g},{k},{_fmt(v)}\n")
    files["metrics_csv"] = "metrics.csv"
    labels = [m.label for m in result.methods]
    for metric in ("nme_median", "pck_0.05", "detection_rate"):
        name = f"summary_{metric}.csv"
        with open(out_dir / name, "w") as fh:
            fh.write("group," + ",".join(labels) + "\n")
            for g, row in result.table(metric).items():
                fh.write(g + "," + ",".join(_fmt(row[lb]) for lb in labels) + "\n")
        files[f"summary_{metric}"] = name
    with open(out_dir / "per_frame.csv", "w") as fh:
        fh.write("method,group,frame_index,time_s,nme\n")
        for m in result.methods:
            for g, r in m.groups.items():
                for i in np.flatnonzero(np.isfinite(r.nme)):
                    fh.write(
                        f"{m.label},{g},{int(original.frame_index[i])},"
                        f"{original.time_s[i]:.6f},{r.nme[i]:.6g}\n"
                    )
    files["per_frame"] = "per_frame.csv"
    from medswap.report.motion import motion_files

    for key, (name, text) in motion_files(result).items():
        write_text_atomic(out_dir / name, text, "motion table")
        files[key] = name
    return files


def write_evaluation(
    result: Evaluation,
    out_dir: Path,
    original: KeypointSeries,
    series: dict[str, KeypointSeries],
    videos: dict[str, Path] | None = None,
    write_report: bool = True,
) -> Evaluation:
    """Write tables, plots and (optionally) report.html for one evaluation."""
    from medswap.report import plots

    result.out_dir = out_dir
    if result.clinical is None and series:
        from medswap.evaluate.clinical import clinical_agreement

        result.clinical = clinical_agreement(original, series, out_dir)
    result.files.update(write_tables(result, out_dir, original))
    if not result.nothing_measured and result.methods:
        result.files.update(plots.evaluation_plots(result, out_dir, original, series, videos))
    if write_report:
        from medswap.report.html import write_report as _write
        from medswap.report.sections import evaluation_sections

        _write(
            out_dir / "report.html",
            f"Keypoint invariance: {Path(result.original).name}",
            evaluation_sections(result, out_dir),
        )
        result.files["report"] = "report.html"
    log.info("evaluation written to %s", out_dir)
    return result
