"""``measure_set`` / ``measures``: every measure of a task, each computed or explained."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from medswap.errors import MeasureError, UsageError
from medswap.measures import TASKS
from medswap.measures.face import blendshape_ranges, blinks, motion, mouth
from medswap.measures.motor import (
    HANDS,
    MeasureResult,
    finger_tapping,
    hand_movements,
    tremor,
)
from medswap.measures.signals import Signal, sampling_rate
from medswap.types import KeypointSeries

log = logging.getLogger(__name__)


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
    """One measure, with a failure turned into ``{"error": ...}`` (the output holds the why).

    Logged at debug level only: ``compare`` computes every measure of every output of every
    video, and one info line per unmeasurable hand filled the terminal (72 lines).
    """
    try:
        res = fn()
    except MeasureError as exc:
        log.debug("%s: %s", what, exc.message)
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
            "blendshapes": _run(lambda: blendshape_ranges(series), signals, "blendshapes"),
        }
    return MeasureSet(values=values, signals=signals)


def measures(series: KeypointSeries, task: str = "auto") -> dict:
    """The measures of ``task`` as a plain dict with units in the keys (MEASURES.json)."""
    return measure_set(series, task).values
