"""Compute the default lineup gallery's descriptors and ship them in the package.

    PYTHONPATH=src .venv/bin/python scripts/make_gallery.py

Run again whenever an audit model file changes: the file records the models' hashes, and a
gallery made with other files is ignored (computed afresh at run time, about 10 s of CPU).
"""

from medswap.evaluate.privacy import PACKAGED_GALLERY, default_gallery, save_gallery

if __name__ == "__main__":
    gallery = default_gallery(packaged=False)
    save_gallery(gallery, PACKAGED_GALLERY)
    print(f"{PACKAGED_GALLERY}: {len(gallery.identities)} identities")
