"""Pickles written opcode by opcode, for the attacks no library would write.

Each helper returns protocol-2 bytes; ``tensor()`` is torch's own record for a float32
tensor (``_rebuild_tensor_v2`` over a storage named by a persistent id), so files built from
these read like real state dicts up to the point where the attack starts.
"""

from __future__ import annotations

import io
import struct
import zipfile

PROTO = b"\x80\x02"
STOP = b"."


def text(value: str) -> bytes:
    """BINUNICODE."""
    data = value.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(data)) + data


def small_int(value: int) -> bytes:
    return b"K" + bytes([value]) if value < 256 else b"J" + struct.pack("<i", value)


def put(slot: int) -> bytes:
    return b"r" + struct.pack("<I", slot)


def get(slot: int) -> bytes:
    return b"j" + struct.pack("<I", slot)


def tensor(key: str, numel: int, shape: tuple[int, ...] | None = None, offset: int = 0) -> bytes:
    """A float32 tensor over storage ``key`` of ``numel`` elements, contiguous."""
    shape = (numel,) if shape is None else shape
    stride, step = [], 1
    for dim in reversed(shape):
        stride.insert(0, step)
        step *= max(dim, 1)
    return (
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        + b"("
        + text("storage")
        + b"ctorch\nFloatStorage\n"
        + text(key)
        + text("cpu")
        + _int(numel)
        + b"tQ"
        + _int(offset)
        + b"("
        + b"".join(_int(d) for d in shape)
        + b"t"
        + b"("
        + b"".join(_int(s) for s in stride)
        + b"t"
        + b"\x89ccollections\nOrderedDict\n)RtR"
    )


def _int(value: int) -> bytes:
    if 0 <= value < 2**31:
        return small_int(value)
    data = value.to_bytes((value.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def state_dict(items: list[tuple[str, bytes]]) -> bytes:
    """``{name: value, …}`` from already-encoded values."""
    return PROTO + b"}(" + b"".join(text(k) + v for k, v in items) + b"u" + STOP


def torch_zip(pickle: bytes, storages: dict[str, int]) -> bytes:
    """A torch zip archive holding ``pickle`` as data.pkl and storages of the given byte sizes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle)
        for key, size in storages.items():
            archive.writestr(f"archive/data/{key}", b"\0" * size)
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def global_(module: str, name: str) -> bytes:
    """GLOBAL: a name the walker records and never imports."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def record(module: str, name: str, state: bytes) -> bytes:
    """An instance as protocol 2 pickles one (``cls.__new__(cls)`` by NEWOBJ, then BUILD)."""
    return global_(module, name) + b")\x81" + state + b"b"


def dict_of(items: list[tuple[str, bytes]]) -> bytes:
    """A dict value (no STOP) from already-encoded values."""
    return b"}(" + b"".join(text(k) + v for k, v in items) + b"u"


def module(name: str, parameters: bytes, modules: bytes = b"}") -> bytes:
    """A pickled ``nn.Module`` of class ``name`` with the given ``_parameters`` and ``_modules``."""
    state = dict_of(
        [("training", b"\x88"), ("_parameters", parameters), ("_buffers", b"}"), ("_modules", modules)]
    )
    return record("torch.nn.modules.linear", name, state)


def numpy_array(shape: tuple[int, ...], code: str, raw: bytes, order: str = "<") -> bytes:
    """An ndarray as ``ndarray.__reduce__`` pickles it: ``_reconstruct`` and its BUILD state
    ``(1, shape, dtype, is_fortran, rawdata)``, the dtype a ``numpy.dtype`` record."""
    dtype = (
        global_("numpy", "dtype")
        + b"("
        + text(code)
        + b"\x89\x88tR("
        + small_int(3)
        + text(order)
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff"
        + small_int(0)
        + b"tb"
    )
    reconstruct = (
        global_("numpy._core.multiarray", "_reconstruct")
        + b"("
        + global_("numpy", "ndarray")
        + b"("
        + small_int(0)
        + b"tC\x01btR"
    )
    shape_tuple = b"(" + b"".join(_int(d) for d in shape) + b"t"
    raw_bytes = b"B" + struct.pack("<I", len(raw)) + raw
    return reconstruct + b"(" + small_int(1) + shape_tuple + dtype + b"\x89" + raw_bytes + b"tb"
