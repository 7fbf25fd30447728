"""Which protobuf model format a file holds, from the numbers and wire types of its first fields.

A serialised protobuf message carries no type: an ONNX ``ModelProto``, a TensorFlow
``SavedModel`` (``saved_model.pb``) and a CoreML ``Model`` (``.mlmodel``) all begin with field 1
as a small varint followed by a length-delimited field 2 (``08 01 12 …``), so a test of the
first bytes sends all three to the ONNX reader. Their top-level fields tell them apart:

- SavedModel: only ``saved_model_schema_version`` (1, varint) and ``meta_graphs`` (2), and a
  meta graph begins with one of the ``MetaGraphDef`` fields (1-7, all messages):
  ``meta_info_def``, ``graph_def``, ``object_graph_def``… (tensorflow/core/protobuf/
  saved_model.proto and meta_graph.proto).
- CoreML: ``specificationVersion`` (1), ``description`` (2), ``isUpdatable`` (10) and one model
  type, a message numbered 200 or more (``pipeline`` 200, ``neuralNetwork`` 500,
  ``mlProgram`` 502…; apple/coremltools mlmodel/format/Model.proto).
- ONNX: ``ir_version`` (1, varint) and then a ``ModelProto`` field of its own wire type:
  ``producer_name`` (2), ``graph`` (7), ``opset_import`` (8)… (onnx/onnx onnx/onnx.proto).
  A SavedModel's ``fingerprint.pb`` (field 1 then field 2, both varints) is none of these.

The walk is at most :data:`MAX_FIELDS` top-level fields long and skips every payload by its
length, so it costs the same on a 10 GB model as on a 10-byte file. It tolerates damage: it
stops at the first malformed key and keeps what a truncated last field holds, so a cut or
corrupted file is still sent to its own reader, which says precisely what is wrong with it.
"""

from __future__ import annotations

from typing import NamedTuple

from paramscope.sources.protobuf import (
    FIXED_SIZES,
    LENGTH,
    MAX_FIELD_NUMBER,
    VARINT,
    ProtobufError,
    read_varint,
)

MAX_FIELDS = 32  # top-level fields looked at: every format above shows itself in its first few
# ModelProto: ir_version and model_version are varints, every other field length-delimited.
ONNX_MODEL_FIELDS = {number: LENGTH for number in (2, 3, 4, 6, 7, 8, 14, 20, 25, 26)} | {1: VARINT, 5: VARINT}
META_GRAPH_FIELDS = frozenset(range(1, 8))  # MetaGraphDef: meta_info_def … object_graph_def
COREML_HEADER_FIELDS = frozenset({1, 2, 10})  # specificationVersion, description, isUpdatable
COREML_FIRST_TYPE = 200  # the model-type oneof of CoreML's Model starts at field 200


class TopField(NamedTuple):
    number: int
    wire_type: int
    payload: bytes | memoryview | None  # a length-delimited field's bytes, cut short if the file is


def top_fields(data: bytes | memoryview) -> list[TopField]:
    """The first top-level fields of the message in ``data``, up to the first malformed one."""
    found: list[TopField] = []
    position, end = 0, len(data)
    try:
        while position < end and len(found) < MAX_FIELDS:
            key, position = read_varint(data, position)
            number, wire_type = key >> 3, key & 7
            if not 1 <= number <= MAX_FIELD_NUMBER:
                break
            payload = None
            if wire_type == VARINT:
                _, position = read_varint(data, position)
            elif wire_type == LENGTH:
                try:
                    length, position = read_varint(data, position)
                except ProtobufError:  # the file ends inside the length: the payload is cut to nothing
                    length, position = 0, end
                payload = data[position : position + length]
                position += length
            elif wire_type in FIXED_SIZES:
                position += FIXED_SIZES[wire_type]
            else:
                break
            found.append(TopField(number, wire_type, payload))
    except ProtobufError:
        pass  # a damaged varint: decide from the fields before it
    return found


def _starts_a_meta_graph(payload: bytes | memoryview | None) -> bool:
    """Whether ``payload`` begins with a ``MetaGraphDef`` field: a message numbered 1 to 7."""
    if not payload:
        return False
    try:
        key, _ = read_varint(payload, 0)
    except ProtobufError:
        return False
    return key >> 3 in META_GRAPH_FIELDS and key & 7 == LENGTH


def _is_savedmodel(fields: list[TopField]) -> bool:
    shapes = {(field.number, field.wire_type) for field in fields}
    meta_graphs = [field for field in fields if field.number == 2]
    return (
        bool(meta_graphs)
        and shapes <= {(1, VARINT), (2, LENGTH)}
        and _starts_a_meta_graph(meta_graphs[0].payload)
    )


def _is_coreml(fields: list[TopField]) -> bool:
    types = [field for field in fields if field.number >= COREML_FIRST_TYPE]
    return any(field.wire_type == LENGTH for field in types) and all(
        field.number in COREML_HEADER_FIELDS or field.number >= COREML_FIRST_TYPE for field in fields
    )


def protobuf_kind(data: bytes | memoryview) -> str | None:
    """``"onnx"``, ``"savedmodel"`` or ``"coreml"`` for a message of that format, else None.

    ``data`` is the whole file (a memory map costs nothing here) or at least its first few
    kilobytes; CoreML puts its model-type field after the model's description, which a prefix
    may not reach.
    """
    fields = top_fields(data)
    if _is_savedmodel(fields):
        return "savedmodel"
    if not fields or (fields[0].number, fields[0].wire_type) != (1, VARINT):
        return None
    if _is_coreml(fields):
        return "coreml"
    if len(fields) > 1 and ONNX_MODEL_FIELDS.get(fields[1].number) == fields[1].wire_type:
        return "onnx"
    return None
