"""Measure the built-in donors' shut-eye fades and ship their readings in the package.

    PYTHONPATH=src .venv/bin/python scripts/make_donor_fades.py

Run again whenever a built-in portrait, the face mesh's model files or the fade's measurement
changes: the file records the models' hashes and each portrait's image hash, and a fade that
does not match is measured afresh at run time (about a second of CPU before the first face).
``tests/test_eyes.py`` checks that the shipped readings are what the face mesh reads now.
Writing the file is a build step, so it lives here and not in ``medswap.swap``.
"""

from pathlib import Path

import numpy as np

from medswap.outputs import atomic_path
from medswap.swap.donors import (
    BUILTIN_DONORS,
    PACKAGED_FADES,
    builtin_donor,
    donor_fade,
    fade_model_hashes,
)


def save_fades(path: str | Path) -> Path:
    """Read every built-in donor's fade and write them for :func:`packaged_fade`."""
    donors = [builtin_donor(name) for name in BUILTIN_DONORS]
    fades = [donor_fade(d) for d in donors]  # as a run would measure them
    with atomic_path(path, "donor fades") as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            models=np.array(fade_model_hashes()),
            names=np.array([d.name for d in donors]),
            images=np.array([d.image_sha256 for d in donors]),
            readings=np.stack([f.readings for f in fades]),
        )
    return Path(path)


if __name__ == "__main__":
    save_fades(PACKAGED_FADES)
    print(f"{PACKAGED_FADES}: {', '.join(BUILTIN_DONORS)}")
