"""One edit of an ONNX file's graph, made in memory on the protobuf wire format.

Some exporters list every initializer (a weight stored in the file) among the graph's inputs
as well. onnxruntime then treats each such weight as something the caller may override at run
time: it neither folds it as a constant nor fuses it into the layer before (a batch norm into
its convolution), so every call pays for layers that could have been folded away at load.
Dropping those entries from the input list leaves every weight where it is and changes no
result; the file on disk, which is hash-pinned, is not touched.

The ``onnx`` package could do this, but it is a large dependency for one edit; the wire format
needs no schema for it: a ModelProto's graph is field 7, a GraphProto's initializers field 5
(each a TensorProto named by its field 8) and its inputs field 11 (each a ValueInfoProto named
by its field 1).
"""

from __future__ import annotations

from collections.abc import Iterator

_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_GRAPH_INPUT = 11
_TENSOR_NAME = 8
_VALUE_INFO_NAME = 1
_LENGTH_DELIMITED = 2


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


def without_initializer_inputs(model: bytes) -> bytes:
    """``model`` (an ONNX file's bytes) with the graph inputs that name an initializer removed.

    Inputs with no stored weight (the real inputs, and any the caller must feed) stay.
    """
    buf = memoryview(model)
    out = bytearray()
    for field, start, payload, end in _fields(buf):
        if field != _MODEL_GRAPH:
            out += buf[start:end]
            continue
        graph = buf[payload:end]
        parts = list(_fields(graph))
        stored = {
            _name(graph[p:e], _TENSOR_NAME) for f, _, p, e in parts if f == _GRAPH_INITIALIZER
        }
        kept = bytearray()
        for f, s, p, e in parts:
            if f == _GRAPH_INPUT and _name(graph[p:e], _VALUE_INFO_NAME) in stored:
                continue
            kept += graph[s:e]
        out += _encode_varint(_MODEL_GRAPH << 3 | _LENGTH_DELIMITED)
        out += _encode_varint(len(kept)) + kept
    return bytes(out)
