"""Every way a tracked face is drawn over, behind one interface: :class:`FaceRenderer`.

The swap (mesh or learned engine), the baselines it is judged against (blur, pixelate, mask)
and the fail-closed obscuring all take a frame and one tracked face and change the frame in
place. The configuration picks one renderer per run (:func:`renderer_for`); the frame loop
calls it for every face and never asks which it is. The swap renderer is also the privacy
rule's last word for a face it cannot draw: it hands the face to :class:`Obscure` with the
:class:`~medswap.types.Reason`, so no face leaves here as it came in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from medswap.faces.mesh import head_yaw_ratio, occluding_hands
from medswap.swap import obscure as obs
from medswap.swap.donors import Donor
from medswap.types import MIN_SWAP_WIDTH, FaceStatus, FaceTrackState, Reason

#: Beyond this head turn (0 frontal .. 1 profile) the warp folds: obscure instead.
MAX_YAW = 0.75


@dataclass(frozen=True)
class Rendering:
    """What a renderer did to one face: its status, why if obscured, the donor, hands kept."""

    status: FaceStatus
    reason: str = ""
    donor: str | None = None
    #: Hands over the face's box kept in front of the swap (the frames a reviewer should see).
    hands_in_front: int = 0


class FaceRenderer(Protocol):
    """Draws over one tracked face in ``image``, in place, and says what it did."""

    def render(
        self, image: np.ndarray, face: FaceTrackState, hands: list[np.ndarray]
    ) -> Rendering: ...


@dataclass(frozen=True)
class Obscure:
    """The privacy floor: a face that may be there but cannot be swapped is hidden, with why."""

    reason: str = ""

    def render(self, image: np.ndarray, face: FaceTrackState, hands: list[np.ndarray]) -> Rendering:
        obs.obscure(image, face.box)
        return Rendering(FaceStatus.OBSCURED, self.reason)


@dataclass(frozen=True)
class Baseline:
    """A traditional method (``blur``, ``pixelate`` or ``mask``) on the swap's face region."""

    method: str
    strength: float
    mask_shape: str = "ellipse"

    def render(self, image: np.ndarray, face: FaceTrackState, hands: list[np.ndarray]) -> Rendering:
        obs.apply_in_region(
            image,
            face.box,
            self.method,
            self.strength,
            shape=self.mask_shape,
            landmarks=face.landmarks,
        )
        return Rendering(FaceStatus.BASELINE)


class Swapper(Protocol):
    """A swap engine: draws ``donor`` over the face of track ``track_id``, in place."""

    def swap(
        self,
        image: np.ndarray,
        track_id: int,
        landmarks: np.ndarray,
        donor: Donor,
        hands: list[np.ndarray] | None = None,
    ) -> None: ...


def why_not_swappable(face: FaceTrackState) -> Reason | None:
    """The reason a face cannot be swapped faithfully, or None when it can."""
    if face.landmarks is None:
        return Reason.BRIDGED if face.source == "bridged" else Reason.DETECTOR_ONLY
    if face.box[2] - face.box[0] < MIN_SWAP_WIDTH:
        return Reason.TOO_SMALL
    if head_yaw_ratio(face.landmarks) > MAX_YAW:
        return Reason.TURNED_AWAY
    return None


@dataclass
class Swap:
    """The face swap: ``swapper`` (mesh or learned engine) draws the track's donor face.

    A face without a mesh, too small, turned too far, or whose warp fails is obscured instead.
    """

    swapper: Swapper
    donor_of: Callable[[int], Donor]

    def render(self, image: np.ndarray, face: FaceTrackState, hands: list[np.ndarray]) -> Rendering:
        reason: str | None = why_not_swappable(face)
        if reason is None:
            donor = self.donor_of(face.track_id)
            try:
                in_front = occluding_hands(hands, face.landmarks) if hands else hands
                self.swapper.swap(image, face.track_id, face.landmarks, donor, in_front)
                return Rendering(
                    FaceStatus.SWAPPED, "", donor.name, hands_over_box(in_front, face.box)
                )
            except (ValueError, np.linalg.LinAlgError) as exc:  # geometry the warp cannot use
                # swap() writes the frame only as its last step, so nothing half-done is left.
                reason = f"{Reason.SWAP_FAILED} ({exc})"
        return Obscure(reason).render(image, face, hands)


def hands_over_box(hands: list[np.ndarray] | None, box: np.ndarray) -> int:
    """How many hands have a point inside the face box (the frames a reviewer should see)."""
    x0, y0, x1, y1 = box
    return sum(
        bool(np.any((h[:, 0] >= x0) & (h[:, 0] <= x1) & (h[:, 1] >= y0) & (h[:, 1] <= y1)))
        for h in hands or []
    )


def renderer_for(
    method: str,
    strength: float,
    mask_shape: str,
    swapper: Swapper | None,
    donor_of: Callable[[int], Donor],
) -> FaceRenderer:
    """The renderer a run's configuration asks for: the swap, or one of its baselines."""
    if method == "swap":
        if swapper is None:
            raise ValueError("the swap needs a swap engine")
        return Swap(swapper, donor_of)
    return Baseline(method, strength, mask_shape)
