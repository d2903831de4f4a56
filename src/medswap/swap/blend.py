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


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """``cv2.GaussianBlur(image, (0, 0), sigma)``, within one level, at a fraction of the cost.

    OpenCV's 8-bit Gaussian takes a bit-exact fixed-point path that is several times slower
    than the same separable kernel applied in floating point; the result differs by rounding
    only. Other depths go straight to ``cv2.GaussianBlur``.
    """
    if image.dtype != np.uint8:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    size = int(round(sigma * 3 * 2 + 1)) | 1  # OpenCV's own kernel size for 8-bit images
    kernel = cv2.getGaussianKernel(size, sigma, cv2.CV_32F)
    return cv2.sepFilter2D(image, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` reduced to ``size`` (width, height) for work that keeps only its coarse content.

    Halved by the Gaussian pyramid while still at least twice the size, then linearly
    interpolated the rest of the way: anti-aliased like ``INTER_AREA``, whose general
    (non-integer) ratio is several times slower in OpenCV. An image already of that size is
    returned as it is (not a copy).
    """
    w, h = size
    while image.shape[1] >= 2 * w and image.shape[0] >= 2 * h:
        image = cv2.pyrDown(image)
    if (image.shape[1], image.shape[0]) == (w, h):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)


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
    """(2, 3) per-channel mean and standard deviation in Lab, over mask > 0.

    Statistics of a face need no more than every other pixel in each direction.
    """
    step = 2 if min(mask.shape) >= 64 else 1
    m = mask[::step, ::step] > 127
    if int(m.sum()) < 16:
        return np.array([[128, 128, 128], [1, 1, 1]], np.float32)
    lab = cv2.cvtColor(np.ascontiguousarray(image[::step, ::step]), cv2.COLOR_RGB2LAB)
    mean, std = cv2.meanStdDev(lab, mask=m.astype(np.uint8))
    return np.stack([mean.reshape(3), std.reshape(3) + 1e-3]).astype(np.float32)


def match_colour(
    image: np.ndarray, src_stats: np.ndarray, dst_stats: np.ndarray, max_gain: float = 2.0
) -> np.ndarray:
    """Move ``image``'s Lab statistics from ``src_stats`` to ``dst_stats`` (float32 Lab out)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    gain = np.clip(dst_stats[1] / src_stats[1], 1 / max_gain, max_gain).astype(np.float32)
    # (lab - src mean) * gain + dst mean, as one scale and one shift in place
    lab *= gain
    lab += (dst_stats[0] - src_stats[0] * gain).astype(np.float32)
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


def into_patient_light(
    face: np.ndarray,
    face_skin: np.ndarray,
    target: np.ndarray,
    target_skin: np.ndarray,
    previous: np.ndarray | None,
    smoothing: float,
    relight_strength: float,
    relight_sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The new face in the patient's skin colour and scene light: (RGB uint8, colour stats).

    The colour statistics (``lab_stats`` of the face's skin and of the patient's) are smoothed
    over the track (``smoothing`` of ``previous``), so the skin tone does not flicker with the
    frame's noise; then the scene's low-frequency light replaces the face's own. Both engines
    blend this way, so their faces sit in the frame alike.
    """
    now = np.stack([lab_stats(face, face_skin), lab_stats(target, target_skin)])
    stats = now if previous is None else smoothing * previous + (1 - smoothing) * now
    lab = match_colour(face, stats[0], stats[1])
    if relight_strength > 0:
        target_lab = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
        lab = relight(lab, target_lab, face_skin, relight_sigma, relight_strength)
    return lab_to_rgb(lab), stats


def relight(
    donor_lab: np.ndarray,
    target_lab: np.ndarray,
    mask: np.ndarray,
    sigma: float,
    strength: float = 1.0,
) -> np.ndarray:
    """Replace the donor's low frequencies (lighting) with the target's, inside the mask.

    The masked low-pass is linear in the image, so the target's low frequencies less the
    donor's are the low-pass of their difference: one pass instead of two.
    """
    if strength <= 0:
        return donor_lab
    low = lowpass_in_mask(target_lab - donor_lab, mask, sigma)
    if strength != 1.0:
        low *= strength
    low += donor_lab
    return low


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def composite(background: np.ndarray, foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * foreground + (1 - alpha) * background`` for uint8 RGB images."""
    a = np.ascontiguousarray(alpha, dtype=np.float32)
    return cv2.blendLinear(foreground, background, a, 1.0 - a)
