"""The lineup bar of the release gate: how often the patient may be nearest of the gallery.

Pure arithmetic on rates and counts (no faces), so that the gate, the audit's summary and
the benchmarks apply one rule: at or below a fixed share of frames, or no better than a
recogniser that only guesses would do on so few frames.
"""

from __future__ import annotations

import math

#: The lineup bar of the release gate: the patient may be nearest of the gallery in at most
#: this share of frames (issue 19's bar), or twice chance where the gallery is so small that
#: chance itself is near it.
RANK1_MAX = 0.10


#: A rank-1 rate above the bound still passes when a recogniser that only guessed would reach
#: that many rank-1 frames at least this often: on a short clip a few chance hits (2 of 16
#: frames against 31 identities) say nothing about the swap, and refusing them would refuse
#: clean clips at random.
CHANCE_P_MIN = 0.01


def rank1_bound(chance: float) -> float:
    """The highest rank-1 rate the release gate accepts against a lineup with this chance."""
    return max(RANK1_MAX, 2.0 * chance)


def chance_tail(hits: int, probes: int, chance: float) -> float:
    """P(at least ``hits`` rank-1 frames of ``probes``) for a recogniser that only guesses.

    The one-sided binomial tail: how often chance alone does as well as the recogniser did.
    """
    if hits <= 0:
        return 1.0
    below = sum(
        math.comb(probes, k) * chance**k * (1.0 - chance) ** (probes - k) for k in range(hits)
    )
    return max(0.0, 1.0 - below)


def rank1_passes(rate: float | None, probes: int, chance: float) -> bool:
    """The lineup bar for one recogniser: at or below :func:`rank1_bound`, or no better than
    chance (:data:`CHANCE_P_MIN`)."""
    if rate is None or rate <= rank1_bound(chance):
        return True
    hits = round(rate * probes)
    return chance_tail(hits, probes, chance) >= CHANCE_P_MIN
