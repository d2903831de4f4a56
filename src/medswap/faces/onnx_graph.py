"""Edits of an ONNX file's graph, made in memory on the protobuf wire format.

The files are hash-pinned and never touched on disk; each edit changes how onnxruntime loads a
network, not what it computes:

- Some exporters list every initializer (a weight stored in the file) among the graph's inputs
  as well. onnxruntime then treats each such weight as something the caller may override at run
  time: it neither folds it as a constant nor fuses it into the layer before (a batch norm into
  its convolution), so every call pays for layers that could have been folded away at load.
  :func:`without_initializer_inputs` drops those entries from the input list.
- OpenCV-zoo's block-quantised files store each weight as 8-bit integers and a
  ``DequantizeLinear`` node that turns them back into floats. onnxruntime refuses some of those
  nodes (a one-element scale with a block size), and where it accepts them it re-expands the
  weights on every call. :func:`with_weights_dequantized` does that arithmetic once, as the
  ONNX operator defines it, and stores the float weights in place of the nodes.
- A file exported for one input size declares it; :func:`with_free_image_size` lets the
  network take any height and width, as OpenCV runs it.

:class:`GraphWriter` writes a new model instead, for a network whose weights come in another
format (dlib's ResNet, :mod:`medswap.faces.dlib_resnet`).

The ``onnx`` package could do this, but it is a large dependency for a few edits; the wire
format needs no schema for them. The field numbers used are ONNX's (``onnx.proto``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

_LENGTH_DELIMITED = 2
_MODEL_GRAPH = 7
_GRAPH_NODE = 1
_GRAPH_INITIALIZER = 5
_GRAPH_INPUT = 11
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE, _NODE_ATTRIBUTE = 1, 2, 4, 5
_ATTRIBUTE_NAME, _ATTRIBUTE_INT = 1, 3
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_NAME, _TENSOR_RAW_DATA = 1, 2, 8, 9
_VALUE_INFO_NAME, _VALUE_INFO_TYPE = 1, 2
_TYPE_TENSOR = 1
_ELEM_TYPE, _TENSOR_SHAPE = 1, 2
_SHAPE_DIM = 1
_DIM_PARAM = 2


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    """The unsigned varint at ``buf[i]`` and the index after it."""
    shift = value = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _varint_value(buf: memoryview, start: int) -> int:
    """The value of the varint field whose key starts at ``buf[start]``."""
    return _varint(buf, _varint(buf, start)[1])[0]


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int, int]]:
    """Each top-level field of a message: (number, start, payload start, end)."""
    i = 0
    while i < len(buf):
        start = i
        key, i = _varint(buf, i)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, i = _varint(buf, i)
            yield number, start, start, i
        elif wire_type == 1:
            i += 8
            yield number, start, i - 8, i
        elif wire_type == 5:
            i += 4
            yield number, start, i - 4, i
        elif wire_type == _LENGTH_DELIMITED:
            length, payload = _varint(buf, i)
            i = payload + length
            yield number, start, payload, i
        else:
            raise ValueError(f"not an ONNX file: protobuf wire type {wire_type}")
        if i > len(buf):
            raise ValueError("not an ONNX file: a field runs past the end")


def _name(message: memoryview, number: int) -> bytes | None:
    """The string field ``number`` of a message (its first occurrence), or None."""
    for field, _, payload, end in _fields(message):
        if field == number:
            return bytes(message[payload:end])
    return None


def _with_graph(model: bytes, edit: Callable[[memoryview], bytes]) -> bytes:
    """``model`` with its graph replaced by ``edit(graph)`` (both the message's bytes)."""
    buf = memoryview(model)
    out = bytearray()
    for field, start, payload, end in _fields(buf):
        if field == _MODEL_GRAPH:
            out += _message_field(_MODEL_GRAPH, edit(buf[payload:end]))
        else:
            out += buf[start:end]
    return bytes(out)


def _message_field(number: int, payload: bytes) -> bytes:
    """One length-delimited field (a string, bytes or a nested message)."""
    return _encode_varint(number << 3 | _LENGTH_DELIMITED) + _encode_varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _encode_varint(number << 3) + _encode_varint(value)


def without_initializer_inputs(model: bytes) -> bytes:
    """``model`` (an ONNX file's bytes) with the graph inputs that name an initializer removed.

    Inputs with no stored weight (the real inputs, and any the caller must feed) stay.
    """

    def edit(graph: memoryview) -> bytes:
        parts = list(_fields(graph))
        stored = {
            _name(graph[p:e], _TENSOR_NAME) for f, _, p, e in parts if f == _GRAPH_INITIALIZER
        }
        kept = bytearray()
        for f, s, p, e in parts:
            if f == _GRAPH_INPUT and _name(graph[p:e], _VALUE_INFO_NAME) in stored:
                continue
            kept += graph[s:e]
        return bytes(kept)

    return _with_graph(model, edit)


# ONNX's TensorProto element types that a dequantised weight may come in.
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32}
_FLOAT = 1


@dataclass
class _Tensor:
    """A stored weight: its name, shape and values."""

    name: bytes
    values: np.ndarray


def _read_tensor(message: memoryview) -> _Tensor | None:
    """A TensorProto held as ``raw_data`` in a type of :data:`_DTYPES`, else None."""
    dims: list[int] = []
    dtype = name = raw = None
    for field, start, payload, end in _fields(message):
        if field == _TENSOR_DIMS:
            if payload == start:  # one varint, not packed
                dims.append(_varint_value(message, start))
            else:
                i = payload
                while i < end:
                    value, i = _varint(message, i)
                    dims.append(value)
        elif field == _TENSOR_DATA_TYPE:
            dtype = _varint_value(message, start)
        elif field == _TENSOR_NAME:
            name = bytes(message[payload:end])
        elif field == _TENSOR_RAW_DATA:
            raw = bytes(message[payload:end])
    if name is None or raw is None or dtype not in _DTYPES:
        return None
    values = np.frombuffer(raw, dtype=np.dtype(_DTYPES[dtype]).newbyteorder("<"))
    return _Tensor(name, values.reshape(dims))


def _float_tensor(name: bytes, values: np.ndarray) -> bytes:
    """A TensorProto of float32 ``values`` (little-endian raw data)."""
    return _raw_tensor(name, values.astype("<f4"), _FLOAT)


def _raw_tensor(name: bytes, values: np.ndarray, data_type: int) -> bytes:
    """A TensorProto of ``values``, already in ONNX's little-endian ``data_type``."""
    out = b"".join(_varint_field(_TENSOR_DIMS, d) for d in values.shape)
    out += _varint_field(_TENSOR_DATA_TYPE, data_type)
    out += _message_field(_TENSOR_NAME, name)
    out += _message_field(_TENSOR_RAW_DATA, values.tobytes())
    return out


@dataclass
class _Node:
    op_type: bytes
    inputs: list[bytes]
    outputs: list[bytes]
    ints: dict[bytes, int]  # the node's integer attributes


def _read_node(message: memoryview) -> _Node:
    node = _Node(b"", [], [], {})
    for field, _, payload, end in _fields(message):
        if field == _NODE_INPUT:
            node.inputs.append(bytes(message[payload:end]))
        elif field == _NODE_OUTPUT:
            node.outputs.append(bytes(message[payload:end]))
        elif field == _NODE_OP_TYPE:
            node.op_type = bytes(message[payload:end])
        elif field == _NODE_ATTRIBUTE:
            attribute = message[payload:end]
            name = _name(attribute, _ATTRIBUTE_NAME)
            for f, s, _, _ in _fields(attribute):
                if f == _ATTRIBUTE_INT and name is not None:
                    node.ints[name] = _signed(_varint_value(attribute, s))
    return node


def _signed(value: int) -> int:
    """An int64 field's value (protobuf stores negative ones as 10-byte two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def dequantize(
    quantized: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray | None,
    axis: int = 1,
    block_size: int = 0,
) -> np.ndarray:
    """ONNX ``DequantizeLinear``: ``(x - zero_point) * scale`` in float32.

    The scale is per tensor (one element), per ``axis`` (one per slice), or per block of
    ``block_size`` elements along ``axis`` (the same rank as ``x``).
    """
    x = quantized.astype(np.float32)
    s = scale.astype(np.float32)
    z = np.zeros_like(s) if zero_point is None else zero_point.astype(np.float32)
    if s.size == 1:
        return (x - z.reshape(())) * s.reshape(())
    axis %= x.ndim
    if block_size:
        keep = [slice(None)] * x.ndim
        keep[axis] = slice(0, x.shape[axis])
        s = np.repeat(s, block_size, axis=axis)[tuple(keep)]
        z = np.repeat(z, block_size, axis=axis)[tuple(keep)]
    else:
        shape = [1] * x.ndim
        shape[axis] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    return (x - z) * s


def with_weights_dequantized(model: bytes) -> bytes:
    """``model`` with every ``DequantizeLinear`` of stored weights replaced by its result.

    A node whose inputs are not all stored weights (it dequantises activations) stays, and so
    do the integer weights that another node still reads.
    """

    def edit(graph: memoryview) -> bytes:
        parts = list(_fields(graph))
        stored: dict[bytes, _Tensor] = {}
        for f, _, p, e in parts:
            if f == _GRAPH_INITIALIZER and (tensor := _read_tensor(graph[p:e])) is not None:
                stored[tensor.name] = tensor
        folded: dict[int, bytes] = {}  # node's start offset -> its float weight
        read_by_rest: set[bytes] = set()
        for f, s, p, e in parts:
            if f != _GRAPH_NODE:
                continue
            node = _read_node(graph[p:e])
            if node.op_type == b"DequantizeLinear" and all(i in stored for i in node.inputs):
                weights = [stored[i].values for i in node.inputs]
                values = dequantize(
                    weights[0],
                    weights[1],
                    weights[2] if len(weights) > 2 else None,
                    node.ints.get(b"axis", 1),
                    node.ints.get(b"block_size", 0),
                )
                folded[s] = _float_tensor(node.outputs[0], values)
            else:
                read_by_rest.update(node.inputs)
        out = bytearray()
        for f, s, p, e in parts:
            if f == _GRAPH_NODE and s in folded:
                continue
            if f == _GRAPH_INITIALIZER:
                name = _name(graph[p:e], _TENSOR_NAME)
                if name in stored and name not in read_by_rest:
                    continue  # read only by a node folded away
            out += graph[s:e]
        for tensor in folded.values():
            out += _message_field(_GRAPH_INITIALIZER, tensor)
        return bytes(out)

    return _with_graph(model, edit)


def with_free_image_size(model: bytes, input_name: str) -> bytes:
    """``model`` with its (N, C, H, W) input ``input_name`` taking any height and width.

    The batch and channel sizes stay as declared; the element type too.
    """
    wanted = input_name.encode()

    def edit(graph: memoryview) -> bytes:
        out = bytearray()
        for f, s, p, e in _fields(graph):
            if f == _GRAPH_INPUT and _name(graph[p:e], _VALUE_INFO_NAME) == wanted:
                out += _message_field(_GRAPH_INPUT, _free_image_input(graph[p:e], wanted))
            else:
                out += graph[s:e]
        return bytes(out)

    return _with_graph(model, edit)


def _free_image_input(value_info: memoryview, name: bytes) -> bytes:
    """A ValueInfoProto for ``name``: the same element type, batch and channels; H, W free."""
    tensor_type = _sub(_sub(value_info, _VALUE_INFO_TYPE), _TYPE_TENSOR)
    elem_type = next(
        _varint_value(tensor_type, s) for f, s, _, _ in _fields(tensor_type) if f == _ELEM_TYPE
    )
    shape = _sub(tensor_type, _TENSOR_SHAPE)
    dims = [shape[p:e] for f, _, p, e in _fields(shape) if f == _SHAPE_DIM]
    if len(dims) != 4:
        raise ValueError(f"input {name.decode()} is not (N, C, H, W)")
    new_dims = b"".join(_message_field(_SHAPE_DIM, bytes(d)) for d in dims[:2])
    new_dims += b"".join(
        _message_field(_SHAPE_DIM, _message_field(_DIM_PARAM, label)) for label in (b"H", b"W")
    )
    tensor = _varint_field(_ELEM_TYPE, elem_type) + _message_field(_TENSOR_SHAPE, new_dims)
    value_type = _message_field(_TYPE_TENSOR, tensor)
    return _message_field(_VALUE_INFO_NAME, name) + _message_field(_VALUE_INFO_TYPE, value_type)


def _sub(message: memoryview, number: int) -> memoryview:
    """The nested message in field ``number`` (its first occurrence)."""
    for field, _, payload, end in _fields(message):
        if field == number:
            return message[payload:end]
    raise ValueError(f"not an ONNX file: field {number} missing")


# --------------------------------------------------------------------------------------------
# Writing a new graph (dlib's ResNet, whose weights come in dlib's own format)
# --------------------------------------------------------------------------------------------

_MODEL_IR_VERSION, _MODEL_OPSET = 1, 8
_OPSET_VERSION = 2
_GRAPH_NAME, _GRAPH_OUTPUT = 2, 12
_ATTRIBUTE_INTS, _ATTRIBUTE_TYPE, _ATTRIBUTE_TYPE_INTS = 8, 20, 7
_SHAPE_DIM_VALUE = 1
_INT64 = 7


class GraphWriter:
    """A new ONNX model built node by node: float inputs and outputs of fixed shapes, float32
    and int64 weights, and nodes whose attributes are lists of integers (opset 13)."""

    def __init__(self) -> None:
        self._nodes: list[bytes] = []
        self._weights: list[bytes] = []
        self._count = 0

    def _new_name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def weight(self, values: np.ndarray) -> str:
        """Store ``values`` (float32, or int64 for shapes and pads); its name."""
        name = self._new_name("w")
        if values.dtype == np.int64:
            self._weights.append(_raw_tensor(name.encode(), values.astype("<i8"), _INT64))
        else:
            self._weights.append(_float_tensor(name.encode(), values))
        return name

    def node(self, op_type: str, inputs: list[str], **ints: list[int]) -> str:
        """Add one node with one output; its output's name."""
        output = self._new_name(op_type.lower())
        out = b"".join(_message_field(_NODE_INPUT, i.encode()) for i in inputs)
        out += _message_field(_NODE_OUTPUT, output.encode())
        out += _message_field(_NODE_OP_TYPE, op_type.encode())
        for key, values in ints.items():
            attribute = _message_field(_ATTRIBUTE_NAME, key.encode())
            attribute += b"".join(_varint_field(_ATTRIBUTE_INTS, v) for v in values)
            attribute += _varint_field(_ATTRIBUTE_TYPE, _ATTRIBUTE_TYPE_INTS)
            out += _message_field(_NODE_ATTRIBUTE, attribute)
        self._nodes.append(out)
        return output

    def model(
        self, inputs: dict[str, tuple[int, ...]], outputs: dict[str, tuple[int, ...]]
    ) -> bytes:
        """The model's bytes, for onnxruntime to load."""
        graph = b"".join(_message_field(_GRAPH_NODE, n) for n in self._nodes)
        graph += _message_field(_GRAPH_NAME, b"medswap")
        graph += b"".join(_message_field(_GRAPH_INITIALIZER, w) for w in self._weights)
        graph += b"".join(
            _message_field(_GRAPH_INPUT, _value_info(n, s)) for n, s in inputs.items()
        )
        graph += b"".join(
            _message_field(_GRAPH_OUTPUT, _value_info(n, s)) for n, s in outputs.items()
        )
        opset = _varint_field(_OPSET_VERSION, 13)  # the default domain, ai.onnx
        return (
            _varint_field(_MODEL_IR_VERSION, 8)
            + _message_field(_MODEL_GRAPH, graph)
            + _message_field(_MODEL_OPSET, opset)
        )


def _value_info(name: str, shape: tuple[int, ...]) -> bytes:
    """A ValueInfoProto: a float tensor of a fixed shape."""
    dims = b"".join(_message_field(_SHAPE_DIM, _varint_field(_SHAPE_DIM_VALUE, d)) for d in shape)
    tensor = _varint_field(_ELEM_TYPE, _FLOAT) + _message_field(_TENSOR_SHAPE, dims)
    value_type = _message_field(_TYPE_TENSOR, tensor)
    return _message_field(_VALUE_INFO_NAME, name.encode()) + _message_field(
        _VALUE_INFO_TYPE, value_type
    )
