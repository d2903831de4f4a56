"""The learned swap: encode the patient's aligned crop, decode it with the donor's decoder.

Same interface as :class:`medswap.swap.engine.MeshSwapper`, so the pipeline's fail-closed
logic (too small, turned too far, bridged tracks: obscured) and its reports are shared. Per
face: the crop is cut with the model's alignment, the decoder paints the donor, the result is
warped back with the inverse similarity and blended with the mesh engine's blender (colour
matched to the patient's skin and smoothed per track, relit with the scene's low frequencies,
feathered edge, hands kept on top). The face region is the patient's face outline, as in the
mesh engine, whatever the decoder's mask says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from medswap.faces.mesh import FACE_OVAL, INNER_LIPS, LEFT_EYE, RIGHT_EYE
from medswap.learned import data
from medswap.learned.modelfile import ModelFile, read_model_file
from medswap.swap import blend
from medswap.swap.donors import Donor
from medswap.swap.engine import SwapSettings

log = logging.getLogger(__name__)


@dataclass
class _Track:
    colour: np.ndarray | None = None


def model_donor(mf: ModelFile) -> Donor:
    """A :class:`Donor` standing for the model's baked-in donor, for the pipeline's reports.

    The learned engine never reads its pixels: the donor is in the decoder's weights. Its
    fingerprint is the one recorded at training time.
    """
    d = mf.header["donor"]
    donor = Donor(d["name"], np.zeros((1, 1, 3), np.uint8), np.zeros((478, 3)))
    donor.__dict__["fingerprint"] = d.get("fingerprint") or "model"
    return donor


class LearnedSwapper:
    """Swaps faces with a trained ``.medswap`` model; keeps per-track colour state."""

    def __init__(
        self,
        model: str | Path | ModelFile,
        settings: SwapSettings | None = None,
        device: str = "cpu",
        threads: int | None = 1,
    ) -> None:
        import torch

        from medswap.learned.model import Architecture, SwapAutoencoder

        self.model_file = model if isinstance(model, ModelFile) else read_model_file(model)
        head = self.model_file.header
        self.settings = settings or SwapSettings()
        arch = Architecture(**head["architecture"])
        self.size = arch.size
        self.template = np.asarray(head["template"], dtype=np.float64)
        net = SwapAutoencoder(arch, with_patient_decoder=False)
        try:
            net.load_state_dict(self.model_file.weights, strict=True)
        except RuntimeError as exc:
            from medswap.errors import ModelFileError

            raise ModelFileError(
                f"weights do not fit the architecture in its header ({str(exc).splitlines()[0]})",
                self.model_file.path,
            ) from None
        self.device = device
        self.net = net.to(device).eval()
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.donor = model_donor(self.model_file)
        self._tracks: dict[int, _Track] = {}

    def reset(self) -> None:
        self._tracks.clear()

    def render(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Donor face (S, S, 3 uint8) and mask (S, S float32) for one aligned patient crop."""
        from medswap.learned.model import to_tensor

        torch = self._torch
        with torch.inference_mode():
            rgb, mask = self.net(to_tensor(crop[None], self.device), "b")
        rgb = (rgb[0].permute(1, 2, 0).cpu().numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        return rgb, mask[0, 0].cpu().numpy().astype(np.float32)

    def swap(
        self,
        frame: np.ndarray,
        track_id: int,
        landmarks: np.ndarray,
        donor: Donor | None = None,
        hands: list[np.ndarray] | None = None,
    ) -> np.ndarray:
        """Swap one face in ``frame`` in place; returns the face region (x0, y0, x1, y1).

        ``donor`` is accepted for the pipeline's interface; the donor is the model's. The frame
        is written only in the last step, so an exception leaves it untouched.
        """
        cfg = self.settings
        state = self._tracks.setdefault(track_id, _Track())
        h, w = frame.shape[:2]
        s = self.size
        pts = landmarks[:468, :2]
        face_w = float(np.ptp(pts[:, 0]))
        x0, y0 = np.floor(pts.min(0)).astype(int) - 2
        x1, y1 = np.ceil(pts.max(0)).astype(int) + 3
        x0, y0, x1, y1 = int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1))
        if x1 - x0 < 4 or y1 - y0 < 4:
            raise ValueError("face too small to swap")
        region = (x0, y0, x1, y1)
        roi = frame[y0:y1, x0:x1]
        shape_hw = roi.shape[:2]

        m = data.alignment(landmarks, self.template, s)
        if not np.all(np.isfinite(m)) or abs(np.linalg.det(m[:, :2])) < 1e-9:
            raise ValueError("degenerate face alignment")
        face_crop, dec_mask = self.render(data.crop(frame, m, s))
        # Back into the region: the inverse similarity, shifted to the region's origin.
        inv = cv2.invertAffineTransform(m)
        inv[:, 2] -= (x0, y0)
        size = (x1 - x0, y1 - y0)
        face_rgb = cv2.warpAffine(
            face_crop, inv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        dec_alpha = cv2.warpAffine(dec_mask, inv, size, flags=cv2.INTER_LINEAR, borderValue=0)

        local = landmarks[:, :2] - (x0, y0)
        face_mask = blend.polygon_mask(shape_hw, local[FACE_OVAL])
        # The patient's eye openings only when asked for their pixels ("iris" keeps the whole
        # opening here: the decoder's crop has no iris points); "none" and "gaze" keep none.
        polys = ([RIGHT_EYE, LEFT_EYE] if cfg.keep_eyes in ("opening", "iris") else []) + (
            [INNER_LIPS] if cfg.keep_mouth else []
        )
        keep = np.zeros(shape_hw, np.uint8)
        for idx in polys:
            keep = np.maximum(keep, blend.polygon_mask(shape_hw, local[idx]))
        skin = face_mask.copy()
        skin[keep > 0] = 0
        skin[dec_alpha < 0.5] = 0
        face_rgb, state.colour = blend.into_patient_light(
            face_rgb,
            skin,
            roi,
            skin,
            state.colour,
            cfg.colour_smoothing,
            cfg.relight,
            cfg.relight_sigma * face_w,
        )
        alpha = blend.feather(face_mask, cfg.edge_erode * face_w, cfg.edge_blur * face_w)
        # Coverage is the patient's face outline, exactly as in the mesh engine; the decoder's
        # mask only chooses the pixels for the colour statistics. An under-trained mask must
        # never let a patch of the patient's own skin through.
        if hands:
            alpha *= 1.0 - _hands_alpha(hands, shape_hw, (x0, y0))
        if polys:
            k_alpha = blend.feather(keep, 0, max(0.6, 0.006 * face_w))
            face_rgb = blend.composite(face_rgb, roi, k_alpha)
        frame[y0:y1, x0:x1] = blend.composite(roi, face_rgb, alpha)
        return np.array(region, dtype=np.float64)


def _hands_alpha(hands: list[np.ndarray], shape_hw, origin) -> np.ndarray:
    """Soft mask of the hands' hulls in the region, dilated a little (the mesh engine's rule)."""
    occl = np.zeros(shape_hw, np.uint8)
    for hand in hands:
        hull = cv2.convexHull(np.round((hand - origin) * 4).astype(np.int32))
        cv2.fillConvexPoly(occl, hull, 255, lineType=cv2.LINE_AA, shift=2)
    if not occl.any():
        return np.zeros(shape_hw, np.float32)
    hand_size = max(float(np.ptp(hands[0][:, 1])), 1.0)
    kd = int(2 * round(0.06 * hand_size) + 1)
    occl = cv2.dilate(occl, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kd, kd)))
    return blend.feather(occl, 0, 1.5)
