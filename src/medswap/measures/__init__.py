"""Clinical measures computed from keypoints, to show they survive de-identification.

``measures(series, task)`` returns a plain dict (units in the key names) for MEASURES.json;
``measure_set`` returns the same values with the signals behind them, for CSV files and plots;
``agreement`` compares an original's measures with its de-identified copy's. A measure that
cannot be computed is ``{"error": "..."}`` in the dict; the per-measure functions
(``finger_tapping``, ``blinks``, ...) raise :class:`~medswap.errors.MeasureError` instead.
"""

from __future__ import annotations

import importlib

#: Task names accepted by ``measures`` and ``--task``; "auto" computes every family.
TASKS = ("auto", "finger-tapping", "hand-movements", "face", "tremor")

# Public names and the submodule that defines each. They load on first use, so that
# ``medswap --help`` does not pay for scipy and pandas.
_LAZY = {
    "MeasureSet": "compute",
    "measure_set": "compute",
    "measures": "compute",
    "MeasureResult": "motor",
    "finger_tapping": "motor",
    "hand_movements": "motor",
    "tremor": "motor",
    "tapping_signal": "motor",
    "spread_signal": "motor",
    "blinks": "face",
    "mouth": "face",
    "motion": "face",
    "ear_signal": "face",
    "eye_ears": "face",
    "eye_aspect_ratio": "face",
    "agreement": "agreement",
    "agreement_across": "agreement",
    "bland_altman": "agreement",
    "icc_3_1": "agreement",
    "icc_3_1_ci": "agreement",
    "CI_METHODS": "agreement",
    "MIN_VIDEOS": "agreement",
    "too_few": "agreement",
    "flatten": "agreement",
    "plot_signal": "output",
    "signal_table": "output",
    "write_json": "output",
    "write_signals": "output",
    "write_overlays": "output",
    "Signal": "signals",
    "resample_uniform": "signals",
    "sampling_rate": "signals",
}

__all__ = ["TASKS", *sorted(_LAZY)]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        sub = _LAZY[name]
        module = importlib.import_module(f"{__name__}.{sub}")
        value = getattr(module, name)
        globals()[name] = value
        if sub in _LAZY:
            # Loading the submodule "agreement" bound it over the function of that name.
            globals()[sub] = getattr(module, sub)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
