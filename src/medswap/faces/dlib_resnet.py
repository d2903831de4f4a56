"""dlib's ResNet face descriptor, computed with numpy from dlib's own pinned weights.

The audit's dlib recogniser is ``dlib_face_recognition_resnet_model_v1.dat``. The dlib wheel
on the package index is built without BLAS, so its forward pass multiplies matrices in plain
loops; numpy's matrix product (OpenBLAS) runs the same arithmetic several times faster
(README, Models). Only the network's forward pass moves here: the 68-point shape and the
aligned 150 px chip still come from dlib, so the descriptor is dlib's, to float rounding.

The file is read as dlib serialises it (``dlib/dnn/core.h`` and the layers' ``serialize``):
each tensor is a version, four dimensions and little-endian float32 values. The layers of the
face recognition example (``dnn_face_recognition_ex.cpp``) are found by name in file order,
input side first, and their number and sizes are checked against that architecture, so a
different file stops with :class:`~medswap.errors.ModelError` instead of computing nonsense.

- ``con_4``: filters (N, C, kh, kw) then N biases; stride-2 layers are unpadded, stride-1
  layers padded by 1, as dlib's defaults are.
- ``affine_``: a per-channel scale then a shift (the batch norm of training, frozen).
- ``add_prev``: dlib adds two tensors of different sizes into the larger, zero-padded; the
  down-sampling blocks rely on it (more channels on one side, a row more on the other).
- ``fc_2``: a (256, 128) matrix without bias, applied to the spatial mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from medswap.errors import ModelError

#: The chip's side, and dlib's per-channel means (R, G, B) subtracted before scaling by 1/256.
CHIP_SIZE = 150
_INPUT_MEAN = np.array([122.782, 117.001, 104.298], dtype=np.float32)
#: Residual stages after the first convolution and pooling: (channels, blocks, first one
#: halves the size). dlib's ``alevel4`` .. ``alevel0``.
_STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
_DESCRIPTOR_SIZE = 128
_LAYER_NAME = re.compile(rb"\x01\x05con_4|\x01\x07affine_|\x01\x04fc_2")


@dataclass(frozen=True)
class _Conv:
    weights: np.ndarray  # (N, C * kh * kw), rows in dlib's (C, kh, kw) order
    bias: np.ndarray  # (N, 1)
    size: int  # kh == kw
    stride: int
    pad: int
    scale: np.ndarray  # the following affine layer: (N, 1, 1)
    shift: np.ndarray  # (N, 1, 1)


def _int(data: bytes, i: int) -> tuple[int, int]:
    """dlib's packed integer at ``data[i]``: a byte of size and sign, then the value."""
    head = data[i]
    size = head & 0x0F
    value = int.from_bytes(data[i + 1 : i + 1 + size], "little")
    return (-value if head & 0x80 else value), i + 1 + size


def _tensor(data: bytes, i: int) -> tuple[np.ndarray, int]:
    """A serialised dlib tensor at ``data[i]``: its values (flat) and the index after them."""
    version, i = _int(data, i)
    if version != 2:
        raise ValueError(f"tensor version {version}")
    count = 1
    for _ in range(4):
        dim, i = _int(data, i)
        count *= dim
    if i + 4 * count > len(data):
        raise ValueError("tensor runs past the end of the file")
    return np.frombuffer(data, "<f4", count, i), i + 4 * count


def _layers(data: bytes) -> tuple[list[_Conv], np.ndarray]:
    """The convolutions (each with its affine) and the final matrix, checked for shape."""
    convs: list[tuple[np.ndarray, tuple[int, ...]]] = []
    affines: list[np.ndarray] = []
    fc = None
    for match in _LAYER_NAME.finditer(data):
        name, i = match.group()[2:], match.end()
        if name == b"fc_2":
            _, i = _int(data, i)  # outputs
            _, i = _int(data, i)  # inputs
            fc, _ = _tensor(data, i)
            continue
        params, i = _tensor(data, i)
        if name == b"affine_":
            affines.append(params)
            continue
        meta = []
        for _ in range(7):  # filters, rows, cols, stride y, stride x, padding y, padding x
            value, i = _int(data, i)
            meta.append(value)
        convs.append((params, tuple(meta)))
    expected = 1 + 2 * sum(blocks for _, blocks, _ in _STAGES)
    if len(convs) != expected or len(affines) != expected or fc is None:
        raise ValueError(f"{len(convs)} convolutions, {len(affines)} affines, not {expected}")
    layers, channels = [], 3
    for (params, (n, kh, kw, sy, sx, py, px)), affine in zip(convs, affines):
        if kh != kw or sy != sx or py != px or params.size != n * (channels * kh * kw + 1):
            raise ValueError(f"unexpected convolution {n}x{channels}x{kh}x{kw}")
        if affine.size != 2 * n:
            raise ValueError(f"affine of {affine.size} values after {n} filters")
        split = n * channels * kh * kw
        layers.append(
            _Conv(
                params[:split].reshape(n, -1),
                params[split:].reshape(n, 1),
                kh,
                sy,
                py,
                affine[:n].reshape(n, 1, 1),
                affine[n:].reshape(n, 1, 1),
            )
        )
        channels = n
    if fc.size != channels * _DESCRIPTOR_SIZE:
        raise ValueError(f"final layer of {fc.size} values")
    return layers, fc.reshape(channels, _DESCRIPTOR_SIZE)


def _convolve(x: np.ndarray, layer: _Conv) -> np.ndarray:
    """One convolution and its affine on a (C, H, W) tensor, as one matrix product."""
    if layer.pad:
        x = np.pad(x, ((0, 0), (layer.pad, layer.pad), (layer.pad, layer.pad)))
    k, s = layer.size, layer.stride
    windows = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]  # C, Ho, Wo, k, k
    c, ho, wo = windows.shape[:3]
    columns = windows.transpose(0, 3, 4, 1, 2).reshape(c * k * k, ho * wo)
    out = (layer.weights @ columns + layer.bias).reshape(-1, ho, wo)
    return out * layer.scale + layer.shift


def _pool(x: np.ndarray, size: int, stride: int, reduce) -> np.ndarray:
    """dlib's unpadded pooling: the windows that fit."""
    windows = sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return reduce(windows, axis=(3, 4))


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dlib's ``add_prev``: the sum in the larger shape, each side zero-padded to it."""
    if a.shape == b.shape:
        return a + b
    out = np.zeros(tuple(map(max, a.shape, b.shape)), dtype=a.dtype)
    out[: a.shape[0], : a.shape[1], : a.shape[2]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2]] += b
    return out


class DlibResNet:
    """The 128-D descriptor of an aligned 150x150 RGB face chip (``dlib.get_face_chip``)."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as f:
            data = f.read()
        try:
            self._convs, self._fc = _layers(data)
        except (ValueError, IndexError) as exc:
            raise ModelError(f"{path}: not dlib's face recognition ResNet ({exc})") from None

    def descriptor(self, chip: np.ndarray) -> np.ndarray:
        """The descriptor (float64, same person below 0.6) of one chip."""
        if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"a {CHIP_SIZE}x{CHIP_SIZE} RGB chip is needed, not {chip.shape}")
        x = ((chip.astype(np.float32) - _INPUT_MEAN) / 256.0).transpose(2, 0, 1)
        layers = iter(self._convs)
        x = np.maximum(_convolve(x, next(layers)), 0)
        x = _pool(x, 3, 2, np.max)
        for _, blocks, halves in _STAGES:
            for block in range(blocks):
                inner = np.maximum(_convolve(x, next(layers)), 0)
                residual = _convolve(inner, next(layers))
                skip = _pool(x, 2, 2, np.mean) if halves and block == 0 else x
                x = np.maximum(_add(residual, skip), 0)
        return (x.mean(axis=(1, 2)) @ self._fc).astype(np.float64)
