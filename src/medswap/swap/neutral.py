"""A face track's neutral (resting) shape, estimated online with flat memory.

The swap renders the donor's own resting shape plus the patient's *deformation* from their
resting shape (expression, blinks, speech) under the patient's head pose, so the patient's
resting shape, which a face recogniser reads as identity, never reaches the output. That needs
the resting shape of each track while the video streams: here, the per-coordinate median of
pose-normalised meshes sampled over the whole track so far.

Flat memory over any length: at most ``capacity`` samples are kept. The track is sampled every
``step`` frames; when the buffer is full, every other sample is dropped and ``step`` doubles,
so the samples stay spread evenly over the whole track (a decimating reservoir, deterministic).
The median is robust to what is not resting: a blink (a few frames), a mouth held open for
less than half of the track, a brief grimace.
"""

from __future__ import annotations

import numpy as np

#: Samples kept per track (64 x 468 points x 2 coordinates = 0.5 MB of float64).
CAPACITY = 64


class NeutralShape:
    """The running median of a track's pose-normalised shapes, over evenly spread samples.

    ``update(shape)`` takes the frame's (N, D) pose-normalised points and returns the current
    estimate; the first frame's estimate is that frame itself.
    """

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be 2 or more, got {capacity}")
        self.capacity = capacity
        self._samples: list[np.ndarray] = []
        self._step = 1
        self._seen = 0
        self._estimate: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        return len(self._samples)

    @property
    def estimate(self) -> np.ndarray | None:
        return self._estimate

    def update(self, shape: np.ndarray) -> np.ndarray:
        if self._seen % self._step == 0:
            if len(self._samples) == self.capacity:
                self._samples = self._samples[::2]
                self._step *= 2
            if self._seen % self._step == 0:
                self._samples.append(np.array(shape, dtype=np.float64))
                self._estimate = np.median(np.stack(self._samples), axis=0)
        self._seen += 1
        return self._estimate
