"""Do the clinical measures agree between an original video and its de-identified copy?

Per video: each measure's two values, their absolute and relative difference, and whether the
difference is within tolerance (frequencies 2 %, counts exact, everything else 5 %). A measure
that the de-identified video lost (blur hides the eyes, so no blinks) is a row with its error,
never a missing row. Across videos: Bland-Altman limits of agreement and ICC(3,1), each with
its 95 % confidence interval, on at least :data:`MIN_VIDEOS` (3) videos; below that they are
not computed and the row says ``needs at least 3 videos, had N``.

The intervals are analytic, so they need no resampling and match the textbooks:

- bias (mean difference): the t interval, bias +- t(0.975, n-1) sd / sqrt(n);
- each limit of agreement: Bland and Altman (1999), SE = sd sqrt(3 / n), limit +- t(0.975,
  n-1) SE;
- ICC(3,1): the F-distribution interval of McGraw and Wong (1996), case 3 (Shrout and
  Fleiss 1979), from F = BMS / EMS with n-1 and (n-1)(k-1) degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: The fewest videos a statistic across videos is computed on: with two, a "limit of
#: agreement" is one difference mirrored and an ICC has one degree of freedom.
MIN_VIDEOS = 3
CI_LEVEL = 0.95
CI_METHODS = {
    "mean_diff_ci": "t interval of the mean difference",
    "loa_ci": "Bland & Altman (1999) approximate interval, SE = sd * sqrt(3 / n)",
    "icc_3_1_ci": "F-distribution interval, McGraw & Wong (1996) case 3",
}


def too_few(n: int) -> str:
    """The note of a statistic that was not computed for lack of videos."""
    return f"needs at least {MIN_VIDEOS} videos, had {n}"


#: Relative tolerances by key suffix; counts must match exactly.
FREQUENCY_TOLERANCE = 0.02
DEFAULT_TOLERANCE = 0.05
#: Keys that describe the recording rather than the patient; not compared.
SKIP_KEYS = (
    "hand_size_px",
    "inter_ocular_px",
    "duration_s",
    "visible_fraction",
    "band_hz",
    "closure_threshold",
    "ear_open_median",
    "frames_with_face",
)
#: Measures on a fixed 0..1 scale (blendshape score ranges) also agree when they differ by
#: at most this much of that scale: 5 % of a range of 0.02 would be noise, not a finding.
SCALE_TOLERANCE = {"face.blendshapes.": 0.05}


def flatten(measures: dict, prefix: str = "") -> dict:
    """Dotted-key view of a measures dict: numeric leaves, and ``{"error": ...}`` leaves.

    Lists (per-blink durations, blink times) are not single measures and are left out.
    """
    out: dict = {}
    for key, val in measures.items():
        path = f"{prefix}{key}"
        if isinstance(val, dict):
            if set(val) == {"error"}:
                out[path] = {"error": val["error"]}
            else:
                out.update(flatten(val, path + "."))
        elif isinstance(val, bool) or key in SKIP_KEYS:
            continue
        elif isinstance(val, (int, float)) and val is not None:
            out[path] = val
    return out


def scale_tolerance_for(key: str) -> float:
    """Absolute tolerance of a measure on a fixed scale (0 where it has none)."""
    return next((v for k, v in SCALE_TOLERANCE.items() if key.startswith(k)), 0.0)


def tolerance_for(key: str) -> float:
    """Relative tolerance of one measure: 0 for counts, 2 % for frequencies, 5 % otherwise."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf.endswith("_count") or leaf in ("hesitations", "halts"):
        return 0.0
    if leaf.endswith("_hz"):
        return FREQUENCY_TOLERANCE
    return DEFAULT_TOLERANCE


def _error_of(flat: dict, key: str) -> str | None:
    """The error that covers ``key`` in a flattened dict (itself or an ancestor)."""
    parts = key.split(".")
    for i in range(len(parts), 0, -1):
        v = flat.get(".".join(parts[:i]))
        if isinstance(v, dict) and "error" in v:
            return v["error"]
    return None


def agreement(original: dict, deid: dict) -> list[dict]:
    """One row per measure: both values, abs/rel difference, tolerance, and whether it holds.

    ``status`` is ``ok`` or ``differs`` when both are present, ``lost`` when the original has
    the measure and the de-identified video does not (its error is given), ``absent`` when
    the original itself could not compute it.
    """
    fo, fd = flatten(original), flatten(deid)
    keys = [k for k in fo if not isinstance(fo[k], dict)]
    keys += [k for k in fd if not isinstance(fd[k], dict) and k not in fo]
    # Measures that failed in the original: one row per error, so the table says so.
    keys += [k for k in fo if isinstance(fo[k], dict)]
    rows = []
    for key in keys:
        a, b = fo.get(key), fd.get(key)
        tol = tolerance_for(key)
        row: dict = {
            "measure": key,
            "original": None,
            "deidentified": None,
            "abs_diff": None,
            "rel_diff": None,
            "tolerance_rel": tol,
        }
        err_o = (
            a["error"] if isinstance(a, dict) else (None if a is not None else _error_of(fo, key))
        )
        err_d = (
            b["error"] if isinstance(b, dict) else (None if b is not None else _error_of(fd, key))
        )
        if err_o is not None or a is None:
            row.update(status="absent", error=err_o or "not computed on the original")
        elif err_d is not None or b is None or not _finite(b):
            row.update(
                original=a, status="lost", error=err_d or "not computed on the de-identified video"
            )
        elif not _finite(a):
            row.update(original=a, deidentified=b, status="absent", error="not finite")
        else:
            diff = abs(float(b) - float(a))
            rel = diff / abs(float(a)) if a != 0 else (0.0 if diff == 0 else math.inf)
            ok = (
                diff == 0
                if tol == 0
                else (rel <= tol or diff <= max(1e-9, scale_tolerance_for(key)))
            )
            row.update(
                original=a,
                deidentified=b,
                abs_diff=diff,
                rel_diff=rel,
                status="ok" if ok else "differs",
            )
        rows.append(row)
    return rows


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(float(v))


def bland_altman(a: Sequence[float], b: Sequence[float]) -> dict:
    """Bland-Altman agreement of paired values: mean difference (b - a), its 95 % limits, and
    the 95 % confidence interval of each (see the module doc for the method)."""
    from scipy.stats import t as student_t

    x, y = np.asarray(a, float), np.asarray(b, float)
    d = y - x
    n = d.size
    if n < MIN_VIDEOS:
        raise ValueError(f"Bland-Altman {too_few(n)}")
    bias = float(d.mean())
    sd = float(d.std(ddof=1))
    tq = float(student_t.ppf(0.5 + CI_LEVEL / 2, n - 1))
    se_bias, se_loa = sd / math.sqrt(n), sd * math.sqrt(3.0 / n)
    low, high = bias - 1.96 * sd, bias + 1.96 * sd
    return {
        "n": n,
        "mean_diff": bias,
        "sd_diff": sd,
        "loa_low": low,
        "loa_high": high,
        "mean_diff_ci": [bias - tq * se_bias, bias + tq * se_bias],
        "loa_low_ci": [low - tq * se_loa, low + tq * se_loa],
        "loa_high_ci": [high - tq * se_loa, high + tq * se_loa],
    }


def icc_3_1(ratings: np.ndarray) -> float:
    """ICC(3,1) of an (n targets, k raters) table: two-way mixed, consistency, single measure.

    Shrout and Fleiss (1979): (BMS - EMS) / (BMS + (k - 1) EMS), from the two-way ANOVA
    without replication. Here the "raters" are the original and the de-identified video, so it
    asks whether patients keep their rank and spacing after de-identification. NaN when the
    targets do not vary at all.
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"ratings must be (n>=2 targets, k>=2 raters), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("ratings contain NaN or infinite values")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    den = bms + (k - 1) * ems
    return float((bms - ems) / den) if den > 0 else float("nan")


def icc_3_1_ci(ratings: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """The confidence interval of :func:`icc_3_1` (McGraw and Wong 1996, case 3).

    F0 = BMS / EMS; the lower bound uses F0 / F(1 - a/2; n-1, (n-1)(k-1)), the upper
    F0 * F(1 - a/2; (n-1)(k-1), n-1), each mapped to (F - 1) / (F + k - 1). NaN, NaN when
    the errors are all zero (F is infinite: perfect consistency, no interval to give).
    """
    from scipy.stats import f as f_dist

    x = np.asarray(ratings, dtype=float)
    icc_3_1(x)  # the same shape and finiteness checks
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    df1, df2 = n - 1, (n - 1) * (k - 1)
    bms, ems = ss_rows / df1, ss_err / df2
    if ems <= 1e-15 * max(bms, 1e-300):
        return math.nan, math.nan
    f0 = bms / ems
    q = 0.5 + level / 2
    fl = f0 / float(f_dist.ppf(q, df1, df2))
    fu = f0 * float(f_dist.ppf(q, df2, df1))
    return float((fl - 1) / (fl + k - 1)), float((fu - 1) / (fu + k - 1))


def agreement_across(pairs: Sequence[tuple[dict, dict]]) -> dict:
    """Across videos: per measure, Bland-Altman limits and ICC(3,1) of original vs de-id.

    Only videos where both values exist enter a measure's statistics; ``n`` says how many.
    A measure with fewer than :data:`MIN_VIDEOS` such videos gets ``{"n": n, "error":
    "needs at least 3 videos, had N"}``. Each computed one carries 95 % confidence intervals
    (``mean_diff_ci``, ``loa_low_ci``, ``loa_high_ci``, ``icc_3_1_ci``; methods in
    :data:`CI_METHODS`).
    """
    values: dict[str, list[tuple[float, float]]] = {}
    for orig, deid in pairs:
        for row in agreement(orig, deid):
            if row["status"] in ("ok", "differs"):
                values.setdefault(row["measure"], []).append(
                    (float(row["original"]), float(row["deidentified"]))
                )
            else:
                values.setdefault(row["measure"], [])
    out: dict = {}
    for key, vals in values.items():
        if len(vals) < MIN_VIDEOS:
            out[key] = {"n": len(vals), "error": too_few(len(vals))}
            continue
        arr = np.array(vals)
        stats = bland_altman(arr[:, 0], arr[:, 1])
        stats["icc_3_1"] = icc_3_1(arr)
        stats["icc_3_1_ci"] = list(icc_3_1_ci(arr))
        out[key] = stats
    return out
