"""The evaluation's figures, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import cv2
import numpy as np

from medswap.keypoints.schema import EVAL_GROUPS, LAYOUTS, edges

#: Method colours, stable across figures; the noise floor is grey.
COLOURS = {
    "original": "#222222",
    "reencode": "#8c8c8c",
    "swap": "#1b9e77",
    "blur": "#d95f02",
    "pixelate": "#7570b3",
    "mask": "#e7298a",
}
_FALLBACK = ["#66a61e", "#e6ab02", "#a6761d", "#1f78b4", "#b2df8a"]


def colour(label: str, i: int = 0) -> str:
    return COLOURS.get(label, _FALLBACK[i % len(_FALLBACK)])


def _figure(width: float = 8, height: float = 4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def bar_by_group(
    values: dict[str, dict[str, float]],
    ylabel: str,
    title: str,
    lower: dict[str, dict[str, float]] | None = None,
    upper: dict[str, dict[str, float]] | None = None,
) -> bytes:
    """Grouped bars: {group: {method: value}}; optional IQR whiskers; n/a marked."""
    groups = list(values)
    methods = list(dict.fromkeys(m for row in values.values() for m in row))
    fig, ax = _figure(min(11.0, max(7.0, 0.35 * len(groups) * max(1, len(methods)))), 4)
    width = 0.8 / max(1, len(methods))
    for j, m in enumerate(methods):
        x = np.arange(len(groups)) + (j - (len(methods) - 1) / 2) * width
        y = np.array([values[g].get(m, math.nan) for g in groups], dtype=float)
        kw = {}
        if lower is not None and upper is not None:
            lo = np.array([lower[g].get(m, math.nan) for g in groups], dtype=float)
            hi = np.array([upper[g].get(m, math.nan) for g in groups], dtype=float)
            kw["yerr"] = np.nan_to_num(np.vstack([y - lo, hi - y]), nan=0.0).clip(min=0)
        ax.bar(x, np.nan_to_num(y, nan=0.0), width, label=m, color=colour(m, j), **kw)
        for xi, yi in zip(x, y):
            if not np.isfinite(yi):
                ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(np.arange(len(groups)), groups, rotation=20)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def nme_over_time(result, original) -> bytes:
    """Per-frame NME of every group that was measured, one panel per group."""
    groups = [
        g.name
        for g in EVAL_GROUPS
        if any(np.isfinite(m.groups[g.name].nme).any() for m in result.methods)
    ]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(groups))
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.9 * n), dpi=100, sharex=True, squeeze=False)
    for ax, g in zip(axes[:, 0], groups):
        for j, m in enumerate(result.methods):
            ax.plot(original.time_s, m.groups[g].nme, label=m.label, color=colour(m.label, j), lw=1)
        ax.set_ylabel(g, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=max(1, len(result.methods)))
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle("Normalised error per frame (NME)")
    return _png(fig)


def read_frame(path: str | Path, index: int) -> np.ndarray | None:
    """The upright RGB frame ``index`` of a video (decodes up to it)."""
    from medswap.video import read_frames

    last = None
    for frame in read_frames(path, max_frames=index + 1):
        last = frame
    return None if last is None or last.index != index else last.image


def still_frame_index(original) -> int:
    """The frame where the original has the most detected keypoints (the most to look at)."""
    count = sum(np.isfinite(a[..., 0]).sum(axis=1) for a in original.groups.values())
    return int(np.argmax(count)) if len(count) else 0


_DRAW = {
    "body": (0, 200, 0),
    "left_hand": (0, 140, 255),
    "right_hand": (255, 140, 0),
    "face_dlib68": (255, 230, 0),
}


def draw_keypoints(
    image: np.ndarray,
    groups: dict[str, np.ndarray],
    i: int,
    reference: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Frame ``i``'s skeletons drawn on a copy; ``reference`` (the original's) as red dots."""
    out = image.copy()
    t = max(1, round(max(image.shape[:2]) / 400))
    if reference is not None:
        for name in _DRAW:
            for x, y in reference[name][i, :, :2]:
                if np.isfinite(x) and np.isfinite(y):
                    cv2.circle(out, (int(round(x)), int(round(y))), t + 1, (255, 0, 0), -1)
    for name, rgb in _DRAW.items():
        pts = groups[name][i, :, :2]
        for a, b in edges(name):
            pa, pb = pts[a], pts[b]
            if np.isfinite(pa).all() and np.isfinite(pb).all():
                cv2.line(
                    out,
                    tuple(int(round(v)) for v in pa),
                    tuple(int(round(v)) for v in pb),
                    rgb,
                    t,
                    cv2.LINE_AA,
                )
        for x, y in pts:
            if np.isfinite(x) and np.isfinite(y):
                cv2.circle(out, (int(round(x)), int(round(y))), t, rgb, -1)
    return out


def encode_png(image: np.ndarray, max_side: int = 480) -> bytes:
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1:
        image = cv2.resize(
            image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
        )
    _, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return buf.tobytes()


def evaluation_plots(result, out_dir: Path, original, series: dict, videos: dict | None) -> dict:
    """nme_by_group.png, nme_over_time.png and still_<method>.png; returns {key: filename}."""
    files = {}
    (out_dir / "nme_by_group.png").write_bytes(
        bar_by_group(
            result.table("nme_median"), "median NME", "Keypoint error per group (lower is better)"
        )
    )
    files["plot_nme_by_group"] = "nme_by_group.png"
    (out_dir / "nme_over_time.png").write_bytes(nme_over_time(result, original))
    files["plot_nme_over_time"] = "nme_over_time.png"
    if videos:
        i = still_frame_index(original)
        for label, path in videos.items():
            image = read_frame(path, int(original.frame_index[i])) if path else None
            if image is None:
                continue
            groups = original.groups if label == "original" else series[label].groups
            ref = None if label == "original" else original.groups
            name = f"still_{label}.png"
            (out_dir / name).write_bytes(encode_png(draw_keypoints(image, groups, i, ref)))
            files[f"still_{label}"] = name
    return files


def describe_layouts() -> str:
    return ", ".join(f"{k}: {LAYOUTS[k].normaliser_name}" for k in LAYOUTS)
