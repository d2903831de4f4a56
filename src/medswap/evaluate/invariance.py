"""Keypoint invariance: how far de-identification moves each keypoint group, and how often it
loses it, measured on the delivered video against the original, frame by frame.

Definitions (all errors in units of the group's normaliser, see
:mod:`medswap.keypoints.schema`: inter-ocular distance for faces, shoulder width for the body
and its facial / non-facial split, palm size for hands):

- the normaliser is measured on the *original* in each frame; in a frame where the original
  lacks it (a shoulder not visible) the video's median normaliser is used;
- ``nme`` of a frame: the mean normalised distance over the points detected in both videos;
  ``nme_median``, ``nme_mean`` and ``nme_p95`` summarise it over the frames where it exists;
- ``pck_0.05`` / ``pck_0.10``: of the points detected in the original, the fraction whose
  de-identified position is within 0.05 / 0.10 of the normaliser. A point the de-identified
  video lost counts as a miss, so PCK punishes lost keypoints and NME does not;
- ``detection_rate``: the fraction of (frame, point) slots detected in the de-identified video;
  ``detection_rate_original`` the same in the original;
- ``jitter_ratio``: frame-to-frame velocity noise (the second difference
  ``p[t+1] - 2 p[t] + p[t-1]``, which a steady motion leaves at zero), mean over the slots
  valid in both videos, de-identified divided by original. 1 means no added jitter.

Frames are paired by index and timestamp; videos that do not align are refused with
:class:`~medswap.errors.AlignmentError` before any keypoint is extracted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medswap.errors import AlignmentError, OutputError
from medswap.evaluate.motion import DEFINITIONS as MOTION_DEFINITIONS
from medswap.evaluate.motion import MotionResult, compare_motion
from medswap.keypoints.schema import EVAL_GROUPS, LAYOUTS, EvalGroup
from medswap.models import KEYPOINT_MODELS
from medswap.models import require as require_models
from medswap.outputs import PARTIAL_SUFFIX, json_safe, partial_path, write_text_atomic
from medswap.types import KeypointSeries

log = logging.getLogger(__name__)

PCK_THRESHOLDS = (0.05, 0.10)
METRICS = (
    "nme_median",
    "nme_mean",
    "nme_p95",
    "pck_0.05",
    "pck_0.10",
    "detection_rate",
    "detection_rate_original",
    "jitter_ratio",
)


# -- pure metrics over arrays ----------------------------------------------------------------


def detected(arr: np.ndarray) -> np.ndarray:
    """(N, K) True where a point has finite x and y."""
    return np.isfinite(arr[..., 0]) & np.isfinite(arr[..., 1])


def normaliser(layout_arr: np.ndarray, pair: tuple[int, int]) -> np.ndarray:
    """(N,) per-frame distance between the pair; missing frames take the video's median."""
    a, b = layout_arr[:, pair[0], :2], layout_arr[:, pair[1], :2]
    dist = np.linalg.norm(a.astype(np.float64) - b.astype(np.float64), axis=1)
    dist[~np.isfinite(dist) | (dist <= 0)] = np.nan
    if np.isfinite(dist).any():
        dist = np.where(np.isfinite(dist), dist, np.nanmedian(dist))
    return dist


def point_errors(orig: np.ndarray, deid: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """(N, K) distance / normaliser; NaN where either video lacks the point."""
    diff = orig[..., :2].astype(np.float64) - deid[..., :2].astype(np.float64)
    return np.linalg.norm(diff, axis=-1) / norm[:, None]


def nme_per_frame(errors: np.ndarray) -> np.ndarray:
    """(N,) mean normalised error over the points valid in a frame; NaN if there are none."""
    valid = np.isfinite(errors)
    count = valid.sum(axis=1)
    total = np.where(valid, errors, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def pck(errors: np.ndarray, orig_detected: np.ndarray, alpha: float) -> float:
    """Fraction of the original's detected points within ``alpha``; lost points are misses."""
    n = int(orig_detected.sum())
    if n == 0:
        return math.nan
    hit = orig_detected & np.isfinite(errors) & (errors <= alpha)
    return float(hit.sum() / n)


def detection_rate(arr: np.ndarray) -> float:
    """Fraction of (frame, point) slots detected; NaN for an empty series."""
    mask = detected(arr)
    return float(mask.mean()) if mask.size else math.nan


def second_difference(arr: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """(N-2, K) normalised |p[t+1] - 2 p[t] + p[t-1]|, NaN where any of the three is missing."""
    xy = arr[..., :2].astype(np.float64)
    if xy.shape[0] < 3:
        return np.zeros((0, xy.shape[1]))
    acc = xy[2:] - 2 * xy[1:-1] + xy[:-2]
    return np.linalg.norm(acc, axis=-1) / norm[1:-1, None]


def jitter_ratio(orig: np.ndarray, deid: np.ndarray, norm: np.ndarray) -> float:
    """Mean second difference of the de-identified points over the original's, on common slots."""
    jo, jd = second_difference(orig, norm), second_difference(deid, norm)
    ok = np.isfinite(jo) & np.isfinite(jd)
    if not ok.any():
        return math.nan
    base = jo[ok].mean()
    return float(jd[ok].mean() / base) if base > 0 else math.nan


def _nan_stat(values: np.ndarray, fn) -> float:
    finite = values[np.isfinite(values)]
    return float(fn(finite)) if finite.size else math.nan


@dataclass
class GroupResult:
    """One keypoint group of one de-identified video against the original."""

    metrics: dict[str, float]
    nme: np.ndarray  # (N,) per-frame NME, NaN where not comparable
    frames_compared: int
    points_compared: int


def compare_group(
    orig_layout: np.ndarray, deid_layout: np.ndarray, group: EvalGroup
) -> GroupResult:
    """Every metric of one group (arrays are the full layout, (N, K, 3))."""
    norm = normaliser(orig_layout, LAYOUTS[group.layout].normaliser)
    o, d = group.select(orig_layout), group.select(deid_layout)
    errors = point_errors(o, d, norm)
    nme = nme_per_frame(errors)
    metrics = {
        "nme_median": _nan_stat(nme, np.median),
        "nme_mean": _nan_stat(nme, np.mean),
        "nme_p95": _nan_stat(nme, lambda v: np.percentile(v, 95)),
        **{f"pck_{a:.2f}": pck(errors, detected(o), a) for a in PCK_THRESHOLDS},
        "detection_rate": detection_rate(d),
        "detection_rate_original": detection_rate(o),
        "jitter_ratio": jitter_ratio(o, d, norm),
    }
    return GroupResult(metrics, nme, int(np.isfinite(nme).sum()), int(np.isfinite(errors).sum()))


def compare_series(
    original: KeypointSeries, deid: KeypointSeries, groups: Sequence[EvalGroup] = EVAL_GROUPS
) -> dict[str, GroupResult]:
    """Every group of one de-identified series against the original (already aligned)."""
    check_series_aligned(original, deid)
    return {
        g.name: compare_group(original.groups[g.layout], deid.groups[g.layout], g) for g in groups
    }


# -- alignment -------------------------------------------------------------------------------

_MUST = "videos must align frame by frame"


def _tolerance(fps: float) -> float:
    return 0.25 / fps if fps and fps > 0 else 1e-3


def check_series_aligned(
    original: KeypointSeries, deid: KeypointSeries, name: str = "the de-identified keypoints"
) -> None:
    """Refuse two keypoint series that do not pair frame by frame."""
    oname = original.meta.get("video", "the original")
    if (deid.width, deid.height) != (original.width, original.height):
        raise AlignmentError(
            f"{name} are for {deid.width}x{deid.height} but the original "
            f"{oname} is {original.width}x{original.height}; {_MUST}"
        )
    if len(deid) != len(original):
        raise AlignmentError(
            f"{name} have {len(deid)} frames but the original {oname} has {len(original)}; {_MUST}"
        )
    _check_times(original.time_s, deid.time_s, original.fps, oname, name)


def _check_times(t_orig, t_deid, fps: float, oname: str, name: str, path=None) -> None:
    t_orig, t_deid = np.asarray(t_orig, float), np.asarray(t_deid, float)
    bad = np.flatnonzero(np.abs(t_orig - t_deid) > _tolerance(fps))
    if bad.size:
        i = int(bad[0])
        raise AlignmentError(
            f"frame {i} is at {t_deid[i]:.3f} s but in the original {oname} at "
            f"{t_orig[i]:.3f} s; {_MUST}",
            path,
        )


def check_videos_aligned(
    original: str | Path, deid: str | Path, max_frames: int | None = None
) -> int:
    """Refuse videos with different sizes, frame counts or timestamps; return the frame count.

    With ``max_frames`` only the first ``max_frames`` frames of each are compared (a
    de-identified preview of the first N frames aligns with the original's first N).
    """
    from fractions import Fraction

    from medswap.video import probe, read_timestamps

    original, deid = Path(original), Path(deid)
    oi, di = probe(original), probe(deid)
    if di.display_size != oi.display_size:
        raise AlignmentError(
            f"is {di.display_size[0]}x{di.display_size[1]} but the original {original.name} is "
            f"{oi.display_size[0]}x{oi.display_size[1]}; {_MUST}",
            deid,
        )
    po, pd_ = read_timestamps(original), read_timestamps(deid)
    if max_frames is not None:
        po, pd_ = po[:max_frames], pd_[:max_frames]
    if len(po) != len(pd_):
        raise AlignmentError(
            f"has {len(pd_)} frames but the original {original.name} has {len(po)}; {_MUST}", deid
        )

    def seconds(pts, info):
        tb, fps = Fraction(info.time_base), float(info.fps or 25)
        return [float(p * tb) if p is not None else i / fps for i, p in enumerate(pts)]

    _check_times(seconds(po, oi), seconds(pd_, di), float(oi.fps), original.name, "", deid)
    return len(po)


# -- the evaluation of one original against its de-identified versions ----------------------


@dataclass
class MethodResult:
    """One de-identified video's results."""

    label: str
    video: str
    groups: dict[str, GroupResult]
    flagged: list[dict] = field(default_factory=list)
    #: the face judged by its motion from its own neutral shape (beside the absolute groups)
    motion: MotionResult | None = None

    def metrics(self) -> dict[str, dict[str, float]]:
        return {g: r.metrics for g, r in self.groups.items()}


@dataclass
class Evaluation:
    """Everything ``evaluate`` measured, and where it wrote it."""

    original: str
    n_frames: int
    methods: list[MethodResult]
    original_detection: dict[str, float]
    out_dir: Path | None = None
    files: dict[str, str] = field(default_factory=dict)
    #: clinical measures' agreement (medswap.evaluate.clinical.ClinicalAgreement), if computed
    clinical: object | None = None
    #: privacy audits per label (medswap.evaluate.privacy.AuditResult), if run
    privacy: dict = field(default_factory=dict)

    @property
    def nothing_measured(self) -> bool:
        """True when the original has no detected keypoint at all: nothing could be compared."""
        return not any(rate > 0 for rate in self.original_detection.values())

    def table(self, metric: str) -> dict[str, dict[str, float]]:
        """{group: {method: value}} for one metric."""
        return {
            g.name: {m.label: m.groups[g.name].metrics[metric] for m in self.methods}
            for g in EVAL_GROUPS
        }

    def to_json(self) -> dict:
        extra = {}
        if self.clinical is not None:
            extra["clinical_measures"] = self.clinical.to_json()
        if self.privacy:
            from medswap.evaluate.clinical import privacy_numbers

            extra["privacy"] = {k: privacy_numbers(a) for k, a in self.privacy.items()}
        return {
            **extra,
            "original": self.original,
            "n_frames": self.n_frames,
            "nothing_measured": self.nothing_measured,
            "original_detection_rate": _clean(self.original_detection),
            "definitions": DEFINITIONS,
            "motion_definitions": MOTION_DEFINITIONS,
            "methods": {
                m.label: {
                    "video": m.video,
                    "flagged_frames": m.flagged,
                    **({"motion": json_safe(m.motion.to_json())} if m.motion else {}),
                    "groups": {
                        g: {
                            **_clean(r.metrics),
                            "frames_compared": r.frames_compared,
                            "points_compared": r.points_compared,
                        }
                        for g, r in m.groups.items()
                    },
                }
                for m in self.methods
            },
        }


DEFINITIONS = {
    "normaliser": {g.name: LAYOUTS[g.layout].normaliser_name for g in EVAL_GROUPS},
    "nme": "per-frame mean distance / normaliser over points detected in both videos",
    "pck": "fraction of the original's detected points within alpha x normaliser "
    "(a point lost in the de-identified video is a miss)",
    "detection_rate": "fraction of (frame, point) slots detected",
    "jitter_ratio": "mean |second difference| of the de-identified points / the original's",
    "body_facial": "MediaPipe pose points 0-10 (nose, eyes, ears, mouth)",
}


def _clean(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def evaluate_series(
    original: KeypointSeries,
    deidentified: dict[str, KeypointSeries],
    videos: dict[str, str] | None = None,
    flagged: dict[str, list[dict]] | None = None,
) -> Evaluation:
    """Compare keypoint series that are already extracted (pure; writes nothing)."""
    methods = []
    for label, series in deidentified.items():
        check_series_aligned(original, series, f"the keypoints of {label}")
        methods.append(
            MethodResult(
                label,
                (videos or {}).get(label, label),
                compare_series(original, series),
                (flagged or {}).get(label, []),
                compare_motion(original, series),
            )
        )
    orig_det = {g.name: detection_rate(g.select(original.groups[g.layout])) for g in EVAL_GROUPS}
    return Evaluation(str(original.meta.get("video", "original")), len(original), methods, orig_det)


def flagged_frames(report_json: str | Path | None) -> list[dict]:
    """Frames a de-identification report flagged (a face only obscured, not swapped).

    Reads the JSON written by ``medswap.pipeline.deidentify(report=...)``: a list of frames
    under ``frames`` (each with ``frame_index``, ``time_s``, ``status`` and ``faces``);
    frames whose status is ``obscured`` are flagged. A missing or unreadable file gives [].
    """
    if report_json is None or not Path(report_json).is_file():
        return []
    try:
        doc = json.loads(Path(report_json).read_text())
    except (OSError, ValueError):
        log.warning("%s: de-identification report is not readable JSON; ignored", report_json)
        return []
    frames = doc.get("frames", []) if isinstance(doc, dict) else []
    out = []
    for f in frames:
        if isinstance(f, dict) and f.get("status") == "obscured":
            reasons = sorted({face.get("reason", "") for face in f.get("faces", [])} - {""})
            out.append(
                {
                    "frame_index": f.get("frame_index"),
                    "time_s": f.get("time_s"),
                    "reason": "; ".join(reasons),
                }
            )
    return out


def find_report(video: str | Path) -> Path | None:
    """The de-identification JSON report written next to a video, if there is one."""
    video = Path(video)
    for cand in (
        video.with_suffix(".json"),
        video.with_name(video.name + ".json"),
        video.with_name(video.stem + ".report.json"),
    ):
        if cand.is_file():
            return cand
    return None


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
