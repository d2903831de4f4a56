"""What lies around and over the drawn face: the hands in front of it and the ring around it.

Hands are kept as the frame's own because their keypoints are measured; the ring (hair, ears,
the face's outline) is blurred because a face recogniser still matched the patient by it after
the inner face was swapped.
"""

from __future__ import annotations

import cv2
import numpy as np

from medswap.swap import blend

#: MediaPipe hand landmarks: palm outline and the joint chains of the five fingers.
_PALM = [0, 1, 5, 9, 13, 17]
_FINGERS = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20]]


def hand_mask(hand: np.ndarray, mask: np.ndarray) -> None:
    """Draw a hand (21 landmarks, pixel coordinates of ``mask``) as palm plus thick fingers.

    Not the convex hull: between spread fingers the face behind must still be swapped, or the
    patient's face shows through the gaps (a leak measured on hand_open_close.mp4).
    """
    palm_width = float(np.linalg.norm(hand[5] - hand[17]))
    width = max(2, int(round(0.3 * palm_width)))
    palm = cv2.convexHull(np.round(hand[_PALM] * 4).astype(np.int32))
    cv2.fillConvexPoly(mask, palm, 255, lineType=cv2.LINE_AA, shift=2)
    for chain in _FINGERS:
        pts = hand[chain].copy()
        pts[-1] = pts[-1] + 0.35 * (pts[-1] - pts[-2])  # the fingertip lies past its landmark
        cv2.polylines(
            mask,
            [np.round(pts * 4).astype(np.int32)],
            False,
            255,
            width,
            lineType=cv2.LINE_AA,
            shift=2,
        )


def hands_clear(
    shape_hw: tuple[int, int],
    hands: list[np.ndarray] | None,
    origin: tuple[float, float],
    scale: np.ndarray,
) -> np.ndarray | None:
    """0 over the hands, 1 elsewhere (softened by a pixel), in a box at ``origin`` of the frame
    scaled by ``scale``; None where no hand falls in the box.

    Whatever is drawn over the face (the donor, the blurred ring) is multiplied by this, so a
    hand in front of the face stays the frame's own.
    """
    if not hands:
        return None
    occl = np.zeros(shape_hw, np.uint8)
    for hand in hands:
        hand_mask((hand - origin) * scale, occl)
    if not occl.any():
        return None
    return 1.0 - blend.feather(occl, 0, 1.0)


def _down_the_face(
    shape_hw: tuple[int, int], top: np.ndarray, chin: np.ndarray
) -> np.ndarray | None:
    """Each pixel's place along the face's own axis: 0 on the line through the top of the
    outline, 1 on the line through the chin (None for a degenerate face)."""
    axis = chin - top
    length = float(np.linalg.norm(axis))
    if length < 1e-6:
        return None
    axis = axis / length
    yy, xx = np.mgrid[0 : shape_hw[0], 0 : shape_hw[1]].astype(np.float32)
    return ((xx - top[0]) * axis[0] + (yy - top[1]) * axis[1]) / length


def forehead_ramp(shape_hw: tuple[int, int], lm: np.ndarray, fade: float) -> np.ndarray:
    """0 at the top of the face outline rising to 1 ``fade`` face-heights below it.

    A portrait donor's mesh often ends in the hair (fringes), so the band just below the top
    of its face outline can be hair, not skin; the patient's own forehead shows there instead.
    """
    t = _down_the_face(shape_hw, lm[10, :2], lm[152, :2])
    if t is None:
        return np.ones(shape_hw, np.float32)
    return np.clip(t / fade, 0.0, 1.0).astype(np.float32)


#: Face heights over which the ring fades out above the neck.
NECK_FADE = 0.2


def above_the_neck(
    shape_hw: tuple[int, int], top: np.ndarray, chin: np.ndarray, below: float
) -> np.ndarray:
    """1 down to ``NECK_FADE`` face heights above the line ``below`` face heights under the
    chin, falling to 0 on that line (in the face's own up-down direction, so a tilted head
    tilts the line with it; a negative ``below`` puts it above the chin)."""
    t = _down_the_face(shape_hw, top, chin)
    if t is None:
        return np.ones(shape_hw, np.float32)
    return np.clip((1.0 + below - t) / NECK_FADE, 0.0, 1.0).astype(np.float32)


def neck_of(
    drawn: np.ndarray, patient: np.ndarray, below: float | None
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The ring's limit at the neck for :func:`blur_context` (None: the whole ring): the drawn
    face's top, and the lower of the drawn chin and the patient's, since the neck starts below
    both (mesh points 10 and 152 of the ``drawn`` and ``patient`` landmarks in the frame)."""
    if below is None:
        return None
    top, chin, own = drawn[10, :2], drawn[152, :2], patient[152, :2]
    if (own - chin) @ (chin - top) > 0:
        chin = own
    return top, chin, below


def blur_context(
    frame: np.ndarray,
    outline: np.ndarray,
    face_alpha: np.ndarray,
    face_box: tuple[int, int, int, int],
    hands: list[np.ndarray] | None,
    reach: float,
    sigma: float,
    margin: float = 0.0,
    neck: tuple[np.ndarray, np.ndarray, float] | None = None,
) -> None:
    """Blur the ring around a drawn face, in place: from the face (``face_alpha``, placed at
    ``face_box``) out to the face ``outline`` scaled by ``reach`` about its centre.

    The blur is computed at a scale where the face is about 64 pixels wide: it keeps no detail
    finer than that, so its cost does not grow with the face. Hands stay sharp, because their
    keypoints are measured. With ``neck`` (the outline's top and chin points, and how far
    below the chin the ring may reach, in face heights) the neck and shoulders stay sharp too:
    the pose model reads the shoulders from them, and a recogniser's face crop ends near the
    chin.
    """
    h, w = frame.shape[:2]
    centre = outline.mean(0)
    outer = centre + reach * (outline - centre)
    face_w = float(np.ptp(outline[:, 0]))
    # The ring's edge fades over a tenth of the face; the box holds all of the fade.
    fade = 0.1 * face_w
    bx0, by0 = np.floor(outer.min(0) - 2 * fade).astype(int)
    bx1, by1 = np.ceil(outer.max(0) + 2 * fade).astype(int) + 1
    bx0, by0, bx1, by1 = int(max(0, bx0)), int(max(0, by0)), int(min(w, bx1)), int(min(h, by1))
    if bx1 - bx0 < 4 or by1 - by0 < 4 or face_w < 4:
        return
    g = min(1.0, 64.0 / face_w)
    sw, sh = max(4, round((bx1 - bx0) * g)), max(4, round((by1 - by0) * g))
    scale = np.array([sw / (bx1 - bx0), sh / (by1 - by0)])
    box = frame[by0:by1, bx0:bx1]
    small = blend.shrink(box, (sw, sh))
    blurred = blend.gaussian_blur(small, sigma * face_w * g)
    outer_small = (outer - (bx0, by0)) * scale
    weight = blend.feather(blend.polygon_mask((sh, sw), outer_small), 0, fade * g / 2)
    if (clear := hands_clear((sh, sw), hands, (bx0, by0), scale)) is not None:
        weight *= clear
    if neck is not None:
        top, chin, below = neck
        origin = np.array([bx0, by0])
        weight *= above_the_neck((sh, sw), (top - origin) * scale, (chin - origin) * scale, below)
    size = (bx1 - bx0, by1 - by0)
    blurred = cv2.resize(blurred, size, interpolation=cv2.INTER_LINEAR)
    weight = cv2.resize(weight, size, interpolation=cv2.INTER_LINEAR)
    # Not over the face just drawn: the ring is what lies outside it.
    fx0, fy0, fx1, fy1 = face_box
    ix0, iy0, ix1, iy1 = max(fx0, bx0), max(fy0, by0), min(fx1, bx1), min(fy1, by1)
    if ix1 > ix0 and iy1 > iy0:
        inside = face_alpha[iy0 - fy0 : iy1 - fy0, ix0 - fx0 : ix1 - fx0]
        if margin > 0:
            inside = _grown(inside, margin * face_w, g)
        weight[iy0 - by0 : iy1 - by0, ix0 - bx0 : ix1 - bx0] *= 1.0 - inside
    frame[by0:by1, bx0:bx1] = blend.composite(box, blurred, weight)


def _grown(alpha: np.ndarray, by: float, g: float) -> np.ndarray:
    """``alpha`` dilated by ``by`` pixels (a disc), computed at scale ``g`` like the ring.

    A disc as wide as a tenth of the face is a large kernel at full size; at the ring's own
    scale it is a few pixels, and the band it marks is no sharper than the ring's fade.
    """
    h, w = alpha.shape[:2]
    sw, sh = max(1, round(w * g)), max(1, round(h * g))
    small = (
        alpha if (sw, sh) == (w, h) else cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA)
    )
    k = 2 * max(1, round(by * g)) + 1
    small = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if (sw, sh) == (w, h):
        return small
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def nonzero_box(weight: np.ndarray) -> tuple[int, int, int, int] | None:
    """The (x0, y0, x1, y1) box holding every non-zero pixel of ``weight``, or None if none."""
    rows, cols = np.flatnonzero(weight.any(axis=1)), np.flatnonzero(weight.any(axis=0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
