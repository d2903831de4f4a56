"""The look-ahead that runs the models on frame N+1 while frame N is swapped.

MediaPipe graphs break when called from two threads at once, and the tracking ones (mesh,
hands) must see frames in order. A blur run at 720p once failed with "Empty packets are not
allowed" because two frames' detector calls overlapped; these tests pin the schedule down with
models that record when they run.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from medswap.perceive import look_ahead
from medswap.video import Frame


class _Recorder:
    """A stand-in model (the schedule is what is under test) that notes overlap and order."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.busy = threading.Lock()
        self.overlaps = 0
        self.seen: list[int] = []

    def __call__(self, image: np.ndarray) -> int:
        if not self.busy.acquire(blocking=False):
            self.overlaps += 1
            self.busy.acquire()
        try:
            time.sleep(self.seconds)
            self.seen.append(int(image[0, 0, 0]))
            return int(image[0, 0, 0])
        finally:
            self.busy.release()


def _frames(n: int):
    for i in range(n):
        yield Frame(i, i, i / 30, np.full((2, 2, 3), i, np.uint8))


def test_each_model_sees_every_frame_once_in_order_never_concurrently() -> None:
    models = [_Recorder(0.004), _Recorder(0.001), None]
    got = []
    for frame, jobs in look_ahead(_frames(40), models):
        assert jobs[2] is None
        got.append((frame.index, jobs[0].result(), jobs[1].result()))
        time.sleep(0.002)  # the "swap" on this thread
    assert got == [(i, i, i) for i in range(40)]
    for m in models[:2]:
        assert m.seen == list(range(40))
        assert m.overlaps == 0


def test_models_run_one_frame_ahead_of_the_caller() -> None:
    model = _Recorder(0.0)
    ahead = look_ahead(_frames(5), [model])
    frame, jobs = next(ahead)
    jobs[0].result()
    time.sleep(0.05)
    # While the caller holds frame 0, frame 1 has been handed to the model, and no further.
    assert frame.index == 0
    assert model.seen == [0, 1]
    ahead.close()


def test_closing_early_stops_the_model_threads() -> None:
    model = _Recorder(0.01)
    ahead = look_ahead(_frames(100), [model])
    for frame, _ in ahead:
        if frame.index == 3:
            break
    ahead.close()
    n = len(model.seen)
    time.sleep(0.05)
    assert len(model.seen) == n <= 5
    assert not any(t.name.startswith("medswap-model") for t in threading.enumerate())


def test_a_model_error_reaches_the_caller() -> None:
    def broken(image: np.ndarray) -> None:
        raise RuntimeError("model failed")

    ahead = look_ahead(_frames(3), [broken])
    _, jobs = next(ahead)
    with pytest.raises(RuntimeError, match="model failed"):
        jobs[0].result()
    ahead.close()
