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

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medswap.errors import AlignmentError
from medswap.evaluate.motion import DEFINITIONS as MOTION_DEFINITIONS
from medswap.evaluate.motion import MotionResult, compare_motion
from medswap.keypoints.schema import EVAL_GROUPS, LAYOUTS, EvalGroup
from medswap.outputs import json_safe
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
            "original_detection_rate": json_safe(self.original_detection),
            "definitions": DEFINITIONS,
            "motion_definitions": MOTION_DEFINITIONS,
            "methods": {
                m.label: {
                    "video": m.video,
                    "flagged_frames": m.flagged,
                    **({"motion": json_safe(m.motion.to_json())} if m.motion else {}),
                    "groups": {
                        g: {
                            **json_safe(r.metrics),
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


def evaluate_series(
    original: KeypointSeries,
    deidentified: dict[str, KeypointSeries],
    videos: dict[str, str] | None = None,
    flagged: dict[str, list[dict]] | None = None,
) -> Evaluation:
    """Compare keypoint series that are already extracted (pure; writes nothing)."""
    methods = []
    readers = None  # the original's, the same for every copy: computed with the first
    for label, series in deidentified.items():
        check_series_aligned(original, series, f"the keypoints of {label}")
        motion = compare_motion(original, series, readers)
        readers = motion.readers
        methods.append(
            MethodResult(
                label,
                (videos or {}).get(label, label),
                compare_series(original, series),
                (flagged or {}).get(label, []),
                motion,
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


def nothing_measured_text(names: str) -> str:
    return (
        f"Nothing was measured: no face, body or hand keypoint was found in {names}, "
        "so there is nothing to compare."
    )
