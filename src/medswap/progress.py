"""One progress display for every long step (de-identify, audit, keypoints, compare, batch).

There used to be six progress printers with four shapes. This is the one the CLI uses; the
library only calls plain ``progress(done, total)`` callbacks and never prints.

- On a terminal: one line, rewritten in place at most five times a second
  (``medswap: exam.mp4: audit 120/300 frames, 14.2 fps, ETA 13s``), finished with a newline
  when the step completes.
- Anywhere else (a pipe, a log file, a scheduler): nothing for a step that ends within a
  minute, then at most one line a minute, so logs are not flooded and a short run's stderr
  holds only its result lines.
- Disabled (``-q``): nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

#: Seconds between redraws on a terminal, and between lines elsewhere.
TTY_INTERVAL = 0.2
PIPE_INTERVAL = 60.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


class ProgressDisplay:
    """Shows how far each named step is; ``step(label)`` gives a ``(done, total)`` callback."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self._stream = stream
        self._label: str | None = None
        self._t0 = 0.0
        self._last = 0.0
        self._pending = False  # a terminal line is drawn but not finished with a newline
        self._started = time.perf_counter()

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def _tty(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def update(
        self,
        label: str,
        done: int,
        total: int | None,
        unit: str = "frames",
        extra: str = "",
        eta_s: float | None = None,
    ) -> None:
        """``done`` of ``total`` (0 or None: unknown) ``unit`` of the step ``label``.

        ``eta_s`` replaces the estimate from this step's own rate (a resumed batch counts
        videos finished by an earlier run, which this rate would take for instant work).
        """
        if not self.enabled:
            return
        now = time.perf_counter()
        if label != self._label:  # a new step: its own clock
            self._finish_line()
            self._label, self._t0, self._last = label, now, now
        complete = bool(total) and done >= total
        tty = self._tty()
        if tty:
            if now - self._last < TTY_INTERVAL and not complete:
                return
        elif now - self._last < PIPE_INTERVAL:  # incl. a step that completes within a minute
            return
        self._last = now
        elapsed = max(now - self._t0, 1e-9)
        rate = done / elapsed
        line = f"medswap: {label}: {done}/{total or '?'} {unit}"
        if rate > 0:
            line += f", {rate:.1f}/s" if unit != "frames" else f", {rate:.1f} fps"
        if eta_s is None and total and rate > 0 and not complete:
            eta_s = (total - done) / rate
        if eta_s is not None and not complete:
            line += f", ETA {_duration(eta_s)}"
        if extra:
            line += f", {extra}"
        try:
            if tty:
                self.stream.write("\r\033[K" + line + ("\n" if complete else ""))
                self._pending = not complete
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not stop the work
            self.enabled = False

    def step(self, label: str, unit: str = "frames") -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback for one step, as the library functions take."""
        return lambda done, total: self.update(label, done, total, unit)

    def _finish_line(self) -> None:
        if self._pending:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._pending = False

    def close(self) -> None:
        """End a terminal line left open by an unfinished step (before printing results)."""
        self._finish_line()
        self._label = None
