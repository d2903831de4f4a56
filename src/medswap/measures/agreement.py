"""Do the clinical measures agree between an original video and its de-identified copy?

Per video: each measure's two values, their absolute and relative difference, and whether the
difference is within tolerance (frequencies 2 %, counts exact, everything else 5 %). A measure
that the de-identified video lost (blur hides the eyes, so no blinks) is a row with its error,
never a missing row. Across videos: Bland-Altman limits of agreement and ICC(3,1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

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
    """Bland-Altman agreement of paired values: mean difference (b - a) and its 95 % limits."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    d = y - x
    n = d.size
    if n < 2:
        raise ValueError(f"Bland-Altman needs at least 2 pairs, got {n}")
    bias = float(d.mean())
    sd = float(d.std(ddof=1))
    return {
        "n": n,
        "mean_diff": bias,
        "sd_diff": sd,
        "loa_low": bias - 1.96 * sd,
        "loa_high": bias + 1.96 * sd,
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


def agreement_across(pairs: Sequence[tuple[dict, dict]]) -> dict:
    """Across videos: per measure, Bland-Altman limits and ICC(3,1) of original vs de-id.

    Only videos where both values exist enter a measure's statistics; ``n`` says how many.
    A measure with fewer than two such videos gets ``{"n": n, "error": ...}``.
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
        if len(vals) < 2:
            out[key] = {"n": len(vals), "error": "fewer than 2 videos have this measure in both"}
            continue
        arr = np.array(vals)
        stats = bland_altman(arr[:, 0], arr[:, 1])
        stats["icc_3_1"] = icc_3_1(arr)
        out[key] = stats
    return out
