"""Putting a warped donor face into the frame without seams, in the scene's light.

Three steps, all on the face's bounding region only:
1. colour: the donor's skin statistics (Lab mean and spread) are moved to the patient's,
   smoothed over time per track so the tone does not flicker;
2. light: the low spatial frequencies of the patient's face (shading, a lamp from one side)
   replace the donor's, so the face sits in the scene's lighting; the high frequencies (skin
   detail, features) stay the donor's;
3. edge: a feathered mask, eroded inside the face outline, fades the donor into the frame.
"""

from __future__ import annotations

import cv2
import numpy as np


def polygon_mask(shape: tuple[int, int], polygon: np.ndarray, offset=(0, 0)) -> np.ndarray:
    """A uint8 0/255 mask of a filled polygon given in frame coordinates."""
    mask = np.zeros(shape, np.uint8)
    pts = np.round((polygon[:, :2] - offset) * 4).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=2)
    return mask


def feather(mask: np.ndarray, erode_px: float, blur_px: float) -> np.ndarray:
    """A float32 alpha in 0..1: the mask shrunk by ``erode_px`` and softened by ``blur_px``."""
    m = mask
    if erode_px >= 1:
        k = int(2 * round(erode_px) + 1)
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    alpha = m.astype(np.float32) / 255.0
    if blur_px >= 0.5:
        alpha = cv2.GaussianBlur(alpha, (0, 0), blur_px)
    return alpha


def lab_stats(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(2, 3) per-channel mean and standard deviation in Lab, over mask > 0."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    sel = lab[mask.reshape(-1) > 127]
    if len(sel) < 16:
        return np.array([[128, 128, 128], [1, 1, 1]], np.float32)
    return np.stack([sel.mean(0), sel.std(0) + 1e-3])


def match_colour(
    image: np.ndarray, src_stats: np.ndarray, dst_stats: np.ndarray, max_gain: float = 2.0
) -> np.ndarray:
    """Move ``image``'s Lab statistics from ``src_stats`` to ``dst_stats`` (float32 Lab out)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    gain = np.clip(dst_stats[1] / src_stats[1], 1 / max_gain, max_gain)
    lab = (lab - src_stats[0]) * gain + dst_stats[0]
    return lab


def lowpass_in_mask(image: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Mask-normalised Gaussian low-pass: the local mean of ``image`` using masked pixels only.

    Computed at reduced resolution (the result is smooth anyway), so a large sigma is cheap.
    """
    h, w = mask.shape
    scale = max(1.0, sigma / 4.0)
    sw, sh = max(2, int(w / scale)), max(2, int(h / scale))
    m = cv2.resize(mask.astype(np.float32) / 255.0, (sw, sh), interpolation=cv2.INTER_AREA)
    im = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    s = sigma / scale
    num = cv2.GaussianBlur(im * m[..., None], (0, 0), s)
    den = cv2.GaussianBlur(m, (0, 0), s)[..., None]
    low = num / np.maximum(den, 1e-4)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)


def relight(
    donor_lab: np.ndarray,
    target_lab: np.ndarray,
    mask: np.ndarray,
    sigma: float,
    strength: float = 1.0,
) -> np.ndarray:
    """Replace the donor's low frequencies (lighting) with the target's, inside the mask."""
    if strength <= 0:
        return donor_lab
    low_t = lowpass_in_mask(target_lab, mask, sigma)
    low_d = lowpass_in_mask(donor_lab, mask, sigma)
    return donor_lab + strength * (low_t - low_d)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def composite(background: np.ndarray, foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * foreground + (1 - alpha) * background`` for uint8 RGB images."""
    a = alpha[..., None]
    out = foreground.astype(np.float32) * a + background.astype(np.float32) * (1 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
