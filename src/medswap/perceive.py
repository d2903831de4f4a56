"""Perceive: the face mesh, the face detector and the hand model on each frame, one frame ahead.

The models run on threads of their own while the caller renders the frame before, so on two
cores neither waits for the other (:func:`look_ahead`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from medswap import video


def _timed(model: Callable[[np.ndarray], object], timers: Counter) -> Callable:
    """``model`` with the seconds spent in it added to ``timers[its class name]``."""
    name = f"perceive: {type(model).__name__}"

    def call(image: np.ndarray) -> object:
        t0 = time.perf_counter()
        try:
            return model(image)
        finally:
            timers[name] += time.perf_counter() - t0

    return call


def look_ahead(
    frames: Iterable[video.Frame],
    models: Sequence[Callable[[np.ndarray], object] | None],
    timers: Counter | None = None,
) -> Iterator[tuple[video.Frame, list[Future | None]]]:
    """Each frame with every model already running on it, one frame ahead of the caller.

    The swap of frame N (the caller's thread) overlaps the models on frame N+1, so on two
    cores neither waits for the other. Each model gets a thread of its own: MediaPipe graphs
    must not be called concurrently, and the tracking ones (mesh, hands) must see frames in
    order. Two frames are in flight at most, so memory stays flat. A model that is None
    (hands, when occlusion is off) gets no job.
    """
    threads = [
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="medswap-model")
        if m is not None
        else None
        for m in models
    ]
    models = [_timed(m, timers) if m is not None and timers is not None else m for m in models]
    pending: tuple[video.Frame, list[Future | None]] | None = None
    try:
        for frame in frames:
            jobs = [
                t.submit(m, frame.image) if t is not None else None
                for t, m in zip(threads, models, strict=True)
            ]
            if pending is not None:
                yield pending
            pending = frame, jobs
        if pending is not None:
            yield pending
    finally:
        for t in threads:
            if t is not None:
                t.shutdown(wait=True, cancel_futures=True)
