"""The mesh swap: the donor's face, moved by the patient's face mesh, frame by frame.

For each tracked face the donor texture is warped, triangle by triangle in one remap, onto the
patient's 468 mesh points of this frame, so the patient's head pose, expression, blinks and
mouth motion drive the donor face. The inside of the mouth opening (teeth, tongue) is kept
from the frame. The eyes are the donor's: as the patient's lids close, each eye fades to a
shut-eye version of the donor (see :mod:`medswap.swap.eyes`), so blinks show; the patient's
irises are not drawn by default, because a face recogniser matched the patient by them
(``keep_eyes``). Hands in front of the face stay in front.

``shape`` (0..1) replaces the patient's resting face shape by the donor's, the face outline,
jaw and face width included: per track, the patient's resting shape is estimated online (the
running median of their pose-normalised mesh, :mod:`medswap.swap.neutral`), and the geometry
drawn is ``patient + shape * (donor resting shape - patient resting shape)``, in a frame
normalised for head pose. At 1 that is the donor's resting face plus the patient's deformation
from their own (expression, blinks, speech), under the patient's head pose: the patient's
resting shape, which a face recogniser in a lineup reads, does not reach the output, except the
mouth: by default it is the patient's, moved as a whole to where the donor's is
(:func:`mouth_as_whole`; ``donor_mouth`` takes the donor's lips and keeps only the patient's
inner-lip gap, :func:`keep_mouth_gap`). Across each eye the offset is
scaled by how open the eye is, so it never holds a shut eye open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from medswap.faces.mesh import FACE_OVAL, INNER_LIPS, LEFT_EYE, RIGHT_EYE, RIGID_POINTS
from medswap.geometry import similarity_transform, transform_points
from medswap.swap import blend
from medswap.swap.detail import (
    ExpressionDetail,
    ShapeFreeFrame,
    apply_ratio,
    patient_shape_free,
    shape_free_frame,
)
from medswap.swap.donors import N_TRI_POINTS, Donor
from medswap.swap.eyes import (
    gaze_shifts,
    gazing_maps,
    iris_disc,
    lid_offset,
    openness,
    with_shut_eyes,
)
from medswap.swap.geometry import (
    WarpMaps,
    apply_maps,
    triangulate,
    warp_maps,
)
from medswap.swap.neutral import NeutralShape
from medswap.swap.surround import blur_context, forehead_ramp, hands_clear, neck_of, nonzero_box

#: The donor face is synthesised with the face at most this many pixels wide.
WORK_WIDTH = 200


@dataclass(frozen=True)
class SwapSettings:
    """How the swap blends. Defaults were chosen on the shared clips (see README)."""

    # 0 keeps the patient's face geometry; 1 (the default): the donor's resting shape, outline
    # and jaw included, moved by the patient's deformation from their own (README "Privacy")
    shape: float = 1.0
    # True: the donor's mouth shape too (width, lips), with the patient's inner-lip gap; False
    # (default): the patient's mouth, moved as a whole to where the donor's is. The donor's
    # lips made the face mesh read mouth openings 31% smaller on expression_c (README "Lineup")
    # and a recogniser read little in the lips (the identity ablation).
    donor_mouth: bool = False
    # "gaze": the donor's eyeball moved to look where the patient looks; from the frame:
    # "opening" (the whole eye), "iris" (the patient's irises); "none": the donor's eyes.
    keep_eyes: str = "none"
    blink: bool = True  # fade the donor's eyes to a shut-eye texture as the patient's close
    keep_mouth: bool = True  # teeth and tongue from the frame
    relight: float = 1.0  # 0: donor's own shading, 1: the scene's low-frequency light
    relight_sigma: float = 1.0  # x face width: coarser keeps less of the patient's shading
    edge_erode: float = 0.04  # x face width
    edge_blur: float = 0.035  # x face width
    # x face size: donor skin reaches this far past the mesh outline (the patient's cheek and
    # jaw contour beside a narrower donor face is what a recogniser reads: README "Privacy")
    outline_grow: float = 0.2
    # x face height: the top of the forehead fades to the patient's (0: the hairline fringe is
    # covered to the outline's top, which a recogniser read on the shared clips)
    forehead_fade: float = 0.0
    colour_smoothing: float = 0.7  # per-track EMA weight of the previous frame's statistics
    # x face size about the outline's centre: the head's surroundings (hair, hairline, ears,
    # the outline's silhouette against the background) out to this reach are blurred, hands
    # excepted; 0 turns it off. What a recogniser still read after the donor's face was drawn
    # was this context (README "Lineup", the identity ablation), not the face inside it.
    context_reach: float = 1.7
    context_blur: float = 0.08  # x face width: the blur's sigma
    context_margin: float = 0.1  # x face width: a sharp band kept between face and ring
    # x face height below the chin: the ring ends on this line (surround.above_the_neck); None:
    # the whole ring. Neck and shoulders are the body's: blurred, they moved the pose model's
    # shoulders and arms (README "Body keypoints and the context ring").
    context_below: float | None = 0.0
    # The patient's expression shading (forehead lines, folds, lid shadows) multiplied onto the
    # donor's skin as a ratio image (medswap.swap.detail); 0 turns it off.
    detail: float = 0.0
    detail_fine: float = 0.02  # x face width: finer than this (pores, marks) is not carried
    detail_coarse: float = 0.25  # x face width: coarser than this is light, relight's job
    detail_clip: float = 0.3  # largest log gain: the ratio brightens or darkens by 35% at most
    detail_smoothing: float = 0.5  # per-track EMA weight of the previous frame's ratio


@dataclass
class _TrackState:
    donor: Donor
    colour: np.ndarray | None = None  # (2, 2, 3): donor and target Lab stats, smoothed
    # The track's resting shape, pose-normalised onto the donor (see medswap.swap.neutral).
    neutral_shape: NeutralShape = field(default_factory=NeutralShape)
    neutral: np.ndarray | None = None
    eye_openness: np.ndarray = field(default_factory=lambda: np.ones(2))  # right, left: 0..1
    detail: ExpressionDetail = field(default_factory=ExpressionDetail)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Region:
    """Where one face is drawn: its box in the frame, and the working resolution at which the
    donor face is synthesised (the box scaled so the face is at most WORK_WIDTH pixels wide)."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the frame
    f: float  # the working scale: 1 at full resolution, below 1 reduced
    work_size: tuple[int, int]  # the box's width and height at the working resolution
    scale: np.ndarray  # (2,): working pixels per frame pixel, x and y
    face_w: float  # the drawn face's width in working pixels

    @property
    def size(self) -> tuple[int, int]:
        """The box's width and height in the frame."""
        x0, y0, x1, y1 = self.box
        return x1 - x0, y1 - y0

    def local(self, p: np.ndarray) -> np.ndarray:
        """Points from the frame into the working region (x, y scaled; depth as it is)."""
        out = p.copy()
        out[:, :2] = (p[:, :2] - self.box[:2]) * self.scale
        return out


def working_region(frame_hw: tuple[int, int], target: np.ndarray, mesh: np.ndarray) -> _Region:
    """The region of a frame (height, width) where the ``target`` landmarks are drawn: the box
    of the ``mesh`` points (outline ring included) with a small margin, clipped to the frame.

    Raises ValueError when the box is under 4 pixels wide or high.
    """
    h, w = frame_hw
    face_w = float(np.ptp(target[:N_TRI_POINTS, 0]))
    x0, y0 = np.floor(mesh[:, :2].min(0)).astype(int) - 2
    x1, y1 = np.ceil(mesh[:, :2].max(0)).astype(int) + 3
    x0, y0, x1, y1 = int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1))
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise ValueError("face too small to swap")
    f = min(1.0, WORK_WIDTH / max(face_w, 1.0))
    sw, sh = max(4, round((x1 - x0) * f)), max(4, round((y1 - y0) * f))
    scale = np.array([sw / (x1 - x0), sh / (y1 - y0)])
    return _Region((x0, y0, x1, y1), f, (sw, sh), scale, face_w * scale[0])


@dataclass(frozen=True)
class _Face:
    """One face to draw: its region, and the frame and its points at the working resolution."""

    region: _Region
    roi: np.ndarray  # the frame's pixels in the region's box (a view of the frame)
    pixels: np.ndarray  # roi at the working resolution
    target: np.ndarray  # the landmarks drawn (the patient's, with the donor's resting shape)
    patient: np.ndarray  # the frame's own landmarks
    mesh: np.ndarray  # the points the donor is warped onto: target's mesh and outline ring
    frame_target: np.ndarray  # target, in the frame
    frame_patient: np.ndarray  # patient, in the frame

    @property
    def shape_hw(self) -> tuple[int, int]:
        return self.pixels.shape[:2]


@dataclass(frozen=True)
class _Masks:
    """Where the donor face goes, at the working resolution."""

    skin: np.ndarray  # 0/255: the donor face's skin (no openings): its colour statistics
    patient_skin: np.ndarray  # 0/255: the patient's skin in the frame, likewise
    alpha: np.ndarray  # 0..1: the donor face over the frame (feathered; hands left out)
    keep_alpha: np.ndarray | None  # 0..1: the patient's own openings over it; None: none kept


def with_outline_ring(lm: np.ndarray, grow: float, inward: bool = False) -> np.ndarray:
    """The 468 mesh points plus a ring of the face outline pushed out by ``grow``.

    The ring lets the donor's skin cover the band along the patient's face outline, where the
    cheek and jaw contour carries identity. For the donor the ring is pulled slightly *inward*
    instead, so that band is filled by stretching the donor's own edge skin, never the donor
    portrait's hair or background.
    """
    pts = lm[:N_TRI_POINTS]
    oval = lm[FACE_OVAL]
    centre = oval[:, :2].mean(axis=0)
    ring = oval.copy()
    factor = 0.97 if inward else 1.0 + grow
    ring[:, :2] = centre + (oval[:, :2] - centre) * factor
    return np.concatenate([pts, ring])


#: Mouth landmarks: the corners, and the middle of the upper and lower inner lip.
_MOUTH_CORNERS, _MOUTH_MID = (61, 291), (13, 14)
#: The upper and lower outer-lip midpoints: how far the lips reach above and below the mouth.
_LIP_TOP, _LIP_BOTTOM = 0, 17


def mouth_as_whole(offset: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The shape offset with the mouth moved as a whole: its position changes, its shape not.

    How far the mouth opens is expression, and a clinical measure (speech, hypomimia), not
    identity. A donor portrait's mouth is closed and thin-lipped, and a patient's neutral mouth
    is often open (a child's, on expression_b.mp4), so a per-point offset closed every opening
    by the neutral gap and thinned the lips: the face mesh then read the swapped mouth's
    opening range 10-18% smaller on expression_b, even with the gap itself kept. Here every
    point of the lips (a box from corner to corner and a lip height above and below the mouth
    line, in ``reference``) takes the lips' mean offset, fading to the plain offset at twice
    that box, so the mouth goes where the donor's is but opens exactly as the patient's does.
    """
    pts = reference[:N_TRI_POINTS, :2]
    left, right = pts[_MOUTH_CORNERS[0]], pts[_MOUTH_CORNERS[1]]
    half_width = max(float(np.linalg.norm(right - left)) / 2.0, 1e-6)
    axis = (right - left) / (2.0 * half_width)
    down = np.array([-axis[1], axis[0]])
    centre = pts[list(_MOUTH_MID)].mean(axis=0)
    if (pts[_LIP_BOTTOM] - centre) @ down < 0:  # the normal points toward the chin
        down = -down
    t, u = (pts - centre) @ axis, (pts - centre) @ down
    reach = np.where(u > 0, (pts[_LIP_BOTTOM] - centre) @ down, (centre - pts[_LIP_TOP]) @ down)
    weight = np.clip(2.0 - np.abs(u) / np.maximum(reach, 1e-6), 0.0, 1.0) * np.clip(
        2.0 - np.abs(t) / half_width, 0.0, 1.0
    )
    inside = weight >= 1.0
    out = offset.copy()
    mean = offset[:N_TRI_POINTS][inside].mean(axis=0)
    out[:N_TRI_POINTS] = offset[:N_TRI_POINTS] * (1.0 - weight[:, None]) + mean * weight[:, None]
    return out


#: The lower lip (its four rings, corners left out): it moves with the jaw, below the opening.
_LOWER_LIP = [
    *(146, 91, 181, 84, 17, 314, 405, 321, 375),
    *(95, 88, 178, 87, 14, 317, 402, 318, 324),
    *(77, 90, 180, 85, 16, 315, 404, 320, 307),
    *(96, 89, 179, 86, 15, 316, 403, 319, 325),
]
#: The upper lip's four rings, and the mouth corners of each ring (half way between the two).
_UPPER_LIP = [
    *(185, 40, 39, 37, 0, 267, 269, 270, 409),
    *(191, 80, 81, 82, 13, 312, 311, 310, 415),
    *(184, 74, 73, 72, 11, 302, 303, 304, 408),
    *(183, 42, 41, 38, 12, 268, 271, 272, 407),
]
_LIP_CORNERS = [61, 291, 78, 308, 76, 306, 62, 292]


def keep_mouth_gap(offset: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The shape offset with the lower lip moved so that the mouth opens as the patient's does.

    How far the mouth opens is motion (speech, hypomimia), not identity. The plain offset from
    the patient's resting shape to the donor's adds the donor's resting lip gap and takes away
    the patient's (a donor portrait's mouth is closed; a child's resting mouth is often open,
    expression_b.mp4), so every opening would shrink or grow by the difference. Here the lower
    lip, and the chin below it fading out over one lip height, takes the offset of the upper
    lip's middle across the mouth line (in ``reference``, the donor's frame): the mouth's
    width, the lips' shape and thickness and the mouth's place are the donor's, and the inner-lip
    gap stays exactly the patient's. The patient's resting gap is the one part of their resting
    shape that the output keeps.
    """
    pts = reference[:N_TRI_POINTS, :2]
    left, right = pts[_MOUTH_CORNERS[0]], pts[_MOUTH_CORNERS[1]]
    half_width = max(float(np.linalg.norm(right - left)) / 2.0, 1e-6)
    axis = (right - left) / (2.0 * half_width)
    down = np.array([-axis[1], axis[0]])
    centre = pts[list(_MOUTH_MID)].mean(axis=0)
    if (pts[_LIP_BOTTOM] - centre) @ down < 0:  # the normal points toward the chin
        down = -down
    t, u = (pts - centre) @ axis, (pts - centre) @ down
    reach = max(float((pts[_LIP_BOTTOM] - centre) @ down), 1e-6)
    weight = np.where(u > 0, np.clip(2.0 - u / reach, 0.0, 1.0), 0.0)
    weight *= np.clip(2.0 - np.abs(t) / half_width, 0.0, 1.0)
    # On a closed mouth both lips lie on the mouth line: say which is which.
    weight[_LOWER_LIP], weight[_UPPER_LIP], weight[_LIP_CORNERS] = 1.0, 0.0, 0.5
    opens = float((offset[_MOUTH_MID[1]] - offset[_MOUTH_MID[0]]) @ down)
    out = offset.copy()
    out[:N_TRI_POINTS] -= weight[:, None] * opens * down[None, :]
    return out


class MeshSwapper:
    """Swaps faces frame by frame; keeps per-track state (colour, neutral shape)."""

    def __init__(self, settings: SwapSettings | None = None) -> None:
        self.settings = settings or SwapSettings()
        self._tracks: dict[int, _TrackState] = {}
        self._tri_cache: dict[str, np.ndarray] = {}
        self._shape_free: dict[str, ShapeFreeFrame] = {}

    def reset(self) -> None:
        self._tracks.clear()

    def _donor_points(self, donor: Donor) -> np.ndarray:
        if self.settings.outline_grow > 0:
            return with_outline_ring(donor.landmarks, self.settings.outline_grow, inward=True)
        return donor.landmarks[:N_TRI_POINTS]

    def _mesh_points(self, lm: np.ndarray) -> np.ndarray:
        if self.settings.outline_grow > 0:
            return with_outline_ring(lm, self.settings.outline_grow)
        return lm[:N_TRI_POINTS]

    def _triangles(self, donor: Donor) -> np.ndarray:
        key = donor.fingerprint
        if key not in self._tri_cache:
            self._tri_cache[key] = triangulate(self._donor_points(donor))
        return self._tri_cache[key]

    def _with_detail(
        self,
        state: _TrackState,
        donor_px: np.ndarray,
        roi: np.ndarray,
        patient_points: np.ndarray,
        maps: WarpMaps,
    ) -> np.ndarray:
        """``donor_px`` with the patient's expression shading (see :mod:`medswap.swap.detail`)."""
        cfg, donor = self.settings, state.donor
        frame = self._shape_free.get(donor.fingerprint)
        if frame is None:
            frame = shape_free_frame(self._donor_points(donor), donor.landmarks)
            self._shape_free[donor.fingerprint] = frame
        face = patient_shape_free(roi, patient_points, frame, self._triangles(donor))
        log_ratio = state.detail.ratio(
            face,
            frame,
            cfg.detail_fine,
            cfg.detail_coarse,
            cfg.detail_clip,
            cfg.detail_smoothing,
        )
        return apply_ratio(donor_px, log_ratio, frame, maps, cfg.detail)

    def _shaped(self, state: _TrackState, lm: np.ndarray) -> np.ndarray:
        """The frame's landmarks with the track's identity shape replaced by the donor's.

        In a frame normalised for head pose (a similarity fit of the rigid points onto the
        donor's), the patient's points are their resting shape plus their deformation from it
        (expression, blinks, speech, and the foreshortening of a turned head). The offset from
        the track's resting shape to the donor's, outline and jaw included, swaps the first for
        the second: at ``shape`` 1 the geometry drawn is the donor's resting face plus the
        patient's deformation, under the patient's pose, and the patient's resting shape does
        not reach the output. Also keeps each eye's openness relative to the resting face,
        which the shut-eye texture needs whatever the shape setting.
        """
        donor_lm = state.donor.landmarks
        m = similarity_transform(lm[RIGID_POINTS], donor_lm[RIGID_POINTS])
        norm = transform_points(m, lm[:N_TRI_POINTS])[:, :2]
        state.neutral = state.neutral_shape.update(norm)
        state.eye_openness = openness(norm, state.neutral)
        s = self.settings.shape
        if s <= 0:
            return lm
        # How far the mouth opens stays the patient's (motion, not shape), and across each
        # eye the offset shrinks as the eye shuts (a blink stays a blink).
        mouth = keep_mouth_gap if self.settings.donor_mouth else mouth_as_whole
        offset = mouth(donor_lm[:N_TRI_POINTS, :2] - state.neutral, donor_lm)
        offset = lid_offset(offset, donor_lm, state.eye_openness)
        # Back into the frame: rotate and scale the offset by the inverse of m.
        a = m[:, :2]
        inv = np.linalg.inv(a)
        out = lm.copy()
        out[:N_TRI_POINTS, :2] = lm[:N_TRI_POINTS, :2] + s * (offset @ inv.T)
        # Irises follow their eye's centre.
        if len(lm) > N_TRI_POINTS:
            for eye, iris in ((RIGHT_EYE, range(468, 473)), (LEFT_EYE, range(473, 478))):
                shift = (out[eye, :2] - lm[eye, :2]).mean(0)
                out[list(iris), :2] = lm[list(iris), :2] + shift
        return out

    def swap(
        self,
        frame: np.ndarray,
        track_id: int,
        landmarks: np.ndarray,
        donor: Donor,
        hands: list[np.ndarray] | None = None,
    ) -> np.ndarray:
        """Swap one face in ``frame`` in place; returns the face region (x0, y0, x1, y1).

        The face is written only once it is complete, so an exception before that leaves the
        frame untouched; the context ring is blurred after it, over the face's surroundings.
        The donor face is synthesised at a working resolution (the donor texture holds no more
        detail than that) and composited at full resolution, so cost stays flat as faces grow.
        In stages: the working region, the donor warped onto it (eyes and detail included),
        the masks, and the composite with the context ring.
        """
        state = self._track(track_id, donor)
        target = self._shaped(state, landmarks)
        face = self._working_face(frame, target, landmarks)
        maps = self._donor_maps(donor, face)
        openings = [
            blend.polygon_mask(face.shape_hw, face.target[i]) for i in (RIGHT_EYE, LEFT_EYE)
        ]
        donor_px = self._donor_face(state, face, maps, openings)
        masks = self._masks(face, maps, openings, hands)
        self._composite(frame, state, face, donor_px, masks, hands)
        return np.array(face.region.box, dtype=np.float64)

    def _track(self, track_id: int, donor: Donor) -> _TrackState:
        """The track's state: a new one for a new track, or when its donor changed."""
        state = self._tracks.get(track_id)
        if state is None or state.donor is not donor:
            state = self._tracks[track_id] = _TrackState(donor)
        return state

    def _working_face(self, frame: np.ndarray, target: np.ndarray, landmarks: np.ndarray) -> _Face:
        """Region: where the ``target`` face is drawn, and what is under it, at working scale."""
        pts = self._mesh_points(target)
        region = working_region(frame.shape[:2], target, pts)
        x0, y0, x1, y1 = region.box
        roi = frame[y0:y1, x0:x1]
        local = region.local
        t_loc, o_loc, mesh_loc = local(target), local(landmarks), local(pts)
        # Read only for its colour statistics, its coarse light and ``detail``'s band.
        pixels = roi if region.f == 1.0 else blend.shrink(roi, region.work_size)
        return _Face(region, roi, pixels, t_loc, o_loc, mesh_loc, target, landmarks)

    def _donor_maps(self, donor: Donor, face: _Face) -> WarpMaps:
        """Warp: where each working pixel samples the donor image, triangle by triangle."""
        sw, sh = face.region.work_size
        return warp_maps(
            face.mesh,
            self._donor_points(donor),
            self._triangles(donor),
            (0, 0, sw, sh),
            depth=face.mesh[:, 2],
        )

    def _donor_face(
        self,
        state: _TrackState,
        face: _Face,
        maps: WarpMaps,
        openings: list[np.ndarray],
    ) -> np.ndarray:
        """The donor face warped onto the drawn mesh: its eyes turned where the patient looks
        (``keep_eyes`` "gaze") and shut as the patient's shut, then the patient's expression
        detail on its skin (``detail``)."""
        cfg, donor = self.settings, state.donor
        eye_maps = maps
        if cfg.keep_eyes == "gaze" and len(face.target) >= 478:
            eye_maps = gazing_maps(maps, openings, gaze_shifts(face.target, donor.landmarks))
        donor_px = apply_maps(donor.image, eye_maps)
        shut = donor.shut_fade(state.eye_openness) if cfg.blink else np.zeros(2)
        if shut.max() > 0.02:  # fainter moves a pixel by 5 levels at most: skip its 3 remaps
            # The patient's eye is closing: fade each eye to the donor's shut-eye texture.
            donor_px = with_shut_eyes(donor_px, donor.shut_eyes, shut, maps)
        if cfg.detail > 0:
            patient_pts = face.region.local(self._mesh_points(face.frame_patient))
            donor_px = self._with_detail(state, donor_px, face.pixels, patient_pts, maps)
        return donor_px

    def _masks(
        self,
        face: _Face,
        maps: WarpMaps,
        openings: list[np.ndarray],
        hands: list[np.ndarray] | None,
    ) -> _Masks:
        """Masks: the face alpha inside the drawn outline, less the forehead ramp and the
        hands in front; the skin (no openings) on both faces; the openings kept."""
        cfg, shape_hw, region = self.settings, face.shape_hw, face.region
        outline = face.mesh[N_TRI_POINTS:] if cfg.outline_grow > 0 else face.target[FACE_OVAL]
        face_mask = blend.polygon_mask(shape_hw, outline)
        face_mask[~maps.covered] = 0
        keep, patient_skin = self._kept_openings(face, openings)
        skin = face_mask.copy()
        if keep is not None:
            skin[keep > 0] = 0
        for opening in openings:  # eyes are not skin, whatever fills them
            skin[opening > 0] = 0
        alpha = blend.feather(
            face_mask, cfg.edge_erode * region.face_w, cfg.edge_blur * region.face_w
        )
        if cfg.forehead_fade > 0:
            alpha *= forehead_ramp(shape_hw, face.target, cfg.forehead_fade)
        if (clear := hands_clear(shape_hw, hands, region.box[:2], region.scale)) is not None:
            alpha *= clear
        keep_alpha = None
        if keep is not None:
            keep_alpha = blend.feather(keep, 0, max(0.6, 0.006 * region.face_w))
        return _Masks(skin, patient_skin, alpha, keep_alpha)

    def _kept_openings(
        self, face: _Face, openings: list[np.ndarray]
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Where the patient's own pixels stay (0/255; None: nowhere), and the patient's skin.

        Eye and mouth openings keep the patient's own pixels (moved with any shape offset):
        the whole eye opening or only the iris (``keep_eyes``), and the inside of the mouth.
        """
        cfg, shape_hw = self.settings, face.shape_hw
        eyes = [RIGHT_EYE, LEFT_EYE] if cfg.keep_eyes in ("opening", "iris") else []
        polys = eyes + ([INNER_LIPS] if cfg.keep_mouth else [])
        keep = np.zeros(shape_hw, np.uint8)
        patient_skin = blend.polygon_mask(shape_hw, face.patient[FACE_OVAL])
        for idx in polys:
            if idx in eyes:
                opening = openings[0 if idx is RIGHT_EYE else 1]
            else:
                opening = blend.polygon_mask(shape_hw, face.target[idx])
            if idx in eyes and cfg.keep_eyes == "iris" and len(face.target) >= 478:
                opening = np.minimum(opening, iris_disc(shape_hw, face.target, idx is LEFT_EYE))
            keep = np.maximum(keep, opening)
            patient_skin[blend.polygon_mask(shape_hw, face.patient[idx]) > 0] = 0
        return (keep if polys else None), patient_skin

    def _composite(
        self,
        frame: np.ndarray,
        state: _TrackState,
        face: _Face,
        donor_px: np.ndarray,
        masks: _Masks,
        hands: list[np.ndarray] | None,
    ) -> None:
        """Composite: the donor face in the patient's colour and light, blended into the frame at
        full resolution with the patient's kept openings, then the context ring blurred."""
        cfg, region = self.settings, face.region
        # Colour: donor skin statistics moved to the patient's, smoothed per track.
        face_rgb, state.colour = blend.into_patient_light(
            donor_px,
            masks.skin,
            face.pixels,
            masks.patient_skin,
            state.colour,
            cfg.colour_smoothing,
            cfg.relight,
            cfg.relight_sigma * region.face_w,
        )
        alpha, k_alpha = masks.alpha, masks.keep_alpha
        if region.f < 1.0:  # back to full resolution
            size = region.size
            face_rgb = cv2.resize(face_rgb, size, interpolation=cv2.INTER_LINEAR)
            alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)
            if k_alpha is not None:
                k_alpha = cv2.resize(k_alpha, size, interpolation=cv2.INTER_LINEAR)
        if k_alpha is not None and (kept := nonzero_box(k_alpha)) is not None:
            # The patient's own eye/mouth pixels only matter where k_alpha > 0: warping and
            # compositing just that box, not the whole face, saves a full-resolution warp.
            sub = np.s_[kept[1] : kept[3], kept[0] : kept[2]]
            own = self._own_pixels(frame, face, kept, state.donor)
            face_rgb[sub] = blend.composite(face_rgb[sub], own, k_alpha[sub])
        x0, y0, x1, y1 = region.box
        frame[y0:y1, x0:x1] = blend.composite(face.roi, face_rgb, alpha)
        if cfg.context_reach > 0:
            blur_context(
                frame,
                face.frame_target[FACE_OVAL, :2],
                alpha,
                region.box,
                hands,
                cfg.context_reach,
                cfg.context_blur,
                cfg.context_margin,
                neck_of(face.frame_target, face.frame_patient, cfg.context_below),
            )

    def _own_pixels(
        self,
        frame: np.ndarray,
        face: _Face,
        kept: tuple[int, int, int, int],
        donor: Donor,
    ) -> np.ndarray:
        """The patient's own pixels in the box ``kept`` of the face region, moved with any shape
        offset: from the frame's landmarks onto the drawn mesh."""
        bx0, by0, bx1, by1 = kept
        if not self.settings.shape > 0:
            return face.roi[by0:by1, bx0:bx1]
        x0, y0 = face.region.box[:2]
        box = (x0 + bx0, y0 + by0, x0 + bx1, y0 + by1)
        pts, tri = self._mesh_points(face.frame_target), self._triangles(donor)
        back = warp_maps(pts, self._mesh_points(face.frame_patient), tri, box, depth=pts[:, 2])
        return cv2.remap(
            frame, back.map_x, back.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
