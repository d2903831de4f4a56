"""Keep the native libraries' own logging (MediaPipe, TFLite, absl, glog) off the terminal.

MediaPipe's C++ graphs print 10-15 lines on every run ("Created TensorFlow Lite XNNPACK
delegate", "inference_feedback_manager ... Disabling support for feedback tensors", ...) straight
to file descriptor 2, from C++ threads. ``GLOG_minloglevel`` and ``TF_CPP_MIN_LOG_LEVEL`` have
no effect on them (absl is initialised inside the wheel before Python can set anything), and
Python's ``sys.stderr`` is not involved. The only lever is the descriptor itself: while a model
loads and runs its first frame, fd 2 points at ``/dev/null`` and is restored afterwards.

Threads share fd 2, so the silencing is reference-counted: the first thread in redirects, the
last one out restores. medswap's own lines printed meanwhile (from another thread) would be
lost too, so only short windows are silenced: model construction and each model's first call.
``-v`` turns this off (:func:`set_verbose`), to see what the libraries say.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None
_verbose = False

T = TypeVar("T")


def set_verbose(verbose: bool) -> None:
    """Let the native libraries print (``-v``) or keep them quiet (the default)."""
    global _verbose
    _verbose = bool(verbose)


def _enter() -> None:
    global _depth, _saved_fd
    with _lock:
        _depth += 1
        if _depth > 1:
            return
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all (a daemon): nothing to silence
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        _saved_fd = saved


def _exit() -> None:
    global _depth, _saved_fd
    with _lock:
        _depth -= 1
        if _depth > 0 or _saved_fd is None:
            return
        os.dup2(_saved_fd, 2)
        os.close(_saved_fd)
        _saved_fd = None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Send fd 2 to /dev/null for the block (unless ``-v``); Python exceptions still propagate."""
    if _verbose:
        yield
        return
    _enter()
    try:
        yield
    finally:
        _exit()


def quietly(make: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``make(*args, **kwargs)`` with the native libraries silenced (a model's constructor)."""
    with quiet():
        return make(*args, **kwargs)


class FirstCallQuiet:
    """Wraps a callable so that its first call runs silenced (where graphs print on start)."""

    def __init__(self, fn: Callable[..., T]) -> None:
        self._fn = fn
        self._first = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._first:
            self._first = False
            with quiet():
                return self._fn(*args, **kwargs)
        return self._fn(*args, **kwargs)


@contextlib.contextmanager
def hidden_for_command() -> Iterator[None]:
    """For a whole CLI command: fd 2 to /dev/null, Python's ``sys.stderr`` to the real stderr.

    The windows of :func:`quiet` cover model loading and first calls, but some graphs start a
    subgraph later (the hand landmark model runs first when a palm is first found). So the CLI
    keeps every native write away for the whole command, while medswap's own lines, logging
    and tracebacks go through a duplicate of the original descriptor. Only done when
    ``sys.stderr`` is the process's real fd 2 (not under a test's capture), and never with -v.
    """
    try:
        real = sys.stderr is sys.__stderr__ and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if _verbose or not real:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_err = os.fdopen(
        saved, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace"
    )
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    previous, sys.stderr = sys.stderr, python_err
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            python_err.flush()
        os.dup2(saved, 2)
        sys.stderr = previous
        python_err.close()
