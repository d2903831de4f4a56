"""Face measures for hypomimia (MDS-UPDRS 3.2): blinks, mouth opening, facial motion.

Blinks come from the eye aspect ratio (EAR, Soukupova and Cech 2016): the eye's height over
its width, about 0.25-0.35 open and near 0.1 closed, independent of face size. It is computed
on MediaPipe's face mesh and, as an independent check that does not share the swap's own
landmark model, on dlib's 68 points. Expression ranges come from the Tasks face landmarker's
blendshapes (:func:`blendshape_ranges`), where the keypoints carry them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import signal as sps

from medswap.errors import MeasureError
from medswap.keypoints.blendshapes import BLENDSHAPE_NAMES, EXPRESSION_BLENDSHAPES
from medswap.measures.motor import MeasureResult
from medswap.measures.signals import (
    Signal,
    mad_sigma,
    refine_peak,
    resample_uniform,
    sampling_rate,
    segments,
)
from medswap.types import KeypointSeries

#: EAR points p1..p6 (outer corner, two upper-lid points, inner corner, two lower-lid points).
MESH_RIGHT_EYE = (33, 160, 158, 133, 153, 144)
MESH_LEFT_EYE = (362, 385, 387, 263, 373, 380)
DLIB_RIGHT_EYE = (36, 37, 38, 39, 40, 41)
DLIB_LEFT_EYE = (42, 43, 44, 45, 46, 47)
MESH_EYE_CORNERS = (33, 263)  # outer corners: the inter-ocular distance
MESH_INNER_LIPS = (13, 14)

#: A blink closes both eyes to at most half their open EAR (a wink or a squint does not),
MIN_CLOSURE = 0.5
#: ...and must stand this many robust SDs of the tracker's frame-to-frame jitter above zero.
NOISE_SDS = 6.0
#: The open-eye level is a running 80th percentile over this window: long enough to span a
#: blink or a held closure, short enough to follow a head turn that changes the eye's shape.
OPEN_LEVEL_S = 4.0
#: A closure wider than this at half its depth is not a blink (eyes held shut, looking down).
#: Spontaneous blinks last 100-400 ms; a slow one reopens over up to half a second more.
MAX_BLINK_S = 0.7
#: Facial motion is low-passed at this frequency (zero phase) before speeds are taken.
MOTION_SMOOTH_HZ = 6.0
#: Blendshapes whose traces are written and plotted: mouth opening, smiling, brow raising.
PLOTTED_BLENDSHAPES = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "browInnerUp")
#: An episode ends when the closure falls below this share of the threshold (hysteresis).
EXIT_FRACTION = 0.35


def _group(series: KeypointSeries, name: str, what: str) -> np.ndarray:
    arr = series.groups.get(name)
    if arr is None:
        raise MeasureError(f"no {what} keypoints in this series")
    xy = np.asarray(arr[:, :, :2], dtype=float)
    if not np.isfinite(xy).all(axis=2).any(axis=1).any():
        raise MeasureError(f"no face visible in any frame ({what})")
    return xy


def eye_aspect_ratio(xy: np.ndarray, eye: tuple[int, ...]) -> np.ndarray:
    """EAR of one eye per frame: (|p2-p6| + |p3-p5|) / (2 |p1-p4|); NaN where not seen."""
    p = xy[:, list(eye)]
    d = lambda i, j: np.linalg.norm(p[:, i] - p[:, j], axis=1)  # noqa: E731
    width = d(0, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(width > 0, (d(1, 5) + d(2, 4)) / (2.0 * width), np.nan)


def eye_ears(series: KeypointSeries, source: str = "face_mesh") -> np.ndarray:
    """(N, 2) EAR of the right and left eye per frame from ``face_mesh`` or ``face_dlib68``."""
    if source == "face_mesh":
        xy = _group(series, "face_mesh", "face mesh")
        eyes = (MESH_RIGHT_EYE, MESH_LEFT_EYE)
    elif source == "face_dlib68":
        xy = _group(series, "face_dlib68", "dlib 68-point")
        eyes = (DLIB_RIGHT_EYE, DLIB_LEFT_EYE)
    else:
        raise ValueError(f"source must be face_mesh or face_dlib68, got {source!r}")
    return np.column_stack([eye_aspect_ratio(xy, eyes[0]), eye_aspect_ratio(xy, eyes[1])])


def ear_signal(series: KeypointSeries, source: str = "face_mesh") -> np.ndarray:
    """Mean EAR of both eyes per frame (the usual single blink trace, for plots)."""
    return eye_ears(series, source).mean(axis=1)


def open_level(ear: np.ndarray, fs: float) -> np.ndarray:
    """Running open-eye EAR: the 80th percentile over ``OPEN_LEVEL_S`` around each sample.

    A high percentile, not the median, so that an eye held shut for a second or two still has
    an "open" reference from the seconds around it; a running one, so that a head turn or a
    smile that changes the eye's open shape for a while moves the reference with it.
    """
    win = max(3, int(round(OPEN_LEVEL_S * fs)) | 1)
    level = pd.Series(ear).rolling(win, center=True, min_periods=max(3, win // 4)).quantile(0.8)
    return level.to_numpy()


def closure_signal(ears: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Both-eye closure: min over eyes of 1 - EAR / open level (0 open, about 0.8 shut).

    Taking the less-closed eye means a blink must close both eyes: a wink closes one, and a
    face mesh that collapses one eye on a turned head also closes only one. Normalising by the
    eye's own open level makes one threshold fit every face, camera angle and expression.
    Returns the closure and the mean open level of the two eyes.
    """
    ears = np.asarray(ears, dtype=float).reshape(len(ears), -1)
    levels = np.column_stack([open_level(ears[:, j], fs) for j in range(ears.shape[1])])
    with np.errstate(invalid="ignore", divide="ignore"):
        closure = np.min(1.0 - ears / levels, axis=1)
    return closure, levels.mean(axis=1)


def detect_blinks(grid: np.ndarray, closure: np.ndarray, fs: float) -> dict:
    """Blinks and long closures in a uniform closure trace, by hysteresis.

    An episode starts when the closure reaches the threshold and ends when it falls below
    ``EXIT_FRACTION`` of it, so jitter at the bottom of a closure never splits it in two.
    Episodes up to ``MAX_BLINK_S`` wide at half depth are blinks, wider ones are counted apart
    as long closures. The threshold
    adapts to the clip: ``MIN_CLOSURE``, raised to ``NOISE_SDS`` robust SDs of the tracker's
    frame-to-frame jitter when that is larger, so a noisy tracker raises the bar instead of
    inventing blinks. A blink's duration is its full width at half its depth, and its time the
    middle of that width: the middle of the closure, which a blink whose lids rest shut for a
    while still has, where its deepest sample is wherever the jitter puts it on that plateau
    (expression_b's blink: 5.92 s on the original and 6.24 s on a swap, at the two ends of one
    closure).
    """
    # Robust SD of the differences / sqrt 2: the jitter, not the slow expressions.
    noise = mad_sigma(np.diff(closure)) / np.sqrt(2.0)
    thr = float(max(MIN_CLOSURE, NOISE_SDS * noise))
    times, durs, depths, long_s, long_t = [], [], [], [], []
    for a, b in segments(np.isfinite(closure)):
        c = closure[a:b]
        i = 0
        while i < c.size:
            if c[i] < thr:
                i += 1
                continue
            s0 = i
            while s0 > 0 and c[s0 - 1] >= thr * EXIT_FRACTION:
                s0 -= 1
            e = i
            while e < c.size and c[e] >= thr * EXIT_FRACTION:
                e += 1
            k = s0 + int(np.argmax(c[s0:e]))
            _, depth = refine_peak(c, k)
            left, right = _edges_at(c, k, depth / 2.0)
            pos, width = (left + right) / 2.0, (right - left) / fs
            if width > MAX_BLINK_S:
                long_s.append(width)
                long_t.append(grid[a] + (s0 + e - 1) / 2.0 / fs)
            else:
                times.append(grid[a] + pos / fs)
                durs.append(width)
                depths.append(depth)
            i = e
    return {
        "times_s": np.array(times),
        "durations_s": np.array(durs),
        "depths": np.array(depths),
        "long_closures_s": np.array(long_s),
        "long_closure_times_s": np.array(long_t),
        "threshold": thr,
    }


def _edges_at(c: np.ndarray, k: int, level: float) -> tuple[float, float]:
    """Where the run around ``k`` with ``c`` >= ``level`` starts and ends, in samples.

    The edges are interpolated between samples, and at least one sample apart.
    """
    lo = k
    while lo > 0 and c[lo - 1] >= level:
        lo -= 1
    hi = k
    while hi < c.size - 1 and c[hi + 1] >= level:
        hi += 1
    left = lo - (c[lo] - level) / (c[lo] - c[lo - 1]) if lo > 0 else float(lo)
    right = hi + (c[hi] - level) / (c[hi] - c[hi + 1]) if hi < c.size - 1 else float(hi)
    if right - left < 1.0:
        mid = (left + right) / 2.0
        left, right = mid - 0.5, mid + 0.5
    return float(left), float(right)


def blinks(series: KeypointSeries, source: str = "face_mesh") -> MeasureResult:
    """Blink count, rate per minute and durations from the eye aspect ratio."""
    raw = eye_ears(series, source)
    fs = sampling_rate(series.time_s)
    grid, ears = resample_uniform(series.time_s, raw, fs)
    seen = float(np.isfinite(ears).all(axis=1).sum() / fs)
    if seen < 2.0:
        raise MeasureError(f"the eyes are visible for only {seen:.2f} s; need 2 s for blinks")
    closure, level = closure_signal(ears, fs)
    bl = detect_blinks(grid, closure, fs)
    dur_ms = 1000.0 * bl["durations_s"]
    ear = ears.mean(axis=1)
    values = {
        "blink_count": int(bl["times_s"].size),
        "blink_rate_per_min": float(60.0 * bl["times_s"].size / seen),
        "blink_duration_ms_mean": float(dur_ms.mean()) if dur_ms.size else None,
        "blink_durations_ms": [round(float(v), 1) for v in dur_ms],
        "blink_times_s": [round(float(v), 3) for v in bl["times_s"]],
        "long_closure_count": int(bl["long_closures_s"].size),
        "long_closure_durations_s": [round(float(v), 3) for v in bl["long_closures_s"]],
        "ear_open_median": float(np.nanmedian(level)),
        "closure_threshold": bl["threshold"],
        "duration_s": seen,
    }
    sig = Signal(
        name=f"blinks_{source}",
        time_s=grid,
        columns={"ear": ear, "ear_open_level": level, "closure": closure},
        events={"blink": bl["times_s"], "long_closure": bl["long_closure_times_s"]},
        thresholds={"blink threshold (on closure)": bl["threshold"]},
        ylabel="eye aspect ratio",
    )
    return MeasureResult(values=values, signals=[sig])


def inter_ocular_mesh(xy: np.ndarray) -> np.ndarray:
    """Outer eye-corner distance per frame on the face mesh (pixels)."""
    a, b = MESH_EYE_CORNERS
    return np.linalg.norm(xy[:, a] - xy[:, b], axis=1)


def mouth(series: KeypointSeries) -> MeasureResult:
    """Inner-lip opening (mesh 13-14) in inter-ocular distances: its mean and range."""
    xy = _group(series, "face_mesh", "face mesh")
    iod = np.nanmedian(inter_ocular_mesh(xy))
    raw = np.linalg.norm(xy[:, MESH_INNER_LIPS[0]] - xy[:, MESH_INNER_LIPS[1]], axis=1) / iod
    fs = sampling_rate(series.time_s)
    grid, y = resample_uniform(series.time_s, raw, fs)
    f = y[np.isfinite(y)]
    if f.size < 3:
        raise MeasureError("the mouth is visible in fewer than 3 frames")
    p5, p95 = np.percentile(f, [5, 95])
    values = {
        "mouth_open_mean_norm": float(f.mean()),
        "mouth_open_range_norm": float(p95 - p5),
        "mouth_open_max_norm": float(f.max()),
        "inter_ocular_px": float(iod),
    }
    sig = Signal(
        name="mouth_opening",
        time_s=grid,
        columns={"mouth_open_norm": y},
        thresholds={"5th percentile": float(p5), "95th percentile": float(p95)},
        ylabel="inner-lip gap / inter-ocular",
    )
    return MeasureResult(values=values, signals=[sig])


def _similarity_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``src`` (K, 2) mapped onto ``dst`` by the least-squares similarity (Umeyama 1991)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    corr = np.diag([1.0, sign])
    rot = u @ corr @ vt
    scale = float((sig * np.diag(corr)).sum() / (s**2).sum())
    return scale * s @ rot.T + mu_d


def motion(series: KeypointSeries) -> MeasureResult:
    """Facial motion energy: how much the face moves apart from the head's own movement.

    Each frame's mesh is aligned to the first frame's by a similarity transform, which removes
    head translation, rotation in the image plane and scale; what remains is expression (and
    out-of-plane turns). The positions are low-passed at ``MOTION_SMOOTH_HZ`` first, so that
    tracker jitter is not counted as movement. ``motion_energy_iod2_per_s2`` is the mean
    squared speed of those residual points, ``expression_speed_iod_per_s`` their mean speed,
    both in inter-ocular distances; ``head_speed_iod_per_s`` is the speed of the face's centre.
    """
    xy = _group(series, "face_mesh", "face mesh")[:, :468]  # irises move with gaze, not face
    ok = np.isfinite(xy).all(axis=(1, 2))
    if ok.sum() < 3:
        raise MeasureError("the face mesh is complete in fewer than 3 frames")
    t = np.asarray(series.time_s, dtype=float)
    idx = np.flatnonzero(ok)
    ref = xy[idx[0]]
    iod = float(np.nanmedian(inter_ocular_mesh(xy)))
    ref_iod = float(np.linalg.norm(ref[MESH_EYE_CORNERS[0]] - ref[MESH_EYE_CORNERS[1]]))
    aligned = np.array([_similarity_align(xy[i], ref) for i in idx]) / ref_iod
    centre = xy[idx].mean(axis=1) / iod
    # Speeds only between frames that follow each other (no bridging of missing frames).
    consec = np.diff(idx) == 1
    # Expressions are slower than MOTION_SMOOTH_HZ; frame-to-frame landmark jitter is not, and
    # would otherwise dominate a squared speed.
    fs = sampling_rate(t)
    if 0.45 * fs > MOTION_SMOOTH_HZ:
        sos = sps.butter(2, MOTION_SMOOTH_HZ, btype="low", fs=fs, output="sos")
        for a, b in segments(np.concatenate([consec, [False]]) | np.concatenate([[False], consec])):
            if b - a > 15:
                aligned[a:b] = sps.sosfiltfilt(sos, aligned[a:b], axis=0)
                centre[a:b] = sps.sosfiltfilt(sos, centre[a:b], axis=0)
    dt = np.diff(t[idx])
    use = consec & (dt > 0)
    if use.sum() < 2:
        raise MeasureError("fewer than 3 consecutive frames with a face")
    v = np.linalg.norm(np.diff(aligned, axis=0), axis=2)[use] / dt[use, None]
    head = np.linalg.norm(np.diff(centre, axis=0), axis=1)[use] / dt[use]
    values = {
        "motion_energy_iod2_per_s2": float(np.mean(v**2)),
        "expression_speed_iod_per_s": float(np.mean(v)),
        "head_speed_iod_per_s": float(np.mean(head)),
    }
    speed = np.full(len(t), np.nan)
    speed[idx[1:][use]] = v.mean(axis=1)
    sig = Signal(
        name="facial_motion",
        time_s=t,
        columns={"expression_speed_iod_per_s": speed},
        ylabel="mean non-rigid landmark speed (inter-ocular / s)",
    )
    return MeasureResult(values=values, signals=[sig])


def blendshape_ranges(series: KeypointSeries) -> MeasureResult:
    """How far each expression unit moved: 5th-to-95th percentile of its blendshape score.

    A face with hypomimia shows a narrow range in every unit; one that smiles, frowns and
    raises its brows shows wide ones. Percentiles rather than min and max, so a single
    misread frame does not set the range. Scores are 0..1, so the ranges are too. The units
    are :data:`~medswap.keypoints.blendshapes.EXPRESSION_BLENDSHAPES` (blinks are counted
    from the eye aspect ratio instead).
    """
    scores = series.scores.get("face_blendshapes")
    if scores is None:
        raise MeasureError("no blendshapes in these keypoints (extracted without them)")
    seen = np.isfinite(scores).all(axis=1)
    if seen.sum() < 3:
        raise MeasureError("the face landmarker found a face in fewer than 3 frames")
    cols = [BLENDSHAPE_NAMES.index(name) for name in EXPRESSION_BLENDSHAPES]
    p5, p95 = np.percentile(scores[seen][:, cols], [5, 95], axis=0)
    values = {
        f"{name}_range": float(hi - lo)
        for name, lo, hi in zip(EXPRESSION_BLENDSHAPES, p5, p95, strict=True)
    }
    values["frames_with_face"] = int(seen.sum())
    t = np.asarray(series.time_s, dtype=float)
    signals = []
    for name in PLOTTED_BLENDSHAPES:  # one trace each, so the report can overlay the copy's
        j = EXPRESSION_BLENDSHAPES.index(name)
        signals.append(
            Signal(
                name=f"blendshape_{name}",
                time_s=t,
                columns={name: scores[:, BLENDSHAPE_NAMES.index(name)].astype(float)},
                thresholds={"5th percentile": float(p5[j]), "95th percentile": float(p95[j])},
                ylabel=f"{name} score (0..1)",
            )
        )
    return MeasureResult(values=values, signals=signals)
