"""Expression detail: the patient's expression shading carried onto the donor's skin.

A warped portrait does not fold when the patient raises the brows or smiles, so a landmark
model, and a rater, read less expression than there is. The classical answer is the expression
ratio image (Liu, Shan and Zhang, "Expressive Expression Mapping with Ratio Images", SIGGRAPH
2001): in a shape-free frame (here the donor's own mesh layout), the patient's current face
divided by the patient's own neutral face holds the shading that the expression causes
(forehead lines, folds beside the nose and mouth, a lid's shadow) while the patient's static
appearance cancels out. Multiplied onto the donor's texture, it gives the donor the patient's
expression detail, not the patient's identity.

What is kept of the ratio, and why:
- a band of spatial scales (``fine`` to ``coarse``, in face widths): finer than ``fine`` are
  pores, static marks and the mesh's registration error, which identify or flicker; coarser
  than ``coarse`` is the scene's light, which the relight step already carries;
- only luminance, so no colour of the patient's skin passes;
- a bounded gain (``clip``), smoothed over time, and nothing inside the eye and mouth openings
  (a closing lid or an opening mouth changes what is there, not its shading: the shut-eye
  texture and the mouth's own pixels carry those).

The neutral face is the running median of the track's shape-free faces
(:class:`medswap.swap.neutral.NeutralShape`, the same flat-memory reservoir as the resting
shape), so the first frames carry no detail and a held expression shorter than half the track
does not become the neutral.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from medswap.faces.mesh import FACE_OVAL, INNER_LIPS, LEFT_EYE, RIGHT_EYE
from medswap.swap import blend
from medswap.swap.geometry import WarpMaps, apply_maps, warp_maps
from medswap.swap.neutral import NeutralShape

#: Face width (pixels) of the shape-free frame: the detail kept is coarser than this resolves.
DETAIL_WIDTH = 96
#: Shape-free faces kept per track for the neutral (32 x 96 x ~120 float64: 3 MB).
NEUTRAL_SAMPLES = 32


@dataclass(frozen=True)
class ShapeFreeFrame:
    """The donor's mesh layout at ``DETAIL_WIDTH``: where the ratio image is computed.

    ``points`` are the donor's mesh points (outline ring included) in this frame's pixels,
    ``origin`` and ``scale`` map donor-image pixels into it, and ``weight`` (0..1) is where a
    ratio applies: the face, faded at its outline, without the eye and mouth openings.
    """

    points: np.ndarray
    origin: np.ndarray
    scale: float
    size: tuple[int, int]  # (width, height)
    weight: np.ndarray


def shape_free_frame(donor_points: np.ndarray, donor_landmarks: np.ndarray) -> ShapeFreeFrame:
    """The shape-free frame of one donor (``donor_points``: its mesh as the warp uses it)."""
    xy = donor_points[:, :2]
    face_w = max(float(np.ptp(donor_landmarks[FACE_OVAL, 0])), 1.0)
    scale = DETAIL_WIDTH / face_w
    pad = 2.0 / scale
    origin = xy.min(0) - pad
    size = tuple(int(v) for v in np.ceil((xy.max(0) + pad - origin) * scale))
    points = donor_points.copy()
    points[:, :2] = (xy - origin) * scale
    lm = (donor_landmarks[:, :2] - origin) * scale
    hw = (size[1], size[0])
    face = blend.polygon_mask(hw, lm[FACE_OVAL])
    holes = np.zeros(hw, np.uint8)
    for idx in (RIGHT_EYE, LEFT_EYE, INNER_LIPS):
        holes = np.maximum(holes, blend.polygon_mask(hw, lm[idx]))
    k = 2 * max(1, round(0.03 * DETAIL_WIDTH)) + 1
    holes = cv2.dilate(holes, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    weight = blend.feather(face, 0.06 * DETAIL_WIDTH, 0.04 * DETAIL_WIDTH)
    weight *= 1.0 - blend.feather(holes, 0, 0.02 * DETAIL_WIDTH)
    return ShapeFreeFrame(points, origin, scale, size, weight.astype(np.float32))


def band_log(gray: np.ndarray, fine: float, coarse: float) -> np.ndarray:
    """log of the image's band between ``fine`` and ``coarse`` (Gaussian sigmas, pixels)."""
    g = gray.astype(np.float32) + 1.0
    low = cv2.GaussianBlur(g, (0, 0), fine) if fine >= 0.3 else g
    return np.log(low) - np.log(cv2.GaussianBlur(g, (0, 0), coarse))


@dataclass
class ExpressionDetail:
    """One track's expression detail: its neutral shape-free face and last ratio (log)."""

    neutral: NeutralShape = field(default_factory=lambda: NeutralShape(NEUTRAL_SAMPLES))
    previous: np.ndarray | None = None

    def ratio(
        self,
        face: np.ndarray,
        frame: ShapeFreeFrame,
        fine: float,
        coarse: float,
        clip: float,
        smoothing: float,
    ) -> np.ndarray:
        """This frame's log ratio image in the shape-free frame (0 where there is none).

        ``face`` is the patient's face warped into ``frame`` (uint8 RGB, 0 outside the mesh).
        """
        gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
        current = band_log(gray, fine * DETAIL_WIDTH, coarse * DETAIL_WIDTH)
        neutral = self.neutral.update(current)
        log_ratio = np.clip(current - neutral, -clip, clip) * frame.weight
        if self.previous is not None and self.previous.shape == log_ratio.shape:
            log_ratio = smoothing * self.previous + (1.0 - smoothing) * log_ratio
        self.previous = log_ratio.astype(np.float32)
        return self.previous


def patient_shape_free(
    roi: np.ndarray, patient_points: np.ndarray, frame: ShapeFreeFrame, triangles: np.ndarray
) -> np.ndarray:
    """The patient's face in ``roi`` (its mesh ``patient_points`` there) in the shape-free frame."""
    maps = warp_maps(frame.points, patient_points, triangles, (0, 0, *frame.size))
    return apply_maps(roi, maps)


def apply_ratio(
    donor_px: np.ndarray,
    log_ratio: np.ndarray,
    frame: ShapeFreeFrame,
    maps: WarpMaps,
    strength: float,
) -> np.ndarray:
    """The warped donor face (``donor_px``, through ``maps``) with the ratio multiplied in."""
    map_x = (maps.map_x - np.float32(frame.origin[0])) * np.float32(frame.scale)
    map_y = (maps.map_y - np.float32(frame.origin[1])) * np.float32(frame.scale)
    r = cv2.remap(log_ratio, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    r[~maps.covered] = 0.0
    gain = np.exp(np.float32(strength) * r)[..., None]
    return np.clip(donor_px.astype(np.float32) * gain, 0, 255).astype(np.uint8)
