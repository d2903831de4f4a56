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
   to it eye by eye as the patient's eye closes (:func:`shut_eye_texture`, :func:`shut_weight`);
3. the tracker's smoothing leaves the lids' motion relative to the eye corners as measured
   (:func:`medswap.faces.track.keep_fast_motion`): smoothed, a blink was half as deep and late.

:func:`gaze_shifts` turns the donor's eyes where the patient looks (``--eyes gaze``), an
option and not the default, because it gives a recogniser the patient's gaze in every frame.
On a warped donor face :func:`with_shut_eyes` fades to the shut-eye texture and
:func:`gazing_maps` turns the eyeballs; :func:`iris_disc` marks an iris (``--eyes iris``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from medswap.faces.mesh import LEFT_EYE, RIGHT_EYE
from medswap.swap import blend
from medswap.swap.geometry import WarpMaps, apply_maps

#: Per eye: outer and inner corner, then upper-lid and lower-lid points facing each other.
EYES = tuple((eye[0], eye[8], eye[1:8], eye[15:8:-1]) for eye in (RIGHT_EYE, LEFT_EYE))
#: How open a donor eye still looks when the patient's lids are shut and the warp has squeezed
#: the donor's lashes and lid margins together (0 shut .. 1 fully open). Measured 0.58-0.77
#: (tests/test_eyes.py's portraits, eye aspect ratio on MediaPipe's mesh); 0.5 was chosen on
#: expression_a/b.mp4 (0.7 and 0.9 counted more false blinks while the patient's lids were
#: held half-lowered: the fade then flickers between looking open and looking shut).
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


def openness(pts: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """Each eye's opening relative to the neutral face's, in 0..1 (wider than neutral is 1)."""
    return np.clip(eye_openings(pts) / np.maximum(eye_openings(neutral), 1e-6), 0.0, 1.0)


def shut_weight(eye_openness: np.ndarray) -> np.ndarray:
    """How much of the shut-eye texture each eye shows: 0 open .. 1 shut.

    Chosen so the swapped eye looks as open as the patient's: a squeezed donor eye looks
    ``r + (1 - r) * o`` open at openness ``o`` (``r`` = :data:`SQUEEZED_LOOKS_OPEN`), and
    fading ``w`` of it to the shut texture leaves ``(1 - w)`` of that, so ``w = 1 - o / (r +
    (1 - r) o)``. A step from open to shut instead made half-lowered lids (looking down) look
    shut, and the blink that followed no longer stood out.
    """
    o = np.clip(eye_openness, 0.0, 1.0)
    r = SQUEEZED_LOOKS_OPEN
    return np.clip(1.0 - o / (r + (1.0 - r) * o), 0.0, 1.0)


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
    the same ``maps``, by ``shut`` (right, left: 0 open .. 1 shut; see :func:`shut_weight`)."""
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
