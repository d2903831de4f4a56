"""Compute the default lineup gallery's descriptors and ship them in the package.

    PYTHONPATH=src .venv/bin/python scripts/make_gallery.py

Run again whenever an audit model file changes: the file records the models' hashes, and a
gallery made with other files is ignored (computed afresh at run time, about 10 s of CPU).
Writing the file is a build step, so it lives here and not in ``medswap.evaluate``, which
computes and returns results and writes nothing.
"""

import json
from pathlib import Path

import numpy as np

from medswap.evaluate.privacy import PACKAGED_GALLERY, Gallery, default_gallery
from medswap.evaluate.privacy.gallery import audit_model_hashes
from medswap.outputs import atomic_path


def save_gallery(gallery: Gallery, path: str | Path) -> Path:
    """Write a gallery's descriptors (with the audit models' hashes) for :func:`default_gallery`."""
    with atomic_path(path, "gallery") as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            source=np.array(gallery.source),
            models=np.array(audit_model_hashes()),
            names=np.array(gallery.names()),
            n_images=np.array([i.n_images for i in gallery.identities]),
            dlib=np.stack([i.dlib for i in gallery.identities]),
            sface=np.stack([i.sface for i in gallery.identities]),
            skipped=np.array(json.dumps(gallery.skipped)),
        )
    return Path(path)


if __name__ == "__main__":
    gallery = default_gallery(packaged=False)
    save_gallery(gallery, PACKAGED_GALLERY)
    print(f"{PACKAGED_GALLERY}: {len(gallery.identities)} identities")
