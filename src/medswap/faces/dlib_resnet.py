"""dlib's ResNet face descriptor, run on onnxruntime from dlib's own pinned weights.

The audit's dlib recogniser is ``dlib_face_recognition_resnet_model_v1.dat``. The dlib wheel
on the package index is built without BLAS, so its forward pass multiplies matrices in plain
loops; onnxruntime runs the same layers on the same weights many times faster (README,
Models). Only the network's forward pass moves here: the 68-point shape and the aligned
150 px chip still come from dlib, so the descriptor is dlib's, to float rounding. The graph
is built in memory at load (:class:`medswap.faces.onnx_graph.GraphWriter`); the pinned file
is only read.

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

from medswap.errors import ModelError
from medswap.faces.onnx_graph import GraphWriter
from medswap.models import onnx_session

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
    """One convolution with the affine layer after it folded in (the same arithmetic, rounded
    once less)."""

    weights: np.ndarray  # (N, C, k, k)
    bias: np.ndarray  # (N,)
    stride: int
    pad: int


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
    """The convolutions (each with its affine folded in) and the final matrix, checked for
    shape."""
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
    # Filters of each convolution in order, and whether it halves the size.
    plan = [(_STAGES[0][0], True)]
    for width, blocks, halves in _STAGES:
        for block in range(blocks):
            plan += [(width, halves and block == 0), (width, False)]
    layers, channels = [], 3
    for (params, (n, kh, kw, sy, sx, py, px)), affine, (width, halves) in zip(convs, affines, plan):
        if (n, sy, sx) != (width, 1 + halves, 1 + halves) or kh != kw or py != px:
            raise ValueError(f"unexpected convolution {n}x{channels}x{kh}x{kw}/{sy}")
        if params.size != n * (channels * kh * kw + 1):
            raise ValueError(f"convolution {n}x{channels}x{kh}x{kw} of {params.size} values")
        if affine.size != 2 * n:
            raise ValueError(f"affine of {affine.size} values after {n} filters")
        split, scale, shift = n * channels * kh * kw, affine[:n], affine[n:]
        weights = params[:split].reshape(n, channels, kh, kw) * scale.reshape(n, 1, 1, 1)
        layers.append(_Conv(weights, params[split:] * scale + shift, sy, py))
        channels = n
    if fc.size != channels * _DESCRIPTOR_SIZE:
        raise ValueError(f"final layer of {fc.size} values")
    return layers, fc.reshape(channels, _DESCRIPTOR_SIZE)


def _graph(convs: list[_Conv], fc: np.ndarray) -> bytes:
    """The network as an ONNX model: input (1, 3, 150, 150), output (1, 128).

    After the first convolution, the convolutions come in pairs, one residual block each; a
    block whose first convolution has stride 2 halves the size, and its shortcut is averaged
    down to match. Sizes are followed layer by layer, so that each ``add_prev`` pads both
    sides to the larger shape as dlib does.
    """
    g = GraphWriter()

    def convolve(x: str, shape: tuple[int, int, int], layer: _Conv) -> tuple[str, tuple]:
        n, _, k, _ = layer.weights.shape
        s, p = layer.stride, layer.pad
        out = g.node(
            "Conv",
            [x, g.weight(layer.weights), g.weight(layer.bias)],
            kernel_shape=[k, k],
            strides=[s, s],
            pads=[p] * 4,
        )
        side = (shape[1] + 2 * p - k) // s + 1
        return out, (n, side, side)

    def padded(x: str, shape: tuple, to: tuple) -> str:
        if shape == to:
            return x
        ends = [0, to[0] - shape[0], to[1] - shape[1], to[2] - shape[2]]
        return g.node("Pad", [x, g.weight(np.array([0, 0, 0, 0, *ends], np.int64))])

    x, shape = convolve("chip", (3, CHIP_SIZE, CHIP_SIZE), convs[0])
    x = g.node("MaxPool", [g.node("Relu", [x])], kernel_shape=[3, 3], strides=[2, 2])
    shape = (shape[0], (shape[1] - 3) // 2 + 1, (shape[2] - 3) // 2 + 1)
    for first, second in zip(convs[1::2], convs[2::2], strict=True):
        inner, inner_shape = convolve(x, shape, first)
        residual, res_shape = convolve(g.node("Relu", [inner]), inner_shape, second)
        if first.stride == 2:
            x = g.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
            shape = (shape[0], (shape[1] - 2) // 2 + 1, (shape[2] - 2) // 2 + 1)
        out_shape = tuple(map(max, res_shape, shape))
        total = g.node("Add", [padded(residual, res_shape, out_shape), padded(x, shape, out_shape)])
        x, shape = g.node("Relu", [total]), out_shape
    flat = g.node("Flatten", [g.node("GlobalAveragePool", [x])])
    out = g.node("MatMul", [flat, g.weight(fc)])
    return g.model({"chip": (1, 3, CHIP_SIZE, CHIP_SIZE)}, {out: (1, _DESCRIPTOR_SIZE)})


class DlibResNet:
    """The 128-D descriptor of an aligned 150x150 RGB face chip (``dlib.get_face_chip``)."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as f:
            data = f.read()
        try:
            convs, fc = _layers(data)
        except (ValueError, IndexError) as exc:
            raise ModelError(f"{path}: not dlib's face recognition ResNet ({exc})") from None
        self._session = onnx_session(_graph(convs, fc))

    def descriptor(self, chip: np.ndarray) -> np.ndarray:
        """The descriptor (float64, same person below 0.6) of one chip."""
        if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"a {CHIP_SIZE}x{CHIP_SIZE} RGB chip is needed, not {chip.shape}")
        x = ((chip.astype(np.float32) - _INPUT_MEAN) / 256.0).transpose(2, 0, 1)[None]
        out = self._session.run(None, {"chip": np.ascontiguousarray(x)})[0]
        return out[0].astype(np.float64)
