"""Clinical measures computed from keypoints, to show they survive de-identification.

``measures(series, task)`` returns a plain dict (units in the key names) for MEASURES.json;
``measure_set`` returns the same values with the signals behind them, for CSV files and plots;
``agreement`` compares an original's measures with its de-identified copy's. A measure that
cannot be computed is ``{"error": "..."}`` in the dict; the per-measure functions
(``finger_tapping``, ``blinks``, ...) raise :class:`~medswap.errors.MeasureError` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from medswap.errors import MeasureError, UsageError
from medswap.measures.agreement import (
    agreement,
    agreement_across,
    bland_altman,
    flatten,
    icc_3_1,
)
from medswap.measures.face import blinks, ear_signal, eye_aspect_ratio, motion, mouth
from medswap.measures.motor import (
    HANDS,
    MeasureResult,
    finger_tapping,
    hand_movements,
    spread_signal,
    tapping_signal,
    tremor,
)
from medswap.measures.output import plot_signal, signal_table, write_json, write_signals
from medswap.measures.signals import Signal, resample_uniform, sampling_rate
from medswap.types import KeypointSeries

log = logging.getLogger(__name__)

#: Task names accepted by ``measures`` and ``--task``; "auto" computes every family.
TASKS = ("auto", "finger-tapping", "hand-movements", "face", "tremor")

__all__ = [
    "TASKS",
    "MeasureError",
    "MeasureResult",
    "MeasureSet",
    "Signal",
    "agreement",
    "agreement_across",
    "bland_altman",
    "blinks",
    "ear_signal",
    "eye_aspect_ratio",
    "finger_tapping",
    "flatten",
    "hand_movements",
    "icc_3_1",
    "measure_set",
    "measures",
    "motion",
    "mouth",
    "plot_signal",
    "resample_uniform",
    "sampling_rate",
    "signal_table",
    "spread_signal",
    "tapping_signal",
    "tremor",
    "write_json",
    "write_signals",
]


@dataclass
class MeasureSet:
    """The measures of one series (``values``, JSON-ready) and every signal behind them."""

    values: dict
    signals: list[Signal] = field(default_factory=list)

    def signal(self, name: str) -> Signal:
        for s in self.signals:
            if s.name == name:
                return s
        raise KeyError(name)


def _run(fn: Callable[[], MeasureResult], signals: list[Signal], what: str) -> dict:
    """One measure, with a failure turned into ``{"error": ...}`` and logged."""
    try:
        res = fn()
    except MeasureError as exc:
        log.info("%s: %s", what, exc.message)
        return {"error": exc.message}
    signals.extend(res.signals)
    return res.values


def measure_set(series: KeypointSeries, task: str = "auto") -> MeasureSet:
    """Every measure of ``task`` on ``series``, each one computed or an explained error."""
    task = task.replace("_", "-")
    if task not in TASKS:
        raise UsageError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    t = np.asarray(series.time_s, dtype=float)
    values: dict = {
        "task": task,
        "n_frames": len(series),
        "duration_s": float(t[-1] - t[0]) if len(t) > 1 else 0.0,
    }
    try:
        values["frame_rate_hz"] = sampling_rate(t)
    except MeasureError:
        values["frame_rate_hz"] = None
    signals: list[Signal] = []
    want = set(TASKS[1:]) if task == "auto" else {task}
    motor = (
        ("finger-tapping", "finger_tapping", finger_tapping),
        ("hand-movements", "hand_movements", hand_movements),
        ("tremor", "tremor", tremor),
    )
    for name, key, fn in motor:
        if name in want:
            values[key] = {
                hand: _run(lambda f=fn, h=hand: f(series, h), signals, f"{key} {hand}")
                for hand in HANDS
            }
    if "face" in want:
        values["face"] = {
            "blinks": _run(lambda: blinks(series, "face_mesh"), signals, "blinks"),
            "blinks_dlib68": _run(
                lambda: blinks(series, "face_dlib68"), signals, "blinks (dlib68)"
            ),
            "mouth": _run(lambda: mouth(series), signals, "mouth"),
            "motion": _run(lambda: motion(series), signals, "facial motion"),
        }
    return MeasureSet(values=values, signals=signals)


def measures(series: KeypointSeries, task: str = "auto") -> dict:
    """The measures of ``task`` as a plain dict with units in the keys (MEASURES.json)."""
    return measure_set(series, task).values
