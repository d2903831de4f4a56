"""Donor faces: loading, the built-in average donor, and which track gets which donor.

A donor is an image of a face plus its 478 mesh landmarks. The swap paints the donor's skin
and features onto the patient's moving mesh, so a donor must show a frontal, evenly lit face.

Built-in donors come from public-domain portraits shipped inside installed packages, so a
fresh install has them: ``astronaut`` (NASA portrait of Eileen Collins, in scikit-image) and
``grace_hopper`` (US Navy portrait, in matplotlib). ``average`` is a morph of
both, in shape and in texture: it belongs to no real person. Grace Hopper's high-contrast
features (glasses, lines) dominate an equal mix, which both recognisers then take for her;
weights of 0.7 / 0.3 keep the morph more than 0.4 from both portraits and about equally far
(tests/test_swap_units.py).

Which is the default: an audited run (the command line's) starts behind ``astronaut`` and
keeps her only where she is far enough from the patient (:data:`ENOUGH_MARGIN`, measured on the
audit's template of the patient's first faces), else starts again behind ``grace_hopper``
(:data:`FALLBACK_DONORS`): the face mesh reads astronaut's shut eye as shut, so blinks survive,
but she is nearer than grace_hopper to some patients. A run without the audit has nothing to
measure with and takes ``grace_hopper`` (:data:`DEFAULT_DONOR`), far from every patient measured.

Why ``grace_hopper`` and not the morph: a morph is a smooth, typical face, and
the patient's own geometry and context (outline, hair, the warp onto their landmarks) then win.
SFace still took the swapped face for the patient in 33-60% of frames on four of the eleven
shared clips with ``average``, and dlib in 45% on one; with ``grace_hopper`` (distinct glasses
and lines) and the current defaults neither recogniser re-identifies any measured frame of any
clip (``benchmarks/swap_quality.py --donor NAME``, README "Results"). ``astronaut`` alone
hides less where she is near the patient: behind her the lineup picks out signer_small_face
(README "The default donor, chosen per patient").
The built-in ``grace_hopper`` is her portrait with the top rim of her glasses painted out
(:func:`without_glasses_rim`): landmark models took that dark bar for brows, so the swap's
brows stayed on it while the patient's moved, and the pose model's face points moved with it.
Her light lower frames stay, and with them some of the price in the face measures: the face
mesh reads her shut eye as less shut than a glasses-free donor's (README "Lineup").
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import cv2
import numpy as np

from medswap.errors import DonorError, InputNotFoundError
from medswap.geometry import similarity_transform, transform_points
from medswap.swap.eyes import (
    ShutEyes,
    ShutFade,
    eye_reading,
    fade_from_readings,
    measure_shut_fade,
    shut_eye_texture,
)
from medswap.swap.geometry import (
    apply_maps,
    triangulate,
    warp_maps,
)

BUILTIN_DONORS = ("average", "astronaut", "grace_hopper")
#: The donor used when none is given and the run is not audited (see the module docstring).
DEFAULT_DONOR = "grace_hopper"
#: When none is given and the run is audited, the donors it tries in turn, in order of
#: preference, until one is far enough from the patient (:data:`ENOUGH_MARGIN`) and its
#: release audit is clean: a patient whom the lineup still picks out behind one built-in face
#: is rendered again behind the next (the morph is left out: it is part of both). astronaut
#: comes first because the face mesh reads her painted shut eye as shut and her open eye as
#: wide open, so the patient's blinks survive; behind grace_hopper (her glasses' lower frames,
#: a narrow open eye) most do not (README "Blinks on every clip, by donor"). grace_hopper, far
#: from every patient measured, comes next.
FALLBACK_DONORS = ("astronaut", "grace_hopper")
#: A donor that is not the last of :data:`FALLBACK_DONORS` is kept only this far from the
#: patient (:func:`donor_margin`, on the audit's template of the patient's first faces): a
#: quarter beyond "just another person" for both recognisers (dlib 0.75, SFace 0.80). Nearer,
#: the run starts again behind the next donor at once, not after a whole video.
ENOUGH_MARGIN = 1.25
#: Built-in portraits whose glasses' top rim is painted out (:func:`without_glasses_rim`).
GLASSES_RIM_PAINTED_OUT = ("grace_hopper",)
#: Weights of astronaut and grace_hopper in the built-in average (see the module docstring).
AVERAGE_WEIGHTS = (0.7, 0.3)
#: Mesh points used for the triangulation (irises excluded: they move inside the eye).
N_TRI_POINTS = 468


@dataclass(frozen=True)
class Donor:
    """A donor face: RGB image, its mesh (478, 3) and a short stable id for reports."""

    name: str
    image: np.ndarray
    landmarks: np.ndarray

    @cached_property
    def image_sha256(self) -> str:
        """SHA-256 of the donor image's pixels (and its shape): this image and no other."""
        digest = hashlib.sha256(repr(self.image.shape).encode())
        digest.update(np.ascontiguousarray(self.image).tobytes())
        return digest.hexdigest()

    @cached_property
    def fingerprint(self) -> str:
        """Short hash of the donor image: which donor a report or a model file means."""
        return hashlib.sha256(self.image.tobytes()).hexdigest()[:12]

    @cached_property
    def shut_eyes(self) -> ShutEyes:
        """This donor's image with both eyes painted shut (for blinks; computed once)."""
        return shut_eye_texture(self.image, self.landmarks)

    @property
    def shut_fade(self) -> ShutFade:
        """How much shut-eye texture makes this donor's eye read as shut as the patient's,
        measured once by the face mesh on the donor itself (:func:`donor_fade`), or read from
        the package for a built-in portrait (:func:`packaged_fade`).

        A caller that comes while another thread measures it waits for that measurement
        (:func:`measure_fades_beside`); ``cached_property`` stopped locking in Python 3.12, and
        the two would each measure it. Each image has a lock of its own: the first donor's
        fade must not wait while another's is measured.
        """
        with _fade_lock(self.image_sha256):
            if "_shut_fade" not in self.__dict__:
                self.__dict__["_shut_fade"] = packaged_fade(self) or donor_fade(self)
            return self.__dict__["_shut_fade"]


_FADE_LOCKS: dict[str, threading.Lock] = {}
_FADE_LOCKS_LOCK = threading.Lock()


def _fade_lock(image_sha256: str) -> threading.Lock:
    """The lock held while the fade of the donor image with this hash is measured."""
    with _FADE_LOCKS_LOCK:
        return _FADE_LOCKS.setdefault(image_sha256, threading.Lock())


#: The built-in donors' shut-eye fade readings, shipped with the package
#: (``scripts/make_donor_fades.py``): measuring one costs about a second of CPU before the
#: first face can be drawn, on every run.
PACKAGED_FADES = Path(__file__).resolve().parents[1] / "data" / "donor_fades.npz"
#: The models that read a donor's eyes for its fade (the face mesh in still-image mode).
FADE_MODELS = ("mp_face_landmark", "mp_face_detection_short")


def fade_model_hashes() -> str:
    """The fade models' hashes a fades file records: another set makes the file stale."""
    from medswap.models import MODELS

    return ",".join(f"{n}:{MODELS[n].sha256}" for n in FADE_MODELS)


@cache
def _packaged_readings() -> dict[str, np.ndarray]:
    """The shipped readings by donor image hash; none when absent or made by other models."""
    if not PACKAGED_FADES.is_file():
        return {}
    with np.load(PACKAGED_FADES) as data:
        if str(data["models"]) != fade_model_hashes():
            return {}
        return dict(zip(map(str, data["images"]), data["readings"], strict=True))


def packaged_fade(donor: Donor) -> ShutFade | None:
    """A built-in donor's fade from the readings shipped for exactly its image, else None.

    They are what :func:`donor_fade` reads on it (the file was made that way, with the same
    model files), without reading the portrait some thirty times on every run.
    """
    readings = _packaged_readings().get(donor.image_sha256)
    return None if readings is None else fade_from_readings(readings.copy())


def measure_fades_beside(donors: list[Donor]) -> None:
    """Start measuring each donor's shut-eye fade on a thread of its own, so that it is done
    while the models load rather than at the first face (``Donor.shut_fade`` waits for it)."""

    def measure(donor: Donor) -> None:
        # An error is raised again, with its message, where the fade is used.
        with contextlib.suppress(Exception):
            _ = donor.shut_fade

    for donor in donors:
        threading.Thread(target=measure, args=(donor,), daemon=True).start()


def donor_fade(donor: Donor, full: bool = False) -> ShutFade:
    """:func:`~medswap.swap.eyes.measure_shut_fade` on ``donor``, read by the face mesh in
    still-image mode (``full``: every reading, also where the fixed curve will be used)."""
    from medswap.faces.mesh import FaceMesher

    mesher = FaceMesher(max_faces=1, video=False, min_confidence=0.3)

    def read(image: np.ndarray) -> float:
        faces = mesher(image)
        return eye_reading(faces[0]) if faces else float("nan")

    try:
        return measure_shut_fade(donor.image, donor.landmarks, donor.shut_eyes, read, full)
    except ValueError:  # its eyes cannot be read (shut in the photo): the fixed curve
        return ShutFade.fixed()
    finally:
        mesher.close()


def shipped_portrait(name: str) -> np.ndarray:
    """A built-in portrait as its package ships it (RGB), before anything the swap paints out.

    Scenes for the demo and the tests are cut from these; :func:`builtin_image` is the portrait
    as the swap draws it.
    """
    if name == "astronaut":
        import skimage.data

        return np.ascontiguousarray(skimage.data.astronaut())
    if name == "grace_hopper":
        import matplotlib.cbook

        path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    raise DonorError(f"unknown built-in donor '{name}'")


#: Mesh points on both brows (upper and lower edges): where a glasses rim over the brows sits.
BROW_POINTS = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55, 336, 296, 334, 293, 300, 285, 295, 282]


def without_glasses_rim(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``image`` with the dark rim of a pair of glasses over the brows painted out.

    Why: landmark models read a dark bar above the eyes as brows. On a donor whose glasses'
    top rim lies on the brows, the swap's brows stay on the rim while the patient's move, and
    the pose model's face points shift with the bar (README "What the expression clips'
    excess is"). What is painted: pixels between the top of the brows and the lower lids,
    inside the face outline and outside the eye openings, darker than 40% of the face's median
    brightness, in pieces large enough to be a frame rather than a lash, with the highlights
    on them; widened a little and filled from the skin around (Telea's inpainting). The lower,
    light part of a frame is left: it hides neither brows nor eyes. Dark brows in that band
    would go too, so this is for a portrait whose own brows are pale under the rim (Grace
    Hopper's), not a general glasses remover.
    """
    from medswap.faces.mesh import FACE_OVAL, LEFT_EYE, RIGHT_EYE, inter_ocular_mesh

    unit = inter_ocular_mesh(landmarks) / 24.0  # about 5 px on a portrait 120 px between the eyes
    pts = landmarks[:, :2]
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    face = np.zeros(gray.shape, np.uint8)
    cv2.fillPoly(face, [np.round(pts[FACE_OVAL]).astype(np.int32)], 1)
    eyes = np.zeros_like(face)
    for eye in (RIGHT_EYE, LEFT_EYE):
        cv2.fillPoly(eyes, [np.round(pts[eye]).astype(np.int32)], 1)
    eyes = cv2.dilate(eyes, _disc(1.4 * unit))
    top = max(int(pts[BROW_POINTS, 1].min() - 0.6 * unit), 0)
    bottom = int(pts[RIGHT_EYE + LEFT_EYE, 1].max() + 0.6 * unit) + 1
    band = np.zeros_like(face)
    band[top:bottom] = 1
    allowed = cv2.dilate(face, _disc(1.4 * unit)) & band & (1 - eyes)
    dark = ((gray < 0.4 * np.median(gray[face > 0])) & (allowed > 0)).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(dark)
    large = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= 0.5 * unit**2)
    rim = np.isin(labels, large[large > 0]).astype(np.uint8)
    near_white = (gray > 185).astype(np.uint8)
    shine = cv2.dilate(rim, _disc(1.8 * unit)) & near_white & allowed
    rim = cv2.dilate(rim | shine, _disc(unit)) & (1 - eyes)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    bgr = cv2.inpaint(bgr, rim * 255, round(unit), cv2.INPAINT_TELEA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _disc(diameter: float) -> np.ndarray:
    d = max(int(round(diameter)), 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def _mesh_of(image: np.ndarray, label: str) -> np.ndarray:
    from medswap.faces.mesh import FaceMesher

    mesher = FaceMesher(max_faces=1, video=False, min_confidence=0.3)
    try:
        faces = mesher(image)
    finally:
        mesher.close()
    if not faces:
        raise DonorError("no face found in donor image", label)
    return faces[0]


def load_donor(spec: str | Path) -> Donor:
    """A donor from an image path or a built-in name; :class:`DonorError` if no face in it."""
    spec_str = str(spec)
    if spec_str in BUILTIN_DONORS:
        return builtin_donor(spec_str)
    path = Path(spec_str)
    if not path.exists():
        raise InputNotFoundError("donor image not found", path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DonorError("cannot read donor image (not an image file)", path)
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return Donor(path.stem, image, _mesh_of(image, str(path)))


def builtin_image(name: str) -> np.ndarray:
    """A built-in donor's portrait as the swap draws it, without the rest of the donor (its mesh
    and shut-eye readings); :func:`shipped_portrait` is the file as shipped.

    Only a portrait whose glasses rim is painted out needs its face mesh for that (and the
    average is made from the others); the rest is the file as shipped, so a process that only
    compares images (the audit's, for the lineup) need not load MediaPipe.
    """
    if name == "average" or name in GLASSES_RIM_PAINTED_OUT:
        return builtin_donor(name).image
    return shipped_portrait(name)


@cache
def builtin_donor(name: str = "average") -> Donor:
    """One of the built-in donors (computed once per process)."""
    if name == "average":
        return average_donor(
            [builtin_donor("astronaut"), builtin_donor("grace_hopper")], weights=AVERAGE_WEIGHTS
        )
    image = shipped_portrait(name)
    if name in GLASSES_RIM_PAINTED_OUT:
        image = without_glasses_rim(image, _mesh_of(image, name))
    return Donor(name, image, _mesh_of(image, name))


def average_donor(
    donors: list[Donor],
    weights: tuple[float, ...] | None = None,
    size: int = 512,
    name: str = "average",
) -> Donor:
    """The weighted mean face of several donors: mean shape, textures warped to it and averaged.

    Each donor is first aligned (similarity) to a canvas where the face fills the middle, then
    its face is warped triangle by triangle onto the mean shape, so that features line up and
    the average is a sharp face rather than a ghost.
    """
    ref = donors[0].landmarks
    # Canvas frame: the first donor scaled so the face spans about half of the canvas.
    w0 = np.ptp(ref[:, 0])
    s = 0.5 * size / w0
    c = ref[:, :2].mean(0)
    canvas_m = np.array([[s, 0, size / 2 - s * c[0]], [0, s, size / 2 - s * c[1]]])
    # The same morph on every machine: BLAS picks its kernels by CPU, and they round the last
    # bit of a sum differently, which moves a pixel that sits at half a level. So the fits and
    # the points are rounded to a grid far coarser than that bit, and the weighted means are
    # taken element by element, not by a BLAS product. The morph's shipped fade is keyed on
    # its exact pixels.
    ref_c = _on_grid(transform_points(canvas_m, ref))
    aligned_imgs, aligned_lms = [], []
    for d in donors:
        m = _on_grid(similarity_transform(d.landmarks[:N_TRI_POINTS], ref_c[:N_TRI_POINTS]), 9)
        aligned_imgs.append(
            cv2.warpAffine(
                d.image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
        )
        lm = transform_points(m, d.landmarks)
        lm[:, 2] = d.landmarks[:, 2] * np.sqrt(abs(np.linalg.det(m[:, :2])))
        aligned_lms.append(_on_grid(lm))
    w = np.full(len(donors), 1.0 / len(donors)) if weights is None else np.asarray(weights)
    w = w / w.sum()
    mean_lm = _on_grid(_weighted_sum(w, aligned_lms))
    tri = triangulate(mean_lm[:N_TRI_POINTS])
    face = np.zeros((size, size, 3), np.float32)
    background = _weighted_sum(w.astype(np.float32), [i.astype(np.float32) for i in aligned_imgs])
    cover = None
    for wi, img, lm in zip(w, aligned_imgs, aligned_lms):
        maps = warp_maps(mean_lm[:N_TRI_POINTS], lm[:N_TRI_POINTS], tri, (0, 0, size, size))
        face += wi * apply_maps(img, maps).astype(np.float32)
        cover = maps.covered
    out = np.where(cover[..., None], face, background)
    return Donor(name, np.clip(out + 0.5, 0, 255).astype(np.uint8), mean_lm)


def _on_grid(x: np.ndarray, decimals: int = 6) -> np.ndarray:
    """``x`` rounded to ``decimals``: a last-bit difference between machines no longer shows."""
    return np.round(x, decimals)


def _weighted_sum(w: np.ndarray, arrays: list[np.ndarray]) -> np.ndarray:
    """``sum(w[i] * arrays[i])`` element by element, in the order given (no BLAS)."""
    out = w[0] * arrays[0]
    for wi, a in zip(w[1:], arrays[1:], strict=True):
        out = out + wi * a
    return out


def assign_donor(donors: list[Donor], track_id: int, seed: int = 0) -> Donor:
    """A donor for one face track from ``seed`` alone: fixed for the track, reproducible.

    The pipeline uses it only where the patient's face could not be measured for
    :func:`choose_donor` (the audit's detector found no face in the track's first seconds).
    """
    if len(donors) == 1:
        return donors[0]
    rng = random.Random(f"medswap:{seed}:{track_id}")
    return donors[rng.randrange(len(donors))]


def donor_margin(distances: Mapping[str, float], thresholds: Mapping[str, float]) -> float:
    """How far a donor is from the patient for the recogniser that finds them nearest.

    Each recogniser's distance is divided by its same-person threshold (dlib 0.6, SFace
    0.637), so 1.0 is "just another person" for either, and the smaller ratio counts.
    """
    return min(distances[r] / thresholds[r] for r in thresholds)


def choose_donor(
    distances: Mapping[str, Mapping[str, float]], thresholds: Mapping[str, float]
) -> str:
    """The donor farthest from the patient for both recognisers: the largest :func:`donor_margin`.

    ``distances`` maps each donor name, in the order the user gave the donors, to the
    recognisers' distances between the patient and that donor's portrait. Ties keep the first
    donor, so the choice depends on the faces alone and is the same on every run.
    """
    if not distances:
        raise ValueError("no donor to choose from")
    best = max(donor_margin(d, thresholds) for d in distances.values())
    return next(n for n, d in distances.items() if donor_margin(d, thresholds) == best)
