"""Blinks on a donor face: eye openness, lid-aware shape offset, and a shut-eye texture.

A donor portrait has its eyes open. Warping it onto a patient whose eyes close squeezes the
donor's lashes and lid margins together into a dark slit, which a face landmarker (and a
person) still reads as a narrowed, open eye: measured on expression_a.mp4, the patient's eye
aspect ratio fell to 0.03 in a blink while the swapped face's stayed near 0.21, and neither
of its two blinks was counted on the swap. Three things make the swap blink:

1. the identity-shape offset is scaled across each eye by its openness, so a constant offset
   never holds a shut eye open (:func:`lid_offset`);
2. each donor gets a shut-eye version of its image (lashes and lid margins painted over with
   the surrounding lid skin, a thin lash line where the lids meet), and the warped face fades
   to it eye by eye as the patient's eye closes (:func:`shut_eye_texture`), as much as makes a
   face landmarker read the donor's eye as open as the patient's (:class:`ShutFade`, measured
   on each donor by :func:`measure_shut_fade`; a donor whose shut eye never reads shut keeps
   a fixed curve, :func:`fixed_fade`);
3. the tracker's smoothing leaves the lids' motion relative to the eye corners as measured
   (:func:`medswap.faces.track.keep_fast_motion`): smoothed, a blink was half as deep and late.

:func:`gaze_shifts` turns the donor's eyes where the patient looks (``--eyes gaze``), an
option and not the default, because it gives a recogniser the patient's gaze in every frame.
On a warped donor face :func:`with_shut_eyes` fades to the shut-eye texture and
:func:`gazing_maps` turns the eyeballs; :func:`iris_disc` marks an iris (``--eyes iris``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from medswap.faces.mesh import LEFT_EYE, RIGHT_EYE
from medswap.swap import blend
from medswap.swap.geometry import WarpMaps, apply_maps

#: Per eye: outer and inner corner, then upper-lid and lower-lid points facing each other.
EYES = tuple((eye[0], eye[8], eye[1:8], eye[15:8:-1]) for eye in (RIGHT_EYE, LEFT_EYE))
#: Lid openness (1 open .. 0 shut) and shut-texture weights at which :func:`measure_shut_fade`
#: reads a donor's eyes: 30 still-image readings of the face mesh, a fraction of a second.
FADE_OPENNESS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FADE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: A donor whose fully shut eye still reads more open than this (1 open .. 0 shut) cannot show
#: a shut eye with margin below the blink measure's line (half open): a fade measured on it
#: saturates from half-closed lids on, squints and blinks both read at the floor, and a held
#: squint breaks into blink-length pieces. Such a donor keeps the fixed curve
#: (:func:`fixed_fade`). grace_hopper's glasses hold its floor at 0.43; astronaut reads 0.13.
MAX_MEASURED_FLOOR = 0.3
#: For the fixed curve: how open a squeezed donor eye is taken to look when the patient's lids
#: are shut (0 shut .. 1 open). Measured 0.58-0.77 on the built-in portraits; 0.5 was chosen on
#: expression_a/b.mp4 (0.7 and 0.9 counted more false blinks while the patient's lids were held
#: half-lowered: the fade then flickers between looking open and looking shut).
SQUEEZED_LOOKS_OPEN = 0.5
#: The shut-eye texture covers the eye opening and this margin around it (x eye width)...
SHUT_MARGIN = 0.25
#: ...with a lash line along the lower lid this wide (x eye width) and this dark (0..1).
LASH_WIDTH, LASH_DARKNESS = 0.08, 1.0


def _eye_axes(pts: np.ndarray, outer: int, inner: int) -> tuple[np.ndarray, np.ndarray, float]:
    """An eye's unit axis (outer to inner corner), its unit normal, and its width."""
    axis = pts[inner, :2] - pts[outer, :2]
    width = max(float(np.linalg.norm(axis)), 1e-9)
    axis = axis / width
    return axis, np.array([-axis[1], axis[0]]), width


def eye_openings(pts: np.ndarray) -> np.ndarray:
    """Mean upper-to-lower lid distance of the right and left eye, in the points' units."""
    return np.array(
        [float(np.mean(np.linalg.norm(pts[up, :2] - pts[lo, :2], axis=1))) for _, _, up, lo in EYES]
    )


def eye_reading(pts: np.ndarray) -> float:
    """How open both eyes are, as a fraction of their width (the eye aspect ratio's kin)."""
    widths = [np.linalg.norm(pts[inner, :2] - pts[outer, :2]) for outer, inner, _, _ in EYES]
    return float(np.mean(eye_openings(pts) / np.maximum(widths, 1e-9)))


def openness(pts: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """Each eye's opening relative to the neutral face's, in 0..1 (wider than neutral is 1)."""
    return np.clip(eye_openings(pts) / np.maximum(eye_openings(neutral), 1e-6), 0.0, 1.0)


def lids_at(landmarks: np.ndarray, eye_openness: float) -> np.ndarray:
    """The landmarks with both eyes' lids moved toward their midline, to ``eye_openness`` of
    their opening (0 shut)."""
    out = landmarks.copy()
    for _, _, up, lo in EYES:
        mid = 0.5 * (out[up] + out[lo])
        out[up] = mid + eye_openness * (out[up] - mid)
        out[lo] = mid + eye_openness * (out[lo] - mid)
    return out


@dataclass(frozen=True)
class ShutFade:
    """How much of a donor's shut-eye texture to show at each lid openness of the patient.

    A face landmarker reads a warped donor eye by its texture more than by where its lids are
    drawn: squeezed, the donor's lashes and lid margins still read as a narrowed, open eye, and
    half the shut texture faded in does not read half shut. How much fade gives which reading
    depends on the donor (lash contrast, lid folds, glasses), so it is measured on each donor
    (:func:`measure_shut_fade`), and the weight is the one at which the landmarker reads the
    donor's eye as open as the patient's. ``floor`` is the most shut the donor's eye reads at
    all (1 open .. 0 shut): a closure deeper than that cannot be shown with this donor.
    """

    openness: np.ndarray  # (n,) ascending lid openness, 0 shut .. 1 open
    weight: np.ndarray  # (n,) the shut texture's weight at each, non-increasing
    readings: np.ndarray  # (n, m) relative openness read at FADE_WEIGHTS, for reports
    floor: float

    @property
    def measured(self) -> bool:
        """Whether the measured fade is used (else the fixed curve: the floor is too high)."""
        return self.floor <= MAX_MEASURED_FLOOR

    @classmethod
    def fixed(cls) -> ShutFade:
        """The fixed curve, for a donor whose eyes cannot be read (shut in its photo, say)."""
        o = np.asarray(FADE_OPENNESS, dtype=float)
        readings = np.full((len(o), len(FADE_WEIGHTS)), np.nan)
        return cls(o, fixed_fade(o), readings, 1.0)

    def __call__(self, eye_openness: np.ndarray) -> np.ndarray:
        """Each eye's shut-texture weight (0 open .. 1 shut) at its openness (0 .. 1)."""
        o = np.clip(eye_openness, 0.0, 1.0)
        if not self.measured:
            return fixed_fade(o)
        return np.interp(o, self.openness, self.weight)


def fixed_fade(eye_openness: np.ndarray) -> np.ndarray:
    """The shut texture's weight by a fixed curve, for donors whose fade cannot be measured.

    A squeezed donor eye is taken to look ``r + (1 - r) * o`` open at openness ``o`` (``r`` =
    :data:`SQUEEZED_LOOKS_OPEN`), and fading ``w`` of it to the shut texture to leave ``(1 -
    w)`` of that, so ``w = 1 - o / (r + (1 - r) o)``.
    """
    o = np.clip(eye_openness, 0.0, 1.0)
    r = SQUEEZED_LOOKS_OPEN
    return np.clip(1.0 - o / (r + (1.0 - r) * o), 0.0, 1.0)


def fade_from_readings(
    readings: np.ndarray,
    openness: tuple[float, ...] = FADE_OPENNESS,
    weights: tuple[float, ...] = FADE_WEIGHTS,
) -> ShutFade:
    """The fade that makes the landmarker's reading follow the lids, from a table of readings.

    ``readings[i, j]`` is how open (relative to the donor's open eye) the landmarker read the
    donor with lids at ``openness[i]`` and ``weights[j]`` of the shut texture; NaN where it
    found no face. Per openness, the weight is interpolated where the reading reaches that
    openness (or the donor's floor, if it never gets so low). More fade never reads more open
    and a more closed lid never gets less fade: each reading is held at its lowest so far
    along the weights, and the weights at their highest so far toward the shut end, so the
    landmarker's jitter in still images cannot make the fade flicker back and forth.
    """
    o = np.asarray(openness, dtype=float)
    w = np.asarray(weights, dtype=float)
    r = np.array(readings, dtype=float)
    if not np.isfinite(r).any():
        raise ValueError("no reading of the donor's eyes: cannot measure its shut-eye fade")
    r = np.where(np.isfinite(r), r, np.inf)
    r = np.minimum.accumulate(r, axis=1)
    finite = np.isfinite(r)
    floor = float(np.min(r[finite]))
    order = np.argsort(o)
    readings_out = np.where(finite, r, np.nan)[order]
    if floor > MAX_MEASURED_FLOOR:  # the fixed curve is used: say so in the weights too
        return ShutFade(o[order], fixed_fade(o[order]), readings_out, floor)
    out = np.zeros(len(o))
    for i, target in enumerate(np.maximum(o, floor)):
        row = r[i]
        reach = np.nonzero(row <= target)[0]
        if not reach.size:
            out[i] = w[int(np.argmin(row))] if np.isfinite(row).any() else w[-1]
            continue
        j = int(reach[0])
        if j == 0:
            continue
        hi = row[j - 1] if np.isfinite(row[j - 1]) else target
        span = max(hi - row[j], 1e-9)
        out[i] = w[j - 1] + (hi - target) / span * (w[j] - w[j - 1])
    weight = np.maximum.accumulate(out[order][::-1])[::-1]
    return ShutFade(o[order], weight, readings_out, floor)


def measure_shut_fade(
    image: np.ndarray,
    landmarks: np.ndarray,
    shut_eyes: ShutEyes,
    read: Callable[[np.ndarray], float],
    full: bool = False,
) -> ShutFade:
    """Read the donor with its lids at each of :data:`FADE_OPENNESS` and each of
    :data:`FADE_WEIGHTS` of its shut texture, and make the fade from the readings.

    ``read`` gives an image's eye opening (any unit, NaN without a face); the donor's own
    image is the open reference. The donor is warped onto its own mesh with the lids moved,
    the same warp the swap makes onto a patient whose lids close. The full texture is read
    first: the floor is among those readings, and a donor whose floor is too high keeps the
    fixed curve, so the other readings are taken only for the others (or with ``full``).
    """
    from medswap.swap.geometry import triangulate, warp_maps

    h, w = image.shape[:2]
    pts = landmarks[:468]  # the irises move inside the eye: not triangulated
    open_reading = read(image)
    if not np.isfinite(open_reading) or open_reading <= 0:
        raise ValueError("the donor's open eyes cannot be read: cannot measure its fade")
    triangles = triangulate(pts)
    warps = []
    for o in FADE_OPENNESS:
        maps = warp_maps(lids_at(pts, o), pts, triangles, (0, 0, w, h))
        warps.append((maps, apply_maps(image, maps)))

    def reading(i: int, k: float) -> float:
        maps, warped = warps[i]
        face = with_shut_eyes(warped, shut_eyes, np.array([k, k]), maps) if k else warped
        shown = np.where(maps.covered[..., None], face, image)
        return read(np.ascontiguousarray(shown)) / open_reading

    readings = np.full((len(FADE_OPENNESS), len(FADE_WEIGHTS)), np.nan)
    last = len(FADE_WEIGHTS) - 1
    readings[:, last] = [reading(i, FADE_WEIGHTS[last]) for i in range(len(FADE_OPENNESS))]
    if full or np.nanmin(readings[:, last]) <= MAX_MEASURED_FLOOR:
        for i in range(len(FADE_OPENNESS)):
            for j, k in enumerate(FADE_WEIGHTS[:last]):
                readings[i, j] = reading(i, k)
    return fade_from_readings(readings)


def lid_offset(offset: np.ndarray, reference: np.ndarray, eye_openness: np.ndarray) -> np.ndarray:
    """The shape offset with each eye's lid-opening part scaled by that eye's openness.

    A constant offset that makes the patient's eye as open as the donor's also keeps it that
    open when the patient blinks. Scaling the part of the offset across the eye (perpendicular
    to its corner-to-corner axis in ``reference``) by the openness gives the donor's eye size
    when open and a shut eye when shut. Along the eye, and everywhere else, the offset stays
    constant.
    """
    out = offset.copy()
    for (outer, inner, up, lo), k in zip(EYES, eye_openness, strict=True):
        _, normal, _ = _eye_axes(reference, outer, inner)
        lids = up + lo
        across = offset[lids, :2] @ normal
        out[lids, :2] -= (1.0 - k) * across[:, None] * normal[None, :]
    return out


@dataclass(frozen=True)
class ShutEyes:
    """A donor image with both eyes shut, and where it differs from the open one (per eye)."""

    image: np.ndarray  # (H, W, 3) uint8, the donor image with shut eyes
    masks: tuple[np.ndarray, np.ndarray]  # right, left: (H, W) float32 0..1


def shut_eye_texture(image: np.ndarray, landmarks: np.ndarray) -> ShutEyes:
    """Paint each eye of a donor portrait shut.

    The eye opening and a margin around it (lashes, lid margins) are filled with the lid skin
    around them; a thin dark line along the lower lid, in the colour of the donor's own
    lashes, marks where the lids meet. Only the margin outside the opening is ever visible on
    a shut eye (the opening itself is squeezed to nothing), so that is what matters.
    """
    h, w = image.shape[:2]
    shut = image.copy()
    masks = []
    for (outer, inner, _up, lo), contour in zip(EYES, (RIGHT_EYE, LEFT_EYE), strict=True):
        width = float(np.linalg.norm(landmarks[inner, :2] - landmarks[outer, :2]))
        opening = np.zeros((h, w), np.uint8)
        cv2.fillPoly(
            opening, [np.round(landmarks[contour, :2] * 4).astype(np.int32)], 255, cv2.LINE_AA, 2
        )
        k = max(3, int(2 * round(SHUT_MARGIN * width) + 1))
        region = cv2.dilate(opening, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        eye_px = image[region > 0].astype(np.float32)
        lash = np.percentile(eye_px, 10, axis=0) if len(eye_px) else np.zeros(3)
        shut = _fill_with_skin(shut, region, width)
        line = np.zeros((h, w), np.uint8)
        lower = [outer, *lo[::-1], inner]
        thickness = max(1, int(round(LASH_WIDTH * width)))
        cv2.polylines(
            line,
            [np.round(landmarks[lower, :2] * 4).astype(np.int32)],
            False,
            255,
            thickness,
            cv2.LINE_AA,
            2,
        )
        a = cv2.GaussianBlur(line.astype(np.float32) / 255.0, (0, 0), max(0.5, 0.02 * width))
        a = LASH_DARKNESS * a[..., None]
        shut = (shut * (1 - a) + lash * a).astype(np.uint8)
        mask = cv2.GaussianBlur(region.astype(np.float32) / 255.0, (0, 0), max(1.0, 0.05 * width))
        masks.append(mask)
    return ShutEyes(shut, (masks[0], masks[1]))


def _fill_with_skin(image: np.ndarray, region: np.ndarray, width: float) -> np.ndarray:
    """``image`` with ``region`` filled by a smooth average of the skin in a ring around it.

    A normalised convolution over the ring, from the pixels within one robust SD of its median
    brightness only: lashes, brows and glasses frames next to the eye would otherwise bleed
    into the lid (as inpainting does), and highlights would make the lid a pale patch that a
    landmarker takes for an open eye. An eye outside the image (empty region) is left as is.
    """
    k = max(3, int(2 * round(0.15 * width) + 1))
    ring = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    ring[region > 0] = 0
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if not (ring > 0).any() or not (region > 0).any():
        return image
    ring_grey = grey[ring > 0]
    mid = float(np.median(ring_grey))
    spread = max(4.0, 1.4826 * float(np.median(np.abs(ring_grey - mid))))
    valid = ((ring > 0) & (np.abs(grey - mid) <= spread)).astype(np.float32)
    sigma = max(1.0, 0.15 * width)
    num = cv2.GaussianBlur(image.astype(np.float32) * valid[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(valid, (0, 0), sigma)[..., None]
    fill = num / np.maximum(den, 1e-6)
    # Skin detail (pores, lines) from just below the region, moved up over it: a flat fill
    # would read as a pale patch, not as a lid.
    ys = np.nonzero(region.any(axis=1))[0]
    height = int(ys[-1] - ys[0] + 1)
    src = image.astype(np.float32)
    detail = src - cv2.GaussianBlur(src, (0, 0), max(1.0, 0.04 * width))
    detail = np.roll(detail, -height, axis=0)
    out = image.copy()
    inside = region > 0
    out[inside] = np.clip(fill[inside] + detail[inside], 0, 255).astype(np.uint8)
    return out


def gaze_shifts(target: np.ndarray, donor: np.ndarray) -> list[np.ndarray]:
    """Per eye, how far (in donor pixels) to move the donor's eyeball so it looks where the
    patient looks.

    The patient's iris centre relative to their eye (corner midpoint, along and across the
    eye, in eye widths) minus the donor's, mapped into the donor image. Moving the donor's own
    iris keeps the gaze without drawing any of the patient's eye pixels; still, the gaze itself
    matches the original frame: SFace took 4.4% of expression_b.mp4's swapped frames for the
    patient with it, 2.7% with the patient's irises kept and 0.9% with neither (``medswap
    audit --stride 1``). An iris redrawn in the donor's colour at the patient's size (tried in
    an ad-hoc experiment, not kept) looked like the patient's eye (18%).
    """
    shifts = []
    for (outer, inner, _up, _lo), centre in zip(EYES, (468, 473), strict=True):
        rel = []
        for pts in (target, donor):
            axis, normal, width = _eye_axes(pts, outer, inner)
            d = pts[centre, :2] - 0.5 * (pts[inner, :2] + pts[outer, :2])
            rel.append(np.array([d @ axis, d @ normal]) / width)
        axis, normal, width = _eye_axes(donor, outer, inner)
        delta = np.clip(rel[0] - rel[1], -0.25, 0.25) * width
        shifts.append(delta[0] * axis + delta[1] * normal)
    return shifts


def gazing_maps(maps: WarpMaps, openings: list[np.ndarray], shifts: list[np.ndarray]) -> WarpMaps:
    """``maps`` sampling, inside each eye opening (0/255, right then left), the donor's eyeball
    moved by that eye's shift from :func:`gaze_shifts`."""
    map_x, map_y = maps.map_x.copy(), maps.map_y.copy()
    for opening, shift in zip(openings, shifts, strict=True):
        a = blend.feather(opening, 0, 0.7)
        map_x -= np.float32(shift[0]) * a
        map_y -= np.float32(shift[1]) * a
    return replace(maps, map_x=map_x, map_y=map_y)


def with_shut_eyes(
    face: np.ndarray, shut_eyes: ShutEyes, shut: np.ndarray, maps: WarpMaps
) -> np.ndarray:
    """The warped donor ``face`` faded, eye by eye, to the donor's shut-eye texture warped by
    the same ``maps``, by ``shut`` (right, left: 0 open .. 1 shut; see :class:`ShutFade`)."""
    weight = sum(k * apply_maps(mask, maps) for k, mask in zip(shut, shut_eyes.masks, strict=True))[
        ..., None
    ]
    shut_px = apply_maps(shut_eyes.image, maps)
    return (face * (1 - weight) + shut_px * weight).astype(np.uint8)


def iris_disc(shape_hw: tuple[int, int], lm: np.ndarray, left: bool) -> np.ndarray:
    """A 0/255 disc over one iris (centre point 468 or 473, radius from its 4 rim points)."""
    c = 473 if left else 468
    centre = lm[c, :2]
    radius = float(np.mean(np.linalg.norm(lm[c + 1 : c + 5, :2] - centre, axis=1)))
    mask = np.zeros(shape_hw, np.uint8)
    cv2.circle(
        mask,
        tuple(np.round(centre * 4).astype(int)),
        int(round(radius * 1.1 * 4)),
        255,
        -1,
        lineType=cv2.LINE_AA,
        shift=2,
    )
    return mask
