"""Privacy audit: can the patient still be recognised in a de-identified video?

A de-identified video is only shareable if nobody, human or machine, can tell who the patient
is. This module measures that with face models the swap does not use
(:mod:`medswap.faces.independent`): two detectors (OpenCV-zoo YuNet and dlib's HOG) and two
recognisers (dlib's ResNet descriptor and SFace), each at its published operating point.

Both recognisers are reported as a *distance*, lower meaning more alike, so that one rule
reads for both: "same person" when the distance is below the threshold. dlib's is the
Euclidean distance (same person below 0.6); SFace's is the cosine distance ``1 - cosine``
(same person below ``1 - 0.363 = 0.637``).

The audit answers four questions:

- **Verification**: frame by frame, is the output face judged the same person as the original
  face in the same frame? (``reid_rate`` per recogniser, with the distribution.)
- **Identification**: with the patient enrolled in a gallery of other people, is the patient
  the best (rank-1) or a top-5 match for the output faces? Reported against chance.
- **Leak audit**: every face either detector finds in *any* output frame, also frames where
  the pipeline saw no face, is compared with the patient. Every match is listed.
- **Donor dominance**: how close the output faces are to the donor, so a reader sees the face
  became someone else and not an average blur.

The work is one streaming pass over both videos; everything after it is pure numpy over the
descriptors collected, so the judgement can be re-run without re-detecting.
"""

from __future__ import annotations

import html
import json
import logging
import math
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from medswap.errors import (
    AlignmentError,
    DonorError,
    InputNotFoundError,
    OutputError,
    PrivacyError,
    UsageError,
)
from medswap.faces.independent import (
    DLIB_SAME_PERSON_DISTANCE,
    SFACE_SAME_PERSON_COSINE,
    DlibFaces,
    IndependentFace,
    SFaceRecogniser,
    five_points_from_68,
)
from medswap.faces.independent import (
    overlap_of_smaller as overlap,
)
from medswap.models import AUDIT_MODELS
from medswap.models import require as require_models
from medswap.video import Frame, VideoInfo, count_frames, probe, read_frames

log = logging.getLogger(__name__)

#: The recognisers, and the distance below which each judges two faces the same person.
RECOGNISERS = ("dlib", "sface")
THRESHOLDS: dict[str, float] = {
    "dlib": DLIB_SAME_PERSON_DISTANCE,
    "sface": 1.0 - SFACE_SAME_PERSON_COSINE,
}
METRICS = {"dlib": "euclidean distance", "sface": "cosine distance (1 - cosine)"}
#: Histogram edges of the reported distance distributions (values outside are clipped in).
HIST_EDGES = {
    "dlib": np.round(np.linspace(0.0, 1.2, 13), 3),
    "sface": np.round(np.linspace(0.0, 1.4, 15), 3),
}
#: When dlib is not run on every frame (``stride`` > 1), an output face off the stride grid
#: still gets dlib's descriptor if SFace finds it this close to the patient: well above
#: SFace's own threshold, so that a face only dlib would recognise is rarely skipped.
SFACE_SUSPECT_DISTANCE = 0.8
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


#: Image extensions read from a gallery folder; anything else is skipped and reported.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


# --------------------------------------------------------------------------------------------
# Faces and descriptors
# --------------------------------------------------------------------------------------------


@dataclass
class FaceRecord:
    """One face found by the independent detectors, with both recognisers' descriptors."""

    box: np.ndarray  # (4,) x0, y0, x1, y1 in pixels of the upright frame
    detectors: tuple[str, ...]  # which detectors found it: "yunet", "hog"
    dlib: np.ndarray | None = None  # (128,) or None when not computed
    sface: np.ndarray | None = None  # (128,) L2-normalised


def merge_detections(
    yunet: list[IndependentFace], hog: list[IndependentFace], min_overlap: float = 0.5
) -> list[tuple[IndependentFace | None, IndependentFace | None]]:
    """Pair the faces two detectors found; a face found by one only is kept on its own."""
    pairs: list[tuple[IndependentFace | None, IndependentFace | None]] = []
    used: set[int] = set()
    for y in yunet:
        best, best_j = min_overlap, None
        for j, h in enumerate(hog):
            if j not in used and (o := overlap(y.box, h.box)) >= best:
                best, best_j = o, j
        if best_j is not None:
            used.add(best_j)
        pairs.append((y, None if best_j is None else hog[best_j]))
    pairs.extend((None, h) for j, h in enumerate(hog) if j not in used)
    return pairs


def _hog_like_box(face: IndependentFace) -> np.ndarray:
    """A dlib-style square box (brows to chin, centred on the nose) from a YuNet face.

    dlib's shape predictor was trained on HOG boxes; YuNet's taller box shifts its landmarks.
    """
    pts = face.landmarks
    cx, cy = pts[:, 0].mean(), pts[:, 1].mean()
    side = 0.95 * (face.box[2] - face.box[0])
    return np.array([cx - side / 2, cy - side / 2.2, cx + side / 2, cy + side / 1.8])


class FaceAnalyser:
    """Both independent detectors and both recognisers, loaded lazily, over RGB images."""

    def __init__(self, hog_upsample: int = 0) -> None:
        self.hog_upsample = hog_upsample
        self.dlib = DlibFaces(upsample=hog_upsample)
        self.sface = SFaceRecogniser()

    def detect(
        self, image: np.ndarray, hog: bool = True, upsample: int | None = None
    ) -> list[tuple[IndependentFace | None, IndependentFace | None]]:
        """YuNet and (optionally) HOG faces, paired, largest first."""
        yunet = self.sface.detect(image)
        found = self.dlib.detect(image, upsample) if hog else []
        pairs = merge_detections(yunet, found)
        pairs.sort(key=lambda p: -_area(_box_of(p)))
        return pairs

    def describe(
        self,
        image: np.ndarray,
        pair: tuple[IndependentFace | None, IndependentFace | None],
        want_dlib: bool = True,
    ) -> FaceRecord:
        """Descriptors of one detected face; each recogniser uses whichever detector found it."""
        y, h = pair
        detectors = tuple(n for n, f in (("yunet", y), ("hog", h)) if f is not None)
        if y is not None:
            sface = self.sface.descriptor(image, y)
        else:
            five = IndependentFace(h.box, h.score, five_points_from_68(h.landmarks))
            sface = self.sface.descriptor(image, five)
        dlib_desc = self.dlib.descriptor(image, _dlib_face(pair)) if want_dlib else None
        return FaceRecord(_box_of(pair), detectors, dlib_desc, sface)

    def add_dlib(self, image: np.ndarray, record: FaceRecord, pair) -> None:
        """Compute the dlib descriptor of a face described earlier without it."""
        record.dlib = self.dlib.descriptor(image, _dlib_face(pair))


def _dlib_face(pair) -> IndependentFace:
    """The box dlib's descriptor aligns from: YuNet's (made dlib-like) when YuNet found the face.

    The original's faces come from YuNet alone (HOG there would only add cost), so taking the
    output's box the same way means an unchanged face gets exactly the same descriptor.
    """
    y, h = pair
    return IndependentFace(_hog_like_box(y), y.score) if y is not None else h


def _box_of(pair) -> np.ndarray:
    y, h = pair
    return np.asarray((y if y is not None else h).box, dtype=np.float64)


def _area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def distance(recogniser: str, a: np.ndarray, b: np.ndarray) -> float:
    """The recogniser's distance between two descriptors (lower = more alike)."""
    if recogniser == "dlib":
        return float(np.linalg.norm(a - b))
    return float(1.0 - np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def same_person(recogniser: str, dist: float) -> bool:
    """The recogniser's published decision rule."""
    return dist < THRESHOLDS[recogniser]


def mean_descriptor(recogniser: str, descs: Sequence[np.ndarray]) -> np.ndarray:
    """Enrolment template: the mean descriptor (re-normalised for SFace's cosine)."""
    m = np.mean(np.stack(descs), axis=0)
    return m / (np.linalg.norm(m) + 1e-12) if recogniser == "sface" else m


def prepare_still(image: np.ndarray, min_side: int = 300) -> np.ndarray:
    """Enlarge a small still (gallery crop, donor thumbnail) so both detectors find its face.

    HOG needs faces of about 80 px and YuNet loses faces that fill a small image edge to edge,
    so small images are scaled up and padded with their own border.
    """
    if image.ndim == 2:
        image = np.dstack([image] * 3)
    h, w = image.shape[:2]
    if max(h, w) >= min_side:
        return np.ascontiguousarray(image[..., :3])
    scale = min_side / max(h, w)
    big = cv2.resize(
        image[..., :3], (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC
    )
    pad = min_side // 4
    return cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)


def describe_still(analyser: FaceAnalyser, image: np.ndarray) -> FaceRecord | None:
    """The largest face of a still image with both descriptors, or None when none is found."""
    image = prepare_still(image)
    pairs = analyser.detect(image, upsample=1)
    return analyser.describe(image, pairs[0]) if pairs else None


def read_image(path: Path) -> np.ndarray | None:
    """An image file as RGB uint8, or None when it is not a readable image."""
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else np.zeros(0, np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------------------------
# Gallery of other identities
# --------------------------------------------------------------------------------------------


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


def builtin_donor_images() -> dict[str, np.ndarray]:
    """The public-domain portraits that ship inside installed packages (the default donors)."""
    import matplotlib.cbook
    import skimage.data

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = read_image(Path(fh.name))
    return {"astronaut": skimage.data.astronaut(), "grace_hopper": hopper}


#: The default gallery's descriptors, shipped with the package (``scripts/make_gallery.py``):
#: computing them costs about 10 s of CPU, a third of a 20-second clip's whole run.
PACKAGED_GALLERY = Path(__file__).resolve().parents[1] / "data" / "default_gallery.npz"


def _audit_model_hashes() -> str:
    from medswap.models import MODELS

    return ",".join(f"{n}:{MODELS[n].sha256}" for n in AUDIT_MODELS)


def save_gallery(gallery: Gallery, path: str | Path) -> Path:
    """Write a gallery's descriptors (with the audit models' hashes) for :func:`default_gallery`."""
    from medswap.outputs import atomic_path

    with atomic_path(path, "gallery") as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            source=np.array(gallery.source),
            models=np.array(_audit_model_hashes()),
            names=np.array(gallery.names()),
            n_images=np.array([i.n_images for i in gallery.identities]),
            dlib=np.stack([i.dlib for i in gallery.identities]),
            sface=np.stack([i.sface for i in gallery.identities]),
            skipped=np.array(json.dumps(gallery.skipped)),
        )
    return Path(path)


def _packaged_gallery() -> Gallery | None:
    """The shipped default gallery, or None when absent or made with other model files."""
    if not PACKAGED_GALLERY.is_file():
        return None
    with np.load(PACKAGED_GALLERY) as data:
        if str(data["models"]) != _audit_model_hashes():
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


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------


@dataclass
class LeakHit:
    """One output face that a recogniser judges to be the patient."""

    frame_index: int
    time_s: float
    box: list[float]
    recogniser: str
    distance: float
    reference: str  # "enrolled" (the patient's template) or "same_frame" (original face)
    detectors: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "frame_index": self.frame_index,
            "time_s": round(self.time_s, 4),
            "box": [round(v, 1) for v in self.box],
            "recogniser": self.recogniser,
            "distance": round(self.distance, 4),
            "threshold": round(THRESHOLDS[self.recogniser], 4),
            "reference": self.reference,
            "detectors": list(self.detectors),
        }


def distribution(recogniser: str, values: Sequence[float]) -> dict:
    """Min, percentiles, median, max and a fixed-edge histogram of distances."""
    v = np.asarray(values, dtype=np.float64)
    edges = HIST_EDGES[recogniser]
    if v.size == 0:
        return {"n": 0}
    counts, _ = np.histogram(np.clip(v, edges[0], edges[-1]), bins=edges)
    return {
        "n": int(v.size),
        "min": round(float(v.min()), 4),
        "p5": round(float(np.percentile(v, 5)), 4),
        "median": round(float(np.median(v)), 4),
        "p95": round(float(np.percentile(v, 95)), 4),
        "max": round(float(v.max()), 4),
        "histogram": {"edges": [float(e) for e in edges], "counts": counts.tolist()},
    }


@dataclass
class AuditResult:
    """Everything the audit found; ``to_json()`` is the AUDIT.json a user keeps."""

    original: str
    deidentified: str
    frames: int
    stride: int
    frames_with_original_face: int
    nothing_to_protect: bool
    verification: dict = field(default_factory=dict)  # recogniser -> rates, distribution
    frames_no_face_in_output: list[int] = field(default_factory=list)
    identification: dict = field(default_factory=dict)
    leaks: list[LeakHit] = field(default_factory=list)
    donors: dict = field(default_factory=dict)
    enrolment: dict = field(default_factory=dict)
    gallery: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def leak_frames(self) -> list[int]:
        """Output frames in which any recogniser recognises the patient, in order."""
        return sorted({h.frame_index for h in self.leaks})

    @property
    def safe(self) -> bool:
        """No output frame shows the patient's identity to either recogniser."""
        return not self.leaks

    def reid_rate(self, recogniser: str) -> float | None:
        return self.verification.get(recogniser, {}).get("reid_rate")

    def lineup(self) -> dict:
        """The headline lineup figure: rank-1 of the patient among the gallery, both recognisers.

        Without the donor when the gallery holds one (an attacker's list of candidate patients
        does not hold the donor), else the plain rank-1 rate. ``passed`` is the release bar:
        every recogniser's rate at or below ``bound`` (:func:`rank1_bound`), or not
        significantly above chance on so few frames (:func:`rank1_passes`).
        """
        ident = self.identification or {}
        recs = ident.get("recognisers") or {}
        if not recs:
            return {}
        without = "chance_rank1_without_donors" in ident
        key = "rank1_rate_without_donors" if without else "rank1_rate"
        chance = ident["chance_rank1_without_donors" if without else "chance_rank1"]
        rates = {r: v.get(key) for r, v in recs.items()}
        probes = {r: v.get("n_probes", 0) for r, v in recs.items()}
        bound = rank1_bound(chance)
        return {
            "rank1": rates,
            "without_donor": without,
            "chance": chance,
            "n_identities": round(1 / chance),  # the lineup's people, the patient included
            "bound": round(bound, 4),
            "n_probes": probes,
            "passed": all(rank1_passes(v, probes[r], chance) for r, v in rates.items()),
        }

    @property
    def clean(self) -> bool:
        """What the release gate asks: no leak frame, and the lineup at or below its bound."""
        return self.safe and (self.nothing_to_protect or self.lineup().get("passed", True))

    def failure_message(self) -> str:
        """The one line a failed ``--strict`` audit or release gate reports."""
        if self.leaks:
            return self.leak_message()
        lu = self.lineup()
        worst = max((r for r in lu["rank1"] if lu["rank1"][r] is not None), key=lu["rank1"].get)
        return (
            f"the patient is nearest of {lu['n_identities']} identities"
            + (" (without the donor)" if lu["without_donor"] else "")
            + f" in {_pct(lu['rank1'][worst])} of frames ({worst}; chance {_pct(lu['chance'])}, "
            f"bound {_pct(lu['bound'])})"
        )

    def leak_message(self) -> str:
        """The one line ``--strict`` fails with."""
        frames = self.leak_frames
        n = len(frames)
        verb = "frame shows" if n == 1 else "frames show"
        return f"{n} {verb} the original identity (first at frame {frames[0]})"

    def summary(self) -> str:
        """One line for the terminal."""
        name = Path(self.deidentified).name
        if self.nothing_to_protect:
            return (
                f"{name}: no face found in the original ({self.frames} frames): nothing to protect"
            )
        parts = []
        lu = self.lineup()
        if lu:
            rates = ", ".join(f"{r} {_pct(v)}" for r, v in lu["rank1"].items())
            parts.append(
                f"lineup rank-1{' without the donor' if lu['without_donor'] else ''} {rates} "
                f"(chance {_pct(lu['chance'])}, {lu['n_identities']} identities, "
                f"bound {_pct(lu['bound'])}: {'passed' if lu['passed'] else 'FAILED'})"
            )
        parts += [
            f"{len(self.leak_frames)} of {self.frames} frames show the original identity"
            if self.leaks
            else f"no frame of {self.frames} shows the original identity",
            "re-id " + ", ".join(f"{r} {_pct(self.reid_rate(r))}" for r in RECOGNISERS),
        ]
        ident = self.identification
        if ident.get("recognisers"):
            recs = ident["recognisers"].items()
            r1 = ", ".join(f"{r} {_pct(v['rank1_rate'])}" for r, v in recs)
            named = ", ".join(f"{r} {_pct(v['rank1_within_threshold_rate'])}" for r, v in recs)
            parts.append(
                f"rank-1 {r1} (chance {_pct(ident['chance_rank1'])}, "
                f"{ident['n_identities']} identities; within threshold {named})"
            )
        if self.frames_no_face_in_output:
            parts.append(
                f"no face in the output in {len(self.frames_no_face_in_output)} of "
                f"{self.frames_with_original_face} frames"
            )
        return f"{name}: " + "; ".join(parts)

    def to_json(self) -> dict:
        return {
            # File names only: the original's name may be the patient's, and paths as typed
            # say where a hospital keeps its data.
            "deidentified": Path(self.deidentified).name,
            "summary": self.summary(),
            "lineup": self.lineup(),
            "safe": self.safe,
            "clean": self.clean,
            "nothing_to_protect": self.nothing_to_protect,
            "frames": self.frames,
            "stride": self.stride,
            "frames_with_original_face": self.frames_with_original_face,
            "thresholds": {
                r: {"same_person_below": round(THRESHOLDS[r], 4), "metric": METRICS[r]}
                for r in RECOGNISERS
            },
            "verification": self.verification,
            "frames_no_face_in_output": self.frames_no_face_in_output,
            "identification": self.identification,
            "leaks": {
                "frames": self.leak_frames,
                "n_frames": len(self.leak_frames),
                "hits": [h.to_json() for h in self.leaks],
            },
            "donors": self.donors,
            "enrolment": self.enrolment,
            "gallery": self.gallery,
            "models": _model_names(),
            "seconds": round(self.seconds, 2),
        }


def _pct(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


def _model_names() -> dict:
    from medswap.models import MODELS

    return {
        n: {
            "package": f"{MODELS[n].package}=={MODELS[n].package_version}",
            **({"origin": MODELS[n].origin} if MODELS[n].origin else {}),
            "sha256": MODELS[n].sha256,
        }
        for n in AUDIT_MODELS
    }


# --------------------------------------------------------------------------------------------
# The pass over both videos
# --------------------------------------------------------------------------------------------


@dataclass
class FrameScan:
    """What one frame pair showed: the patient's face in the original, every output face."""

    index: int
    time_s: float
    on_grid: bool  # on the stride grid: dlib ran on the original and on every output face
    original: FaceRecord | None
    outputs: list[FaceRecord]


def check_alignment(orig: VideoInfo, out: VideoInfo, max_frames: int | None = None) -> None:
    """Refuse an output that cannot be a frame-by-frame copy of the original.

    With ``max_frames`` the output may be a copy of the original's first ``max_frames`` frames
    (as ``deidentify(..., max_frames=N)`` writes).
    """
    if orig.display_size != out.display_size:
        ow, oh = orig.display_size
        dw, dh = out.display_size
        raise AlignmentError(
            f"frames are {dw}x{dh} but the original {Path(orig.path).name} has {ow}x{oh}: "
            "not derived from it",
            out.path,
        )
    expected = orig.n_frames
    if expected and max_frames is not None and out.n_frames and out.n_frames < expected:
        expected = min(expected, max_frames)
    if expected and out.n_frames and expected != out.n_frames:
        raise AlignmentError(
            f"has {out.n_frames} frames but the original {Path(orig.path).name} has "
            f"{expected}: not derived from it",
            out.path,
        )


def paired_frames(
    orig: VideoInfo, out: VideoInfo, max_frames: int | None = None
) -> Iterator[tuple[Frame, Frame]]:
    """Both videos frame by frame; :class:`AlignmentError` if one ends before the other."""
    a_it = read_frames(orig.path, orig, max_frames=max_frames)
    b_it = read_frames(out.path, out, max_frames=max_frames)
    n = 0
    while True:
        a, b = next(a_it, None), next(b_it, None)
        if a is None and b is None:
            return
        if a is None or b is None:
            rest = sum(1 for _ in (b_it if a is None else a_it)) + 1
            n_a, n_b = (n, n + rest) if a is None else (n + rest, n)
            raise AlignmentError(
                f"has {n_b} frames but the original {Path(orig.path).name} has {n_a}: "
                "not derived from it",
                out.path,
            )
        yield a, b
        n += 1


def _patient_face(
    analyser: FaceAnalyser, image: np.ndarray, want_dlib: bool = True
) -> FaceRecord | None:
    """The patient's face in an original frame: YuNet's most confident (HOG's largest if none).

    Not YuNet's largest: a hand raised toward the camera can be taken for a large, low-score
    face (hand_open_close.mp4, frame 24: a 191x384 px box). The output's hand is the
    patient's own, untouched, so it "matched" that original "face" and was listed as a leak.
    """
    pairs = analyser.detect(image, hog=False)
    if pairs:
        best = max(pairs, key=lambda p: p[0].score if p[0] is not None else -1.0)
        return analyser.describe(image, best, want_dlib)
    pairs = analyser.detect(image, hog=True)
    return analyser.describe(image, pairs[0], want_dlib) if pairs else None


def enrol(
    analyser: FaceAnalyser, info: VideoInfo, n_frames: int, k: int, stride: int
) -> dict[int, FaceRecord]:
    """The patient's face in ``k`` frames spread over the clip (on the stride grid)."""
    grid = np.arange(0, n_frames, stride)
    if grid.size == 0:
        return {}
    want = set(
        np.unique(
            grid[np.linspace(0, grid.size - 1, min(k, grid.size)).round().astype(int)]
        ).tolist()
    )
    found: dict[int, FaceRecord] = {}
    for frame in read_frames(info.path, info, max_frames=max(want) + 1):
        if frame.index in want:
            record = _patient_face(analyser, frame.image)
            if record is not None:
                found[frame.index] = record
    return found


def scan(
    analyser: FaceAnalyser,
    orig: VideoInfo,
    out: VideoInfo,
    template: dict[str, np.ndarray] | None,
    stride: int = 1,
    max_frames: int | None = None,
    known: dict[int, FaceRecord] | None = None,
    start: int = 0,
    stop: int | None = None,
    grid_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
    total: int = 0,
) -> list[FrameScan]:
    """One pass over both videos: the patient's face and every output face, every frame.

    Only frames ``start <= index < stop`` are analysed (the others are decoded and skipped),
    so that worker processes can share a clip; the chunk that runs to the end also checks
    that both videos end together.

    Detection (YuNet and HOG) and SFace run on every frame. dlib's descriptor, about ten times
    dearer, runs on every ``stride``-th frame; off that grid it runs only for output faces that
    SFace already finds near the patient (:data:`SFACE_SUSPECT_DISTANCE`), or for every face
    while there is no template. ``grid_only`` skips the frames off the stride grid entirely
    (a sample, for sweeps: no leak scan between grid frames). ``progress(done, total)`` is
    called after each frame (``total`` 0 when unknown).
    """
    known = known or {}
    scans = []
    t0 = time.perf_counter()
    for a, b in paired_frames(orig, out, max_frames):
        if a.index < start:
            continue
        if stop is not None and a.index >= stop:
            break
        on_grid = a.index % stride == 0
        if grid_only and not on_grid:
            continue
        if a.index in known:  # a face (or None: no face) found by an earlier pass
            original = known[a.index]
        else:
            original = _patient_face(analyser, a.image, want_dlib=on_grid)
        outputs = []
        for pair in analyser.detect(b.image):
            want_dlib = on_grid or template is None
            record = analyser.describe(b.image, pair, want_dlib=want_dlib)
            if not want_dlib and (
                distance("sface", record.sface, template["sface"]) < SFACE_SUSPECT_DISTANCE
            ):
                analyser.add_dlib(b.image, record, pair)
            outputs.append(record)
        scans.append(FrameScan(a.index, a.time_s, on_grid, original, outputs))
        done = a.index + 1 - start
        if progress is not None:
            progress(done, total)
        if done % 50 == 0:
            log.info("audit: frame %d, %.1f fps", a.index, done / (time.perf_counter() - t0))
    return scans


def _scan_chunk(args: tuple) -> list[FrameScan]:
    """Worker-process entry: a fresh analyser scans one contiguous range of frames."""
    orig_path, out_path, template, stride, max_frames, known, start, stop = args
    orig, out = probe(orig_path), probe(out_path)
    return scan(FaceAnalyser(), orig, out, template, stride, max_frames, known, start, stop)


def scan_parallel(
    orig: VideoInfo,
    out: VideoInfo,
    template: dict[str, np.ndarray] | None,
    n_frames: int,
    workers: int,
    stride: int = 1,
    max_frames: int | None = None,
    known: dict[int, FaceRecord] | None = None,
) -> list[FrameScan]:
    """:func:`scan` split into contiguous chunks over worker processes.

    dlib's descriptor runs on one core and dominates the audit, so two processes on two cores
    nearly halve the wall time. Processes are spawned (not forked), because a fork would copy
    OpenCV's and the decoder's threads in an unusable state.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    bounds = np.linspace(0, n_frames, workers + 1).round().astype(int)
    jobs = []
    for i in range(workers):
        start, stop = int(bounds[i]), int(bounds[i + 1])
        last = i == workers - 1
        chunk_known = {k: v for k, v in (known or {}).items() if start <= k < stop}
        jobs.append(
            (
                orig.path,
                out.path,
                template,
                stride,
                max_frames,
                chunk_known,
                start,
                None if last else stop,
            )
        )
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        parts = list(pool.map(_scan_chunk, jobs))
    return [s for part in parts for s in part]


# --------------------------------------------------------------------------------------------
# Judging the descriptors (pure)
# --------------------------------------------------------------------------------------------


def matched_output(scan_: FrameScan, min_overlap: float = 0.3) -> FaceRecord | None:
    """The output face in the place of the patient's original face (the swap keeps geometry)."""
    if scan_.original is None:
        return None
    best, best_face = min_overlap, None
    for face in scan_.outputs:
        if (o := overlap(scan_.original.box, face.box)) >= best:
            best, best_face = o, face
    return best_face


def leaks_in(scan_: FrameScan, template: dict[str, np.ndarray]) -> list[LeakHit]:
    """The output faces of one frame that either recogniser judges to be the patient.

    Each face is compared with the enrolled template and with the original face of the same
    frame; the closer of the two is reported. Pure, so that the in-stream gate judges one
    frame with exactly the rule the after-the-fact audit applies to all of them.
    """
    hits = []
    for face in scan_.outputs:
        for r in RECOGNISERS:
            desc = getattr(face, r)
            if desc is None:
                continue
            refs = [("enrolled", template[r])]
            orig = scan_.original
            same = None if orig is None else getattr(orig, r)
            # The stream puts the template in where it did not describe the original face.
            if same is not None and same is not template[r]:
                refs.append(("same_frame", same))
            d, ref = min((distance(r, desc, v), name) for name, v in refs)
            if same_person(r, d):
                hits.append(
                    LeakHit(scan_.index, scan_.time_s, face.box.tolist(), r, d, ref, face.detectors)
                )
    return hits


def find_leaks(scans: Sequence[FrameScan], template: dict[str, np.ndarray]) -> list[LeakHit]:
    """Every output face of every frame that either recogniser judges to be the patient."""
    return [h for s in scans for h in leaks_in(s, template)]


def _median_of_counts(counts: Counter) -> float:
    """The median of values held as a Counter (value -> count), as ``np.median`` gives it."""
    values = sorted(counts)
    n = sum(counts.values())
    cum, lo, hi = 0, None, None
    for v in values:
        cum += counts[v]
        if lo is None and cum >= (n + 1) // 2:
            lo = v
        if cum >= n // 2 + 1:
            hi = v
            break
    return float((lo + hi) / 2) if n % 2 == 0 else float(lo)


class Judge:
    """The audit's verdict built frame by frame, in memory that does not grow with length.

    Each :class:`FrameScan` is judged once and dropped: what is kept is a leak list (only the
    hits), one float per frame and recogniser for the distance distributions, and counts for
    the lineup. :func:`verify`, :func:`find_leaks`, :func:`identify` and
    :func:`donor_dominance` are this class over a list of scans, so the after-the-fact audit
    (``medswap audit``) and the in-stream audit of ``deidentify`` judge with the same code.
    ``template`` may change between frames (the stream enrols as frames pass); each frame is
    judged against the template of its time.
    """

    def __init__(
        self,
        template: dict[str, np.ndarray] | None = None,
        gallery: Gallery | None = None,
        donors: Mapping[str, FaceRecord] | None = None,
        donor_names: Sequence[str] = (),
    ) -> None:
        self.template = template
        self.gallery = gallery
        self.donors = dict(donors or {})
        self.donor_names = tuple(donor_names)
        self.frames = 0
        self.frames_with_original_face = 0
        self.leaks: list[LeakHit] = []
        self.no_face: array = array("q")
        self._dists = {r: array("d") for r in RECOGNISERS}
        self._checked = dict.fromkeys(RECOGNISERS, 0)
        self._ranks = {r: Counter() for r in RECOGNISERS}
        self._ranks_nd = {r: Counter() for r in RECOGNISERS}
        self._named = dict.fromkeys(RECOGNISERS, 0)
        self._top = {r: Counter() for r in RECOGNISERS}
        self._donor = {(n, r): (array("d"), array("d")) for n in self.donors for r in RECOGNISERS}
        self.n_probes = 0
        self._not_donor = np.zeros(0, dtype=bool)
        if gallery is not None:
            donor_set = set(self.donor_names)
            self._not_donor = np.array([g.name not in donor_set for g in gallery.identities])
            self._gallery = {
                r: np.stack([getattr(g, r) for g in gallery.identities])
                if gallery.identities
                else np.zeros((0, 128))
                for r in RECOGNISERS
            }

    @property
    def without_donors(self) -> bool:
        """A lineup without the donor exists: donors were named and others remain."""
        return bool(self.donor_names) and bool(np.any(self._not_donor))

    def rank_of_patient(self, recogniser: str, desc: np.ndarray) -> tuple[int, int, float, int]:
        """Rank of the patient among the gallery (and among non-donors), the patient's
        distance, and the index of the nearest gallery identity."""
        d_patient = distance(recogniser, desc, self.template[recogniser])
        d_gallery = np.array(
            [distance(recogniser, desc, g) for g in self._gallery[recogniser]], dtype=float
        )
        closer = d_gallery < d_patient
        rank = 1 + int(closer.sum())
        rank_nd = 1 + int((closer & self._not_donor).sum())
        return rank, rank_nd, d_patient, int(np.argmin(d_gallery))

    def add(self, scan_: FrameScan, leaks: list[LeakHit] | None = None) -> None:
        """Judge one frame (``leaks`` when the caller already found them with this template)."""
        self.frames += 1
        if self.template is not None:  # also frames with no face in the original
            self.leaks.extend(leaks if leaks is not None else leaks_in(scan_, self.template))
        if scan_.original is None:
            return
        self.frames_with_original_face += 1
        face = matched_output(scan_)
        for r in RECOGNISERS:
            self._checked[r] += getattr(scan_.original, r) is not None
        if face is None:
            self.no_face.append(scan_.index)
            return
        for r in RECOGNISERS:
            a, b = getattr(scan_.original, r), getattr(face, r)
            if a is not None and b is not None:
                self._dists[r].append(distance(r, a, b))
        if self.template is None:
            return
        self.n_probes += 1
        for r in RECOGNISERS:
            desc = getattr(face, r)
            if desc is None:
                continue
            for name, donor in self.donors.items():
                to_donor, to_patient = self._donor[(name, r)]
                to_donor.append(distance(r, desc, getattr(donor, r)))
                to_patient.append(distance(r, desc, self.template[r]))
            if self.gallery is None or not self.gallery.identities:
                continue
            rank, rank_nd, d_patient, best = self.rank_of_patient(r, desc)
            self._ranks[r][rank] += 1
            self._ranks_nd[r][rank_nd] += 1
            self._named[r] += rank == 1 and same_person(r, d_patient)
            d_best = distance(r, desc, self._gallery[r][best])
            self._top[r][
                "(patient)" if d_patient <= d_best else self.gallery.identities[best].name
            ] += 1

    def verification(self) -> tuple[dict, list[int]]:
        """Per-frame original-vs-output distances: rates, distributions, frames with no face."""
        out = {}
        for r in RECOGNISERS:
            dists = self._dists[r]
            same = sum(same_person(r, d) for d in dists)
            n = self._checked[r]
            out[r] = {
                "frames_checked": n,
                "frames_compared": len(dists),
                "frames_reidentified": int(same),
                # A face not found in the output is not a re-identification: it counts as hidden.
                "reid_rate": round(same / n, 4) if n else None,
                "reid_rate_where_face_found": round(same / len(dists), 4) if dists else None,
                "distance": distribution(r, dists),
            }
        return out, list(self.no_face)

    def identification(self) -> dict:
        """Rank-1 and rank-5 rates of the patient among the gallery; see :func:`identify`."""
        gallery = self.gallery or Gallery("none")
        n_id = len(gallery.identities) + 1  # the gallery plus the enrolled patient
        result = {
            "n_identities": n_id,
            "n_probes": self.n_probes,
            "chance_rank1": round(1 / n_id, 4),
            "chance_rank5": round(min(5, n_id) / n_id, 4),
            "recognisers": {},
        }
        if not gallery.identities or not self.n_probes:
            result["note"] = (
                "no gallery identity could be used"
                if not gallery.identities
                else "no output face to identify"
            )
            return result
        if self.without_donors:
            result["chance_rank1_without_donors"] = round(1 / (int(self._not_donor.sum()) + 1), 4)
        for r in RECOGNISERS:
            ranks = self._ranks[r]
            n = sum(ranks.values())
            if not n:
                continue
            result["recognisers"][r] = {
                "n_probes": n,
                "rank1_rate": round(ranks[1] / n, 4),
                "rank5_rate": round(sum(c for k, c in ranks.items() if k <= 5) / n, 4),
                "rank1_within_threshold_rate": round(self._named[r] / n, 4),
                "median_patient_rank": _median_of_counts(ranks),
                "top1_identities": dict(self._top[r].most_common(5)),
            }
            if "chance_rank1_without_donors" in result:
                result["recognisers"][r]["rank1_rate_without_donors"] = round(
                    self._ranks_nd[r][1] / n, 4
                )
        return result

    def donor_dominance(self) -> dict:
        """How close the output faces are to each donor, and how often closer than to the
        patient."""
        out = {}
        for name in self.donors:
            per = {}
            for r in RECOGNISERS:
                to_donor, to_patient = (np.asarray(a) for a in self._donor[(name, r)])
                if not to_donor.size:
                    continue
                per[r] = {
                    "median_distance_to_donor": round(float(np.median(to_donor)), 4),
                    "median_distance_to_patient": round(float(np.median(to_patient)), 4),
                    "same_as_donor_rate": round(float(np.mean(to_donor < THRESHOLDS[r])), 4),
                    "closer_to_donor_rate": round(float(np.mean(to_donor < to_patient)), 4),
                }
            out[name] = per
        return out


def verify(scans: Sequence[FrameScan]) -> tuple[dict, list[int]]:
    """Per-frame original-vs-output distances: rates, distributions, frames with no face."""
    judge = Judge()
    for s in scans:
        judge.add(s)
    return judge.verification()


def identify(
    scans: Sequence[FrameScan],
    template: dict[str, np.ndarray],
    gallery: Gallery,
    donor_names: Sequence[str] = (),
) -> dict:
    """Rank-1 and rank-5 rates of the patient among gallery identities, for the output faces.

    Closed-set ranks say who is *nearest*, however far: a swapped face that is far from
    everyone is still nearest to someone, and on the shared clips that is often the patient
    (outline, hair and head shape are kept). ``rank1_within_threshold_rate`` is the open-set
    rate: the patient nearest *and* within the recogniser's same-person threshold, the
    identification an operator would act on.

    With the donor in the gallery the swapped face is nearest to the donor, which makes the
    patient's rank-1 rate look safe by construction. An attacker's short list of candidate
    patients does not contain the donor, so ``rank1_rate_without_donors`` ranks the patient
    among the gallery identities not named in ``donor_names``, against its own chance rate:
    the audit's headline lineup figure.
    """
    judge = Judge(template, gallery, donor_names=donor_names)
    for s in scans:
        judge.add(s, leaks=[])
    return judge.identification()


def donor_dominance(
    scans: Sequence[FrameScan],
    template: dict[str, np.ndarray],
    donors: Mapping[str, FaceRecord],
) -> dict:
    """How close the output faces are to each donor, and how often closer than to the patient."""
    judge = Judge(template, None, donors)
    for s in scans:
        judge.add(s, leaks=[])
    return judge.donor_dominance()


# --------------------------------------------------------------------------------------------
# The public entry point
# --------------------------------------------------------------------------------------------


def load_donors(donors: Sequence[object] | None, analyser: FaceAnalyser) -> dict[str, FaceRecord]:
    """Donors by name: image paths (named by file stem), built-in names or swap ``Donor``s.

    Accepts what :func:`medswap.pipeline.deidentify` accepts and records (``"average"``,
    ``"astronaut"``, ``"grace_hopper"``, a path), so its result's ``donors`` can be passed on.
    :class:`DonorError` if one is unusable.
    """
    out: dict[str, FaceRecord] = {}
    for d in donors or []:
        name, image, label = _donor_image(d)
        record = describe_still(analyser, image)
        if record is None:
            raise DonorError("no face found in the donor image", label)
        out[name] = record
    return out


def _donor_image(d: object) -> tuple[str, np.ndarray, str]:
    if hasattr(d, "image") and hasattr(d, "name"):  # a medswap.swap.donors.Donor
        return str(d.name), np.asarray(d.image), str(d.name)
    path = Path(str(d))
    if not path.exists():
        from medswap.swap.donors import BUILTIN_DONORS, builtin_donor

        if str(d) in BUILTIN_DONORS:
            return str(d), builtin_donor(str(d)).image, str(d)
        raise InputNotFoundError("donor image does not exist", path)
    image = read_image(path)
    if image is None:
        raise DonorError("cannot be read as an image", path)
    return path.stem, image, str(path)


@dataclass
class OriginalFaces:
    """The patient's face in every frame of an original, and the enrolment: computed once.

    A sweep audits many outputs of one original; with this, each audit analyses only the
    output's frames. Valid for the ``stride`` and ``max_frames`` it was made with.
    """

    path: str
    stride: int
    max_frames: int | None
    enrolled: dict[int, FaceRecord]
    faces: dict[int, FaceRecord | None]  # frame index -> the patient's face (None: no face)
    grid_only: bool = False


def scan_original(
    original: str | Path,
    max_frames: int | None = None,
    stride: int = 1,
    enrol_frames: int = 8,
    analyser: FaceAnalyser | None = None,
    grid_only: bool = False,
) -> OriginalFaces:
    """Find and describe the patient's face in every frame of ``original`` (see ``audit``).

    ``grid_only``: only in the frames on the stride grid (for audits with ``grid_only``).
    """
    if stride < 1:
        raise UsageError(f"--stride must be 1 or more, got {stride}")
    analyser = analyser or FaceAnalyser()
    info = probe(original)
    n_hint = info.n_frames or 10**9
    if max_frames is not None:
        n_hint = min(n_hint, max_frames)
    enrolled = enrol(analyser, info, n_hint, enrol_frames, stride) if n_hint < 10**9 else {}
    faces: dict[int, FaceRecord | None] = {}
    for frame in read_frames(info.path, info, max_frames=max_frames):
        if grid_only and frame.index % stride:
            continue
        if frame.index in enrolled:
            faces[frame.index] = enrolled[frame.index]
        else:
            faces[frame.index] = _patient_face(
                analyser, frame.image, want_dlib=frame.index % stride == 0
            )
    return OriginalFaces(str(original), stride, max_frames, enrolled, faces, grid_only)


def audit(
    original: str | Path,
    deidentified: str | Path,
    gallery: str | Path | Gallery | None = None,
    out: str | Path | None = None,
    strict: bool = False,
    max_frames: int | None = None,
    donors: Sequence[object] | None = None,
    stride: int = 1,
    enrol_frames: int = 8,
    workers: int = 1,
    original_faces: OriginalFaces | None = None,
    grid_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Audit a de-identified video against its original; see the module docstring.

    ``stride`` > 1 verifies (and runs dlib on) every ``stride``-th frame only; the leak audit
    still detects faces and runs SFace on every output frame. With ``out`` the JSON is written
    before ``strict`` is applied, so a failed audit still leaves its evidence. ``strict``
    raises :class:`PrivacyError` when any output frame shows the patient. ``workers`` > 1 splits
    the pass over that many spawned processes (each starts in a few seconds and loads its own
    models; worth it only on idle cores, so one by default). ``original_faces`` (from
    :func:`scan_original` with the same ``stride`` and ``max_frames``) skips the analysis of
    the original, for audits of many outputs of one original. ``grid_only`` analyses only
    every ``stride``-th frame (no leak scan in between): a sample, for comparisons and sweeps.
    ``progress(done, total)`` is called as frames are scanned (the audit is most of a default
    ``deidentify`` run's time, so the CLI shows it).
    """
    t0 = time.perf_counter()
    if stride < 1:
        raise UsageError(f"--stride must be 1 or more, got {stride}")
    if workers < 1:
        raise UsageError(f"--workers must be 1 or more, got {workers}")
    if max_frames is not None and max_frames < 1:
        raise UsageError(f"--max-frames must be 1 or more, got {max_frames}")
    if out is not None:
        out = Path(out)
        if not out.parent.is_dir():
            raise OutputError("output folder does not exist", out)
    require_models(AUDIT_MODELS)  # a bad model file stops the audit before its first frame
    orig_info, out_info = probe(original), probe(deidentified)
    check_alignment(orig_info, out_info, max_frames)
    log.debug("audit: enrolling the patient from up to %d frames of the original", enrol_frames)
    analyser = FaceAnalyser()
    donor_records = load_donors(donors, analyser)

    # A header without a frame count (Matroska, WebM) would leave enrolment to the pass;
    # counting by decoding is cheap beside the audit, and gives every container one path.
    n_hint = orig_info.n_frames or (count_frames(original) if max_frames is None else 0) or 10**9
    if max_frames is not None:
        n_hint = min(n_hint, max_frames)
    if original_faces is not None:
        made = (original_faces.stride, original_faces.max_frames, original_faces.grid_only)
        if made != (stride, max_frames, grid_only):
            raise UsageError(
                f"original_faces were found with (stride, max_frames, grid_only) {made}, "
                f"not {(stride, max_frames, grid_only)}"
            )
        enrolled = dict(original_faces.enrolled)
        template = _template(list(enrolled.values()))
        scans = scan(
            analyser,
            orig_info,
            out_info,
            template,
            stride,
            max_frames,
            original_faces.faces,
            grid_only=grid_only,
            progress=progress,
            total=n_hint if n_hint < 10**9 else 0,
        )
    else:
        enrolled = (
            enrol(analyser, orig_info, n_hint, enrol_frames, stride) if n_hint < 10**9 else {}
        )
        template = _template(list(enrolled.values()))
        if workers > 1 and n_hint < 10**9 and not grid_only:
            scans = scan_parallel(
                orig_info, out_info, template, n_hint, workers, stride, max_frames, enrolled
            )
            if progress is not None:  # the workers report nothing on the way
                progress(len(scans), len(scans))
        else:
            scans = scan(
                analyser,
                orig_info,
                out_info,
                template,
                stride,
                max_frames,
                enrolled,
                grid_only=grid_only,
                progress=progress,
                total=n_hint if n_hint < 10**9 else 0,
            )

    with_face = [s for s in scans if s.original is not None]
    result = AuditResult(
        original=str(original),
        deidentified=str(deidentified),
        frames=len(scans),
        stride=stride,
        frames_with_original_face=len(with_face),
        nothing_to_protect=not with_face,
    )
    if with_face:
        if template is None:
            # The sampled frames missed the face, or the header gave no frame count (Matroska,
            # WebM): enrol from the pass, from faces that got both descriptors (on the grid).
            both = [s for s in with_face if s.original.dlib is not None] or with_face
            picks = np.linspace(0, len(both) - 1, min(enrol_frames, len(both)))
            enrolled = {both[i].index: both[i].original for i in picks.round().astype(int)}
            template = _template(list(enrolled.values()))
        result.enrolment = {"frames": sorted(enrolled), "recogniser_template": "mean descriptor"}
        gal = _resolve_gallery(gallery, analyser)
        for name, rec in donor_records.items():
            gal = gal.with_identity(_identity(name, [rec]))
        judge = Judge(template, gal, donor_records, list(donor_records))
        for s in scans:
            judge.add(s)
        fill_result(result, judge, gal)
    result.seconds = time.perf_counter() - t0
    log.debug("%s", result.summary())
    if out is not None:
        write_json(result, out)
    if strict and not result.clean:
        err = PrivacyError(result.failure_message(), deidentified)
        err.audit = result
        raise err
    return result


def fill_result(result: AuditResult, judge: Judge, gallery: Gallery) -> None:
    """Put a judge's verdict into an audit result (both audit paths end here)."""
    result.verification, result.frames_no_face_in_output = judge.verification()
    result.leaks = judge.leaks
    result.gallery = gallery.to_json()
    result.identification = judge.identification()
    result.donors = judge.donor_dominance()


def _template(records: list[FaceRecord]) -> dict[str, np.ndarray] | None:
    if not records:
        return None
    return {r: mean_descriptor(r, [getattr(x, r) for x in records]) for r in RECOGNISERS}


def _resolve_gallery(gallery: str | Path | Gallery | None, analyser: FaceAnalyser) -> Gallery:
    if isinstance(gallery, Gallery):
        return gallery
    if gallery is None:
        return default_gallery()
    return load_gallery(gallery, analyser)


def write_json(result: AuditResult, path: str | Path) -> Path:
    """Write AUDIT.json through :mod:`medswap.outputs` (a partial name, then a rename)."""
    from medswap.outputs import write_text_atomic

    return write_text_atomic(path, json.dumps(result.to_json(), indent=2), "audit")


# --------------------------------------------------------------------------------------------
# Report section
# --------------------------------------------------------------------------------------------


def privacy_section(
    results: Mapping[str, AuditResult] | Sequence[AuditResult],
) -> tuple[str, str]:
    """A ``(title, html)`` privacy table for the deidentify and compare reports.

    ``results`` maps a label (the method: swap, blur, ...) to its audit; a plain sequence is
    labelled by output file name. One row per output: re-identification rates, rank-1 against
    chance, leak frames, frames with no face in the output, distance to the donor.
    """
    items = (
        list(results.items())
        if isinstance(results, Mapping)
        else [(Path(r.deidentified).name, r) for r in results]
    )
    head = (
        "<tr><th>output</th><th>frames</th><th>re-id dlib</th><th>re-id SFace</th>"
        "<th>median dlib distance</th><th>median SFace distance</th>"
        "<th>rank-1 dlib / SFace (chance; without the donor)</th><th>leak frames</th>"
        "<th>no face in output</th><th>closer to donor (dlib)</th></tr>"
    )
    rows = []
    for label, r in items:
        esc = html.escape(str(label))
        if r.nothing_to_protect:
            rows.append(
                f"<tr><td>{esc}</td><td>{r.frames}</td>"
                "<td colspan='8'>no face in the original: nothing to protect</td></tr>"
            )
            continue
        v, ident = r.verification, r.identification
        rec = ident.get("recognisers", {})
        rank1 = " / ".join(_pct(rec.get(k, {}).get("rank1_rate")) for k in RECOGNISERS)
        rank1 += f" ({_pct(ident.get('chance_rank1'))} of {ident.get('n_identities', '-')})"
        if "chance_rank1_without_donors" in ident:
            rank1 += "; without the donor " + " / ".join(
                _pct(rec.get(k, {}).get("rank1_rate_without_donors")) for k in RECOGNISERS
            )
            rank1 += f" ({_pct(ident['chance_rank1_without_donors'])})"
        leaks = r.leak_frames
        leak_txt = f"<b>{len(leaks)}</b> (first {leaks[0]})" if leaks else "0"
        donor = (
            ", ".join(
                f"{html.escape(n)} {_pct(d.get('dlib', {}).get('closer_to_donor_rate'))}"
                for n, d in r.donors.items()
            )
            or "-"
        )
        cls = " class='fail'" if leaks else ""
        rows.append(
            f"<tr{cls}><td>{esc}</td><td>{r.frames}</td>"
            f"<td>{_pct(v['dlib']['reid_rate'])}</td><td>{_pct(v['sface']['reid_rate'])}</td>"
            f"<td>{v['dlib']['distance'].get('median', '-')}</td>"
            f"<td>{v['sface']['distance'].get('median', '-')}</td>"
            f"<td>{rank1}</td>"
            f"<td>{leak_txt}</td><td>{len(r.frames_no_face_in_output)}</td><td>{donor}</td></tr>"
        )
    note = (
        "<p>Re-identification: the share of checked frames whose output face dlib "
        f"(distance &lt; {THRESHOLDS['dlib']}) or SFace (cosine &gt; "
        f"{SFACE_SAME_PERSON_COSINE}) judges to be the patient's original face. A frame "
        "with no face in the output counts as hidden. Leak frames: any face found by YuNet "
        "or dlib HOG in any output frame that either recogniser matches to the patient.</p>"
    )
    body = f"<table class='privacy'>{head}{''.join(rows)}</table>{note}"
    return "Privacy: re-identification and leak audit", body
