"""Option types and options shared by several subcommands, declared once.

Every number on the command line is checked while the arguments are parsed, so a bad value is
one line naming the option and its valid range (exit code 2) before any file is opened. Before
this, ``--max-frames`` was declared six times with two validators, and ``deidentify
--max-frames 0`` wrote a one-frame video while ``keypoints --max-frames 0`` refused it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"between {lo:g} and {hi:g}"
    if lo is not None:
        return f"{lo:g} or more"
    return f"{hi:g} or less"


def whole(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number in ``[lo, hi]`` (either end may be open)."""

    def parse(text: str) -> int:
        want = f"a whole number {_range_text(lo, hi)}"
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {want}, got '{text}'") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected {want}, got {value}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in its own messages
    return parse


def number(lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    """An argparse ``type`` for a finite number in ``[lo, hi]`` (NaN and infinity refused)."""

    def parse(text: str) -> float:
        want = "a number" if lo is None and hi is None else f"a number {_range_text(lo, hi)}"
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {want}, got '{text}'") from None
        if (
            not math.isfinite(value)
            or (lo is not None and value < lo)
            or (hi is not None and value > hi)
        ):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


#: Frame counts, strides, steps, worker counts: 1 or more.
positive = whole(1)


def add_max_frames(p: argparse.ArgumentParser, help: str = "only the first N frames") -> None:
    """``--max-frames N`` (N >= 1), the same option with the same check in every subcommand."""
    p.add_argument("--max-frames", type=positive, default=None, metavar="N", help=help)
