"""Measures to files: each measure's signal as CSV and as a PNG plot with its events.

A number alone does not let a clinician trust a tap count; the trace with the detected taps
marked does. Plots use matplotlib's Agg backend, so they work without a display.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from medswap.errors import OutputError
from medswap.measures.signals import Signal
from medswap.outputs import json_safe

_EVENT_STYLE = {
    "opening": ("^", "tab:green"),
    "closing": ("v", "tab:red"),
    "blink": ("v", "tab:red"),
    "long_closure": ("s", "tab:purple"),
}


def signal_table(sig: Signal) -> str:
    """CSV text: time_s, every column, and an ``event`` column naming events at their frames."""
    t = sig.time_s
    event = [""] * len(t)
    if len(t):
        for kind, times in sig.events.items():
            for et in np.asarray(times, float):
                i = int(np.argmin(np.abs(t - et)))
                event[i] = f"{event[i]};{kind}" if event[i] else kind
    cols = list(sig.columns)
    lines = [",".join(["time_s", *cols, "event"])]
    for i in range(len(t)):
        vals = [_fmt(sig.columns[c][i]) for c in cols]
        lines.append(",".join([f"{t[i]:.6f}", *vals, event[i]]))
    return "\n".join(lines) + "\n"


def _fmt(v: float) -> str:
    return "" if not math.isfinite(float(v)) else f"{float(v):.6g}"


def plot_signal(
    sig: Signal,
    path: str | Path,
    overlay: Signal | None = None,
    labels: tuple[str, str] = ("original", "de-identified"),
) -> Path:
    """PNG of a signal's main trace with its events; ``overlay`` draws a second one on top.

    The overlay is how the report shows an original and its de-identified copy together.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=100)
    try:
        for s, lab, color, ls in (
            (sig, labels[0], "tab:blue", "-"),
            (overlay, labels[1], "tab:orange", "--"),
        ):
            if s is None:
                continue
            y = s.main
            ax.plot(
                s.time_s,
                y,
                ls,
                color=color,
                lw=1.2,
                label=f"{lab}" if overlay is not None else next(iter(s.columns)),
            )
            for kind, times in s.events.items():
                times = np.asarray(times, float)
                if times.size == 0:
                    continue
                marker, c = _EVENT_STYLE.get(kind, ("o", "k"))
                yy = np.interp(times, s.time_s[np.isfinite(y)], y[np.isfinite(y)])
                ax.plot(
                    times,
                    yy,
                    marker,
                    color=c,
                    ms=7,
                    ls="none",
                    mfc=c if s is sig else "none",
                    label=f"{kind} ({times.size})" + (f", {lab}" if overlay else ""),
                )
        for name, val in sig.thresholds.items():
            if name.endswith("percentile"):
                ax.axhline(val, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("time (s)")
        ax.set_ylabel(sig.ylabel)
        ax.set_title(sig.name.replace("_", " "))
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def write_signals(signals: list[Signal], out_dir: str | Path) -> list[Path]:
    """Write ``<name>.csv`` and ``<name>.png`` for every signal into ``out_dir``."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the signals folder ({exc.strerror})", out) from None
    written = []
    for sig in signals:
        csv = out / f"{sig.name}.csv"
        csv.write_text(signal_table(sig))
        written += [csv, plot_signal(sig, out / f"{sig.name}.png")]
    return written


def write_overlays(
    original: list[Signal], deidentified: list[Signal], out_dir: str | Path
) -> list[Path]:
    """``<name>_overlay.png`` for every signal both sides have: the report's side-by-side view.

    A signal only one side has (blur removed the face, so no blink trace) gets no overlay;
    the agreement table already says that measure was lost.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the signals folder ({exc.strerror})", out) from None
    other = {s.name: s for s in deidentified}
    return [
        plot_signal(s, out / f"{s.name}_overlay.png", overlay=other[s.name])
        for s in original
        if s.name in other
    ]


def write_json(data: dict, path: str | Path) -> Path:
    """Write a measures dict as JSON (NaN becomes null, so the file is strict JSON)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError("the output folder does not exist", path.parent)
    path.write_text(json.dumps(json_safe(data), indent=2) + "\n")
    return path
