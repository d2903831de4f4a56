"""The people the patient is hidden among: gallery folders, the packaged default, donors.

Describing a face costs about 0.3 s an image, so a folder's gallery is cached per process
(keyed by its files' names, times and sizes) and the default gallery's descriptors ship with
the package.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from medswap.errors import DonorError, InputNotFoundError, UsageError
from medswap.evaluate.privacy.recognisers import (
    FaceAnalyser,
    FaceRecord,
    describe_still,
    mean_descriptor,
    read_image,
)
from medswap.models import AUDIT_MODELS

log = logging.getLogger(__name__)

#: Image extensions read from a gallery folder; anything else is skipped and reported.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class GalleryIdentity:
    """One person of the identification gallery: mean descriptors over their images."""

    name: str
    n_images: int
    dlib: np.ndarray
    sface: np.ndarray


@dataclass
class Gallery:
    """The people the patient is hidden among, and what could not be used, with why."""

    source: str
    identities: list[GalleryIdentity] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"path": ..., "reason": ...}

    def names(self) -> list[str]:
        return [i.name for i in self.identities]

    def with_identity(self, identity: GalleryIdentity) -> Gallery:
        """A copy with one more identity (a donor), unless one of that name is there."""
        if identity.name in self.names():
            return self
        return Gallery(self.source, [*self.identities, identity], list(self.skipped))

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "n_identities": len(self.identities),
            "identities": {i.name: i.n_images for i in self.identities},
            "skipped": self.skipped,
        }


def _identity(name: str, records: list[FaceRecord]) -> GalleryIdentity:
    return GalleryIdentity(
        name,
        len(records),
        mean_descriptor("dlib", [r.dlib for r in records]),
        mean_descriptor("sface", [r.sface for r in records]),
    )


_GALLERY_CACHE: dict[tuple, Gallery] = {}


def _folder_key(folder: Path, max_images: int) -> tuple:
    files = tuple(
        (str(p), p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    )
    return str(folder.resolve()), max_images, files


def load_gallery(
    folder: str | Path, analyser: FaceAnalyser | None = None, max_images: int = 5
) -> Gallery:
    """A gallery from a folder of person folders (``DIR/<person>/*.jpg``).

    Files that are not images, images that cannot be decoded and images with no face are
    skipped and listed with the reason; they never stop the audit. At most ``max_images``
    usable images per person are used (each costs a dlib descriptor, about 0.2 s here).
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputNotFoundError("gallery folder does not exist", folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: --gallery must be a folder of person folders")
    key = _folder_key(folder, max_images)
    if key in _GALLERY_CACHE:  # descriptors cost ~0.3 s an image; files unchanged: reuse
        return _GALLERY_CACHE[key]
    analyser = analyser or FaceAnalyser()
    gallery = Gallery(str(folder))
    for person in sorted(folder.iterdir()):
        if not person.is_dir():
            gallery.skipped.append({"path": str(person), "reason": "not a person folder"})
            continue
        records: list[FaceRecord] = []
        for path in sorted(person.iterdir()):
            if len(records) >= max_images:
                break
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                gallery.skipped.append({"path": str(path), "reason": "not an image file"})
                continue
            image = read_image(path)
            if image is None:
                gallery.skipped.append({"path": str(path), "reason": "cannot be read as an image"})
                continue
            record = describe_still(analyser, image)
            if record is None:
                gallery.skipped.append({"path": str(path), "reason": "no face found"})
                continue
            records.append(record)
        if records:
            gallery.identities.append(_identity(person.name, records))
        else:
            gallery.skipped.append({"path": str(person), "reason": "no usable face image"})
    log.info(
        "gallery %s: %d identities, %d skipped",
        folder,
        len(gallery.identities),
        len(gallery.skipped),
    )
    _GALLERY_CACHE[key] = gallery
    return gallery


#: The built-in donors that are real people (the morph is not): the default gallery holds them.
GALLERY_DONORS = ("astronaut", "grace_hopper")


def builtin_donor_images() -> dict[str, np.ndarray]:
    """The built-in donors' faces as the swap draws them (Grace Hopper's glasses' top rim
    painted out): public-domain portraits that ship inside installed packages."""
    from medswap.swap.donors import builtin_image

    return {name: builtin_image(name) for name in GALLERY_DONORS}


#: The default gallery's descriptors, shipped with the package (``scripts/make_gallery.py``):
#: computing them costs about 10 s of CPU, a third of a 20-second clip's whole run.
PACKAGED_GALLERY = Path(__file__).resolve().parents[2] / "data" / "default_gallery.npz"


def audit_model_hashes() -> str:
    """The audit models' hashes a gallery file records: another set makes the file stale."""
    from medswap.models import MODELS

    return ",".join(f"{n}:{MODELS[n].sha256}" for n in AUDIT_MODELS)


def _packaged_gallery() -> Gallery | None:
    """The shipped default gallery, or None when absent or made with other model files."""
    if not PACKAGED_GALLERY.is_file():
        return None
    with np.load(PACKAGED_GALLERY) as data:
        if str(data["models"]) != audit_model_hashes():
            return None
        ids = [
            GalleryIdentity(str(n), int(k), d, f)
            for n, k, d, f in zip(
                data["names"], data["n_images"], data["dlib"], data["sface"], strict=True
            )
        ]
        return Gallery(str(data["source"]), ids, json.loads(str(data["skipped"])))


@cache
def default_gallery(n_lfw: int = 30, packaged: bool = True) -> Gallery:
    """The gallery used without ``--gallery``: built-in donors plus scikit-image's LFW subset.

    ``skimage.data.lfw_subset()`` holds 100 face crops from Labeled Faces in the Wild (25x25,
    grey, no identity labels; the other 100 are non-faces). Each crop counts as one identity,
    though a few people may appear twice, so the chance level is slightly optimistic. Only the
    first ``n_lfw`` crops are used: each costs a dlib descriptor, and the gallery is built once
    per process (cached). With ``packaged`` the descriptors shipped in the package are read
    instead (:data:`PACKAGED_GALLERY`), when they were made with the same model files.
    """
    import skimage.data

    if packaged and n_lfw == 30 and (shipped := _packaged_gallery()) is not None:
        return shipped
    analyser = FaceAnalyser()
    gallery = Gallery("built-in: donors (astronaut, grace_hopper) + skimage lfw_subset")
    for name, image in builtin_donor_images().items():
        record = describe_still(analyser, image)
        if record is None:  # pragma: no cover - the packaged portraits have faces
            gallery.skipped.append({"path": name, "reason": "no face found"})
        else:
            gallery.identities.append(_identity(name, [record]))
    crops = skimage.data.lfw_subset()[:n_lfw]
    for i, crop in enumerate(crops):
        image = (np.clip(crop, 0, 1) * 255).astype(np.uint8)
        record = describe_still(analyser, image)
        if record is None:
            gallery.skipped.append({"path": f"lfw_subset[{i}]", "reason": "no face found"})
        else:
            gallery.identities.append(_identity(f"lfw_subset_{i:03d}", [record]))
    return gallery


def load_donors(donors: Sequence[object] | None, analyser: FaceAnalyser) -> dict[str, FaceRecord]:
    """Donors by name: image paths (named by file stem), built-in names or swap ``Donor``s.

    Accepts what :func:`medswap.pipeline.deidentify` accepts and records (``"average"``,
    ``"astronaut"``, ``"grace_hopper"``, a path), so its result's ``donors`` can be passed on.
    :class:`DonorError` if one is unusable.
    """
    out: dict[str, FaceRecord] = {}
    for d in donors or []:
        name, image, label = _donor_image(d)
        record = packaged_donor(name, image) or describe_still(analyser, image)
        if record is None:
            raise DonorError("no face found in the donor image", label)
        out[name] = record
    return out


def packaged_donor(name: str, image: np.ndarray) -> FaceRecord | None:
    """A built-in donor's descriptors from the shipped gallery, when ``image`` is its face as drawn.

    They are what :func:`describe_still` gives for it (the gallery was made that way, with the
    same model files), without loading dlib's detector and describing the portrait again on
    every run. None for any other image, or when the shipped gallery is absent or stale.
    """
    if name not in GALLERY_DONORS:
        return None
    from medswap.swap.donors import builtin_image

    builtin = builtin_image(name)
    if builtin.shape != image.shape or not np.array_equal(builtin, image):
        return None
    shipped = _packaged_gallery()
    ident = next((i for i in shipped.identities if i.name == name), None) if shipped else None
    if ident is None:
        return None
    return FaceRecord(np.zeros(4), ("packaged",), ident.dlib.copy(), ident.sface.copy())


def _donor_image(d: object) -> tuple[str, np.ndarray, str]:
    if hasattr(d, "image") and hasattr(d, "name"):  # a medswap.swap.donors.Donor
        return str(d.name), np.asarray(d.image), str(d.name)
    path = Path(str(d))
    if not path.exists():
        from medswap.swap.donors import BUILTIN_DONORS, builtin_image

        if str(d) in BUILTIN_DONORS:
            return str(d), builtin_image(str(d)), str(d)
        raise InputNotFoundError("donor image does not exist", path)
    image = read_image(path)
    if image is None:
        raise DonorError("cannot be read as an image", path)
    return path.stem, image, str(path)
