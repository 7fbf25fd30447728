"""A pickle interpreter that never imports, calls or instantiates anything.

Why hand-written: ``pickle.load`` executes whatever the file asks for (``os.system``, ``eval``,
any importable callable), and even torch's own ``weights_only`` unpickler imports and calls
the allowlisted functions — it has had remote-code-execution bugs. We only need the *shape*
of the data, so we decode the opcode stream ourselves on a stack of inert values: a global is
a name (:class:`Global`), a call or an instantiation (REDUCE, NEWOBJ, INST, OBJ) is a record
(:class:`Call`) of which name was applied to which arguments, with the state BUILD gave it and
the items SETITEMS/APPENDS added. Since nothing is ever executed, no name needs refusing to
stay safe: every global is recorded (``names``) so that a caller can say what *loading* the
file would do (see pickle_verdict.py), and the walk goes on to count every tensor it reaches.

Why not ``pickletools.genops``: it is generic (a reader object and a position per opcode) and
three times slower than this loop, and the opcode budget must be affordable for the largest
real checkpoints. Why it is safe on hostile bytes: every length is checked against the bytes
that remain, large bytes and integers become :class:`Opaque` markers instead of copies, every
object created and every opcode is charged to the read budget, the MARK stack is bounded by
``depth``, and a container reached twice through the memo is the same Python object — so a
DAG that would expand into 2^64 paths stays as small as the pickle that describes it.

The data-only names torch checkpoints use (tensor and parameter rebuilds, ``OrderedDict``) are
interpreted into inert records (``StorageRef``, ``TensorRef``, ``InertDict``); callers walk the
resulting plain Python structure (see :func:`tensors_in`).
"""

from __future__ import annotations

import codecs
import io
import mmap
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from paramscope.core.dtypes import dtype_bits
from paramscope.core.printable import visible
from paramscope.errors import InputError
from paramscope.sources.boundary import shape_of
from paramscope.sources.budget import BudgetExceeded, ReadBudget

STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "Float8_e4m3fnStorage": "float8_e4m3fn",
    "Float8_e5m2Storage": "float8_e5m2",
    "QInt8Storage": "qint8",
    "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32",
    "UntypedStorage": "uint8",
}
TORCH_DTYPES = frozenset(
    {
        "float32",
        "float64",
        "float16",
        "bfloat16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
        "complex64",
        "complex128",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "uint16",
        "uint32",
        "uint64",
        "half",
        "float",
        "double",
        "long",
        "int",
        "short",
    }
)

LARGE_BYTES = 4096  # bytes constants longer than this become Opaque markers, never copied
LARGE_TEXT = 1024 * 1024  # so do strings longer than this
LARGE_INT_BYTES = 64  # so do integers wider than this (no real checkpoint needs them)
CHECK_EVERY = 1 << 16  # opcodes between budget and clock checks
PROTO_OPCODE = 0x80


@dataclass(frozen=True, slots=True)
class Global:
    module: str
    name: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True, slots=True)
class Opaque:
    """A value too large to keep (long bytes, huge integers): what it was, not its content, and
    how many bytes the pickle spent on it (a numpy array's raw data is checked against them)."""

    description: str
    size: int = 0


@dataclass(frozen=True)
class StorageRef:
    """A storage named by a persistent id: its key in the archive, dtype and element count."""

    key: str
    dtype: str
    numel: int
    location: str


@dataclass(frozen=True)
class TensorRef:
    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    requires_grad: bool
    parameter: bool = False


@dataclass(slots=True)
class Call:
    """A name applied to arguments, never executed: what loading would have built.

    ``state`` is what BUILD gave the object (a pickled class's ``__dict__``); ``items`` and
    ``listitems`` are what SETITEMS and APPENDS added to it (dict and list subclasses)."""

    function: Global | Call
    args: tuple
    state: object = None
    items: dict | None = None
    listitems: list | None = None


class InertDict(dict):
    """A dict rebuilt by an allowlisted class (``OrderedDict``, ``defaultdict``): plain data."""

    __slots__ = ("cls",)

    def __init__(self, cls: Global) -> None:
        super().__init__()
        self.cls = cls


class Names(dict):
    """Every global the pickles of one file named (``(module, name) -> Global``), and the
    pickle protocol of each (0 and 1 have no PROTO opcode and are recorded as 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.protocols: set[int] = set()


Reduce = Callable[[Global, tuple], object]
PersistentLoad = Callable[[object], object]


def _storage_from_pid(pid: object, budget: ReadBudget) -> StorageRef | Global:
    """A storage; or, in a legacy file, an ``nn.Module`` class, which torch's legacy pickler
    names by ``('module', cls, source_file, source)`` to warn when the source changed."""
    if isinstance(pid, tuple) and len(pid) >= 2 and pid[0] == "module" and isinstance(pid[1], Global):
        return pid[1]
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise InputError(f"unexpected persistent id {pid!r:.80}")
    _, storage_type, key, location, numel = pid[:5]
    if not isinstance(storage_type, Global):
        raise InputError(f"unexpected storage type {storage_type!r:.80}")
    if storage_type == UNTYPED_STORAGE:  # bytes; _rebuild_tensor_v3 names the tensor's dtype
        dtype = "uint8"
    elif storage_type.module == "torch" and storage_type.name in STORAGE_DTYPES:
        dtype = STORAGE_DTYPES[storage_type.name]
    elif storage_type.module == "torch" and storage_type.name in TORCH_DTYPES:
        dtype = storage_type.name
    else:
        raise InputError(f"storage type {visible(storage_type.dotted)[:120]} is not a torch storage")
    if type(numel) is not int or not 0 <= numel < 2**63:
        raise InputError(f"bad storage size {numel!r:.40}")
    if not isinstance(key, (str, int)) or not isinstance(location, str):
        raise InputError(f"bad storage key {key!r:.40}")
    return StorageRef(str(key), dtype, numel, location)


def _as_shape(value: object, budget: ReadBudget, what: str) -> tuple[int, ...]:
    if isinstance(value, Call) and value.function == Global("torch", "Size"):
        value = value.args[0] if value.args else ()
    return shape_of(value, budget, what)


UNTYPED_STORAGE = Global("torch.storage", "UntypedStorage")
REBUILD_QTENSOR = Global("torch._utils", "_rebuild_qtensor")
REBUILD_TENSOR = frozenset({"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3"})
REBUILD_PARAMETER = frozenset(
    {
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch.nn.parameter", "Parameter"),
    }
)


def _retyped(storage: StorageRef, dtype: str) -> StorageRef:
    """The storage seen as ``dtype``: an untyped storage counts bytes, the tensor's elements."""
    bits = dtype_bits(dtype)
    if storage.dtype != "uint8" or bits is None or bits == 8:
        return StorageRef(storage.key, dtype, storage.numel, storage.location)
    return StorageRef(storage.key, dtype, storage.numel * 8 // bits, storage.location)


def _tensor(function: Global, args: tuple, budget: ReadBudget) -> TensorRef:
    if len(args) < 4 or not isinstance(args[0], StorageRef):
        raise InputError("a tensor without a storage")
    storage, offset = args[0], args[1]
    if type(offset) is not int or not 0 <= offset < 2**63:
        raise InputError(f"bad storage offset {offset!r:.40}")
    requires_grad = len(args) > 4 and args[4] is True
    if function.name == "_rebuild_tensor_v3" and len(args) > 6 and isinstance(args[6], Global):
        storage = _retyped(storage, args[6].name)
    shape = _as_shape(args[2], budget, "a tensor")
    stride = _as_shape(args[3], budget, "a tensor's stride")
    if len(stride) != len(shape):
        raise InputError(f"a tensor of shape {shape} with stride {stride}")
    return TensorRef(storage, offset, shape, stride, requires_grad)


def _reduce(function: Global, args: tuple, budget: ReadBudget) -> object:
    """What an allowlisted call would build, as an inert record."""
    if function.module == "torch._utils" and function.name in REBUILD_TENSOR:
        return _tensor(function, args, budget)
    if function == REBUILD_QTENSOR:  # (storage, offset, size, stride, quantizer params, requires_grad, …)
        return _tensor(function, (*args[:4], args[5] if len(args) > 5 else False), budget)
    if (function.module, function.name) in REBUILD_PARAMETER:
        tensor = args[0] if args else None
        if not isinstance(tensor, TensorRef):
            raise InputError("a parameter without a tensor")
        requires_grad = args[1] is True if len(args) > 1 else True
        return TensorRef(tensor.storage, tensor.offset, tensor.shape, tensor.stride, requires_grad, True)
    if function == Global("torch._tensor", "_rebuild_from_type_v2"):
        # (function, type, args, state): the tensor is what `function(*args)` rebuilds
        inner = args[0] if args else None
        if isinstance(inner, Global) and len(args) > 2 and isinstance(args[2], tuple) and inner != function:
            return _reduce(inner, args[2], budget)
        raise InputError("unreadable tensor subclass record")
    if function.module == "collections" and function.name in ("OrderedDict", "defaultdict"):
        return _inert_dict(function, args, budget)
    return Call(function, args)


def _inert_dict(cls: Global, args: tuple, budget: ReadBudget) -> InertDict:
    """``OrderedDict()``, ``defaultdict(factory)`` (their items follow by SETITEMS) and the
    initial contents Python 2-era pickles pass as an argument: ``OrderedDict([[key, value], …])``
    (how Python 2 reduced it), ``OrderedDict({…})``, ``defaultdict(factory, {…})``."""
    result = InertDict(cls)
    position = 0 if cls.name == "OrderedDict" else 1  # a defaultdict's first argument: its factory
    contents = args[position] if len(args) > position else None
    if isinstance(contents, dict):
        result.update(contents)
    elif isinstance(contents, (list, tuple)):
        budget.charge("pickle_objects", len(contents), "pickle")
        for pair in contents:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise InputError(f"malformed pickle ({cls.name} item of a {type(pair).__name__}, not a pair)")
            result[_hashable(pair[0])] = pair[1]
    elif contents is not None:
        raise InputError(f"malformed pickle ({cls.name} of a {type(contents).__name__})")
    return result


def _decoded(raw: bytes) -> str:
    """Text as pickle writes it: UTF-8 with lone surrogates passed through (``\ud800`` stays
    itself, so two keys that differ only there stay two); invalid bytes kept as surrogate
    escapes rather than replaced, for the same reason. Names are escaped for display later."""
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape")


PLAIN_KEYS = (str, int, float, bytes, type(None))


def _hashable(key: object) -> object:
    """A dict key as plain data. Anything but a scalar or a short flat tuple of scalars is
    replaced by a label: hashing or printing a tuple DAG costs 2**depth, and such keys are
    never names of tensors."""
    if isinstance(key, PLAIN_KEYS):
        return key
    if isinstance(key, tuple) and len(key) <= 16 and all(isinstance(k, PLAIN_KEYS) for k in key):
        return key
    return f"<{type(key).__name__} key>"


class _Decoder:
    """One pickle's opcodes interpreted over a byte buffer; see the module docstring."""

    def __init__(
        self,
        data: bytes | mmap.mmap,
        start: int,
        budget: ReadBudget,
        persistent_load: PersistentLoad,
        reduce: Reduce,
        names: Names,
    ) -> None:
        self.data, self.budget = data, budget
        self.end = min(len(data), start + budget.limits.pickle_bytes)  # past it: over budget
        self.persistent_load, self.reduce = persistent_load, reduce
        self.globals = names

    # -- argument readers ------------------------------------------------------------------
    def _take(self, pos: int, size: int, keep: int) -> tuple[bytes | None, int]:
        """The ``size`` bytes at ``pos`` (None, not copied, when longer than ``keep``)."""
        end = pos + size
        if size < 0 or end > self.end:
            self._past_end(end)
        return (self.data[pos:end] if size <= keep else None), end

    def _past_end(self, end: int) -> None:
        if self.end < len(self.data) and end > self.end:
            raise BudgetExceeded("pickle_bytes", self.budget.limits.pickle_bytes, "pickle")
        raise InputError("pickle is truncated (an argument runs past the end)")

    def _line(self, pos: int) -> tuple[bytes, int]:
        end = self.data.find(b"\n", pos, min(pos + 65536, self.end))
        if end < 0:
            raise InputError("pickle is truncated or malformed (a text argument without its newline)")
        return bytes(self.data[pos:end]), end + 1

    def _bytes(self, pos: int, size: int) -> tuple[object, int]:
        raw, end = self._take(pos, size, LARGE_BYTES)
        return (Opaque(f"{size:,} bytes", size) if raw is None else bytes(raw)), end

    def _text(self, pos: int, size: int) -> tuple[object, int]:
        raw, end = self._take(pos, size, LARGE_TEXT)
        return (Opaque(f"{size:,} bytes of text", size) if raw is None else _decoded(bytes(raw))), end

    def _long(self, pos: int, size: int) -> tuple[object, int]:
        raw, end = self._take(pos, size, LARGE_INT_BYTES)
        return (
            Opaque(f"a {size:,}-byte integer", size)
            if raw is None
            else int.from_bytes(raw, "little", signed=True)
        ), end

    def _global(self, module: str, name: str) -> Global:
        key = (module, name)
        target = self.globals.get(key)
        if target is None:
            if not module or not name:
                raise InputError(f"malformed pickle (a global without a name: {visible(module)[:60]!r})")
            target = self.globals[key] = Global(module, name)
        return target

    # -- the interpreter -------------------------------------------------------------------
    def run(self, pos: int) -> tuple[object, int]:
        """The pickle starting at ``pos``: its value and the position just after its STOP."""
        data, budget = self.data, self.budget
        limits = budget.limits
        stack: list = []
        metastack: list[list] = []
        memo: dict[int, object] = {}
        size = self.end
        ops = objects = 0
        next_check = CHECK_EVERY
        unpack = struct.unpack_from
        while True:
            if pos >= size:
                self._past_end(pos + 1)
            op = data[pos]
            pos += 1
            ops += 1
            if ops >= next_check:
                budget.charge("pickle_opcodes", ops - next_check + CHECK_EVERY, "pickle")
                budget.charge("pickle_objects", objects, "pickle")
                budget.tick()
                objects = 0
                next_check = ops + CHECK_EVERY
            if op == 0x72:  # LONG_BINPUT
                memo[unpack("<I", data, pos)[0]] = stack[-1]
                pos += 4
                objects += 1
            elif op == 0x4B:  # BININT1
                stack.append(data[pos])
                pos += 1
            elif op == 0x68:  # BINGET
                stack.append(self._memo(memo, data[pos]))
                pos += 1
            elif op == 0x58:  # BINUNICODE
                value, pos = self._text(pos + 4, unpack("<I", data, pos)[0])
                stack.append(value)
                objects += 1
            elif op == 0x28:  # MARK
                metastack.append(stack)
                stack = []
                if len(metastack) > limits.depth:
                    raise BudgetExceeded("depth", limits.depth, "pickle")
            elif op == 0x52:  # REDUCE
                args = stack.pop()
                function = stack.pop()
                stack.append(self._call(function, args))
                objects += 1
            elif op == 0x74:  # TUPLE
                items = tuple(stack)
                stack = self._pop_mark(metastack)
                stack.append(items)
                objects += 1
            elif op in (0x85, 0x86, 0x87):  # TUPLE1, TUPLE2, TUPLE3
                n = op - 0x84
                if len(stack) < n:
                    raise InputError("malformed pickle (tuple of missing items)")
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
                objects += 1
            elif op == 0x71:  # BINPUT
                memo[data[pos]] = stack[-1]
                pos += 1
            elif op == 0x94:  # MEMOIZE
                memo[len(memo)] = stack[-1]
                objects += 1
            elif op == 0x8C:  # SHORT_BINUNICODE
                value, pos = self._text(pos + 1, data[pos])
                stack.append(value)
                objects += 1
            elif op == 0x4A:  # BININT
                stack.append(unpack("<i", data, pos)[0])
                pos += 4
                objects += 1
            elif op == 0x4D:  # BININT2
                stack.append(unpack("<H", data, pos)[0])
                pos += 2
                objects += 1
            elif op == 0x6A:  # LONG_BINGET
                stack.append(self._memo(memo, unpack("<I", data, pos)[0]))
                pos += 4
            elif op == 0x89 or op == 0x88:  # NEWFALSE, NEWTRUE
                stack.append(op == 0x88)
            elif op == 0x4E:  # NONE
                stack.append(None)
            elif op == 0x29:  # EMPTY_TUPLE
                stack.append(())
            elif op == 0x7D:  # EMPTY_DICT
                stack.append({})
                objects += 1
            elif op == 0x5D:  # EMPTY_LIST
                stack.append([])
                objects += 1
            elif op == 0x73:  # SETITEM
                value = stack.pop()
                key = stack.pop()
                self._setitems(stack[-1], [key, value])
                objects += 1
            elif op == 0x75:  # SETITEMS
                items = stack
                stack = self._pop_mark(metastack)
                self._setitems(stack[-1], items)
                objects += len(items) // 2
            elif op == 0x61:  # APPEND
                value = stack.pop()
                self._append(stack[-1], [value])
                objects += 1
            elif op == 0x65 or op == 0x90:  # APPENDS, ADDITEMS
                items = stack
                stack = self._pop_mark(metastack)
                self._append(stack[-1], items)
                objects += len(items)
            elif op == 0x62:  # BUILD
                state = stack.pop()
                if isinstance(stack[-1], Call):
                    stack[-1].state = state
                # the state of an OrderedDict (its `_metadata`) or a tensor (hooks): not needed
            elif op == 0x51:  # BINPERSID
                stack.append(self.persistent_load(stack.pop()))
                objects += 1
            elif op == 0x93:  # STACK_GLOBAL
                name = stack.pop()
                module = stack.pop()
                if not isinstance(module, str) or not isinstance(name, str):
                    raise InputError("malformed pickle (STACK_GLOBAL with names that are not text)")
                stack.append(self._global(module, name))
            elif op == 0x63:  # GLOBAL
                module, pos = self._line(pos)
                name, pos = self._line(pos)
                stack.append(self._global(_decoded(module), _decoded(name)))
            elif op == 0x81 or op == 0x92:  # NEWOBJ, NEWOBJ_EX
                if op == 0x92:
                    stack.pop()  # keyword arguments
                args = stack.pop()
                stack.append(self._call(stack.pop(), args if isinstance(args, tuple) else ()))
                objects += 1
            elif op == 0x2E:  # STOP
                if len(stack) != 1 or metastack:
                    raise InputError("malformed pickle (STOP with a stack that is not one value)")
                budget.charge("pickle_opcodes", ops - next_check + CHECK_EVERY, "pickle")
                budget.charge("pickle_objects", objects, "pickle")
                return stack[0], pos
            elif op == 0x30:  # POP
                if stack:
                    stack.pop()
                else:
                    stack = self._pop_mark(metastack)
            elif op == 0x31:  # POP_MARK
                stack = self._pop_mark(metastack)
            elif op == 0x32:  # DUP
                stack.append(stack[-1])
            elif op == 0x80:  # PROTO
                pos += 1
            elif op == 0x95:  # FRAME: a length hint; the opcodes simply follow
                pos += 8
            elif op == 0x8A:  # LONG1
                value, pos = self._long(pos + 1, data[pos])
                stack.append(value)
                objects += 1
            elif op == 0x8B:  # LONG4
                value, pos = self._long(pos + 4, unpack("<i", data, pos)[0])
                stack.append(value)
                objects += 1
            elif op == 0x47:  # BINFLOAT
                stack.append(unpack(">d", data, pos)[0])
                pos += 8
                objects += 1
            elif op in (0x42, 0x43, 0x8E, 0x96):  # BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                fmt, width = {0x42: ("<I", 4), 0x43: ("<B", 1), 0x8E: ("<Q", 8), 0x96: ("<Q", 8)}[op]
                value, pos = self._bytes(pos + width, unpack(fmt, data, pos)[0])
                stack.append(value)
                objects += 1
            elif op in (0x54, 0x55):  # BINSTRING, SHORT_BINSTRING (Python 2 str)
                fmt, width = ("<i", 4) if op == 0x54 else ("<B", 1)
                value, pos = self._text(pos + width, unpack(fmt, data, pos)[0])
                stack.append(value)
                objects += 1
            elif op == 0x8D:  # BINUNICODE8
                value, pos = self._text(pos + 8, unpack("<Q", data, pos)[0])
                stack.append(value)
                objects += 1
            elif op == 0x64:  # DICT
                items = stack
                stack = self._pop_mark(metastack)
                result: dict = {}
                self._setitems(result, items)
                stack.append(result)
                objects += 1
            elif op == 0x6C:  # LIST
                items = stack
                stack = self._pop_mark(metastack)
                stack.append(items)
                objects += 1
            elif op == 0x91:  # FROZENSET
                items = stack
                stack = self._pop_mark(metastack)
                stack.append(tuple(items))
                objects += 1
            elif op == 0x8F:  # EMPTY_SET
                stack.append([])
                objects += 1
            elif op in (0x49, 0x4C, 0x46, 0x53, 0x56, 0x50, 0x67):  # text-mode opcodes
                value, pos = self._text_opcode(op, pos, memo)
                stack.append(value)
                objects += 1
            elif op == 0x70:  # PUT
                line, pos = self._line(pos)
                memo[self._int(line)] = stack[-1]
                objects += 1
            elif op == 0x69:  # INST: the class in two text lines, its arguments since MARK
                module, pos = self._line(pos)
                name, pos = self._line(pos)
                target = self._global(_decoded(module), _decoded(name))
                args = tuple(stack)
                stack = self._pop_mark(metastack)
                stack.append(self.reduce(target, args))
                objects += 1
            elif op == 0x6F:  # OBJ: the class and its arguments, all since MARK
                items = stack
                stack = self._pop_mark(metastack)
                if not items:
                    raise InputError("malformed pickle (OBJ without a class)")
                stack.append(self._call(items[0], tuple(items[1:])))
                objects += 1
            elif op in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4: a code in copyreg's registry
                width = {0x82: 1, 0x83: 2, 0x84: 4}[op]
                code = int.from_bytes(data[pos : pos + width], "little")
                pos += width
                stack.append(self._global("copyreg", f"<extension code {code}>"))
            else:
                raise InputError(f"malformed pickle (unknown opcode 0x{op:02x})")

    def _text_opcode(self, op: int, pos: int, memo: dict) -> tuple[object, int]:
        """INT, LONG, FLOAT, STRING, UNICODE, PERSID, GET and PUT: arguments as text lines."""
        line, pos = self._line(pos)
        try:
            if op == 0x49:  # INT ("01"/"00" are protocol 0's True/False)
                value: object = {b"01": True, b"00": False}.get(line)
                return (int(line) if value is None else value), pos
            if op == 0x4C:  # LONG
                return int(line.rstrip(b"L")), pos
            if op == 0x46:  # FLOAT
                return float(line), pos
            if op == 0x53:  # STRING: a quoted Python 2 literal
                if len(line) < 2 or line[:1] not in (b"'", b'"') or line[-1:] != line[:1]:
                    raise InputError("malformed pickle (badly quoted STRING)")
                return codecs.escape_decode(line[1:-1])[0].decode("utf-8", "replace"), pos
            if op == 0x56:  # UNICODE
                return line.decode("raw-unicode-escape"), pos
            if op == 0x50:  # PERSID
                return self.persistent_load(line.decode("ascii", "replace")), pos
            return self._memo(memo, int(line)), pos  # GET
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"malformed pickle (bad text argument: {str(exc)[:60]})") from None

    @staticmethod
    def _int(line: bytes) -> int:
        try:
            return int(line)
        except ValueError:
            raise InputError("malformed pickle (bad memo key)") from None

    def _call(self, function: object, args: object) -> object:
        """``function(*args)`` as a record. Loading would fail on anything but a global or
        an object built from one, so the file is malformed there."""
        if not isinstance(function, (Global, Call)) or not isinstance(args, tuple):
            raise InputError(f"malformed pickle (a call of a {type(function).__name__})")
        if isinstance(function, Call):
            return Call(function, args)
        return self.reduce(function, args)

    @staticmethod
    def _memo(memo: dict, key: int) -> object:
        try:
            return memo[key]
        except KeyError:
            raise InputError("pickle refers to a memo entry it never stored") from None

    @staticmethod
    def _pop_mark(metastack: list) -> list:
        if not metastack:
            raise InputError("malformed pickle (MARK missing)")
        return metastack.pop()

    @staticmethod
    def _setitems(target: object, items: list) -> None:
        if len(items) % 2:
            raise InputError("malformed pickle (odd dict items)")
        if isinstance(target, Call):  # a dict subclass: its items are kept with the record
            if target.items is None:
                target.items = {}
            target = target.items
        if not isinstance(target, dict):
            raise InputError("malformed pickle (SETITEM on a non-dict)")
        for i in range(0, len(items), 2):
            target[_hashable(items[i])] = items[i + 1]

    @staticmethod
    def _append(target: object, items: list) -> None:
        if isinstance(target, list):
            target.extend(items)
        elif isinstance(target, Call):  # a list subclass (or a set's ADDITEMS)
            if target.listitems is None:
                target.listitems = []
            target.listitems.extend(items)
        elif not isinstance(target, InertDict):  # a defaultdict's contents: not needed
            raise InputError("malformed pickle (APPEND on a non-list)")


def walk_at(
    data: bytes | mmap.mmap,
    start: int,
    budget: ReadBudget,
    persistent_load: PersistentLoad | None = None,
    reduce: Reduce | None = None,
    names: Names | None = None,
) -> tuple[object, int]:
    """The pickle at ``data[start:]`` as inert Python data, and where its STOP ends.

    Tensors become ``TensorRef`` records of torch storages unless ``persistent_load`` and
    ``reduce`` say otherwise (Keras's npz weights keep every call a plain record). Every global
    the pickle names is added to ``names``, for the caller's verdict; none is imported.
    """
    names = Names() if names is None else names
    if start + 1 < len(data):
        names.protocols.add(data[start + 1] if data[start] == PROTO_OPCODE else 1)
    decoder = _Decoder(
        data,
        start,
        budget,
        persistent_load or (lambda pid: _storage_from_pid(pid, budget)),
        reduce or (lambda function, args: _reduce(function, args, budget)),
        names,
    )
    try:
        return decoder.run(start)
    except (IndexError, struct.error):  # an opcode's fixed-size argument past the end
        raise InputError("pickle is truncated (it ends inside an opcode)") from None
    except RecursionError:
        raise BudgetExceeded("depth", budget.limits.depth, "pickle") from None


def walk(
    data: bytes | io.BufferedIOBase,
    persistent_load: PersistentLoad | None = None,
    reduce: Reduce | None = None,
    budget: ReadBudget | None = None,
    names: Names | None = None,
) -> object:
    """One pickle (bytes, or the rest of a stream, at most ``pickle_bytes``) as inert data."""
    budget = budget or ReadBudget()
    if not isinstance(data, (bytes, bytearray)):
        data = data.read(budget.limits.pickle_bytes + 1)
    return walk_at(bytes(data), 0, budget, persistent_load, reduce, names)[0]


def tensors_in(value: object, budget: ReadBudget) -> Iterator[tuple[tuple[str, ...], TensorRef, bool]]:
    """Every torch tensor under ``value`` with its key path and whether it sits in optimizer
    state; a pickled ``nn.Module``'s parameters and buffers under the names torch gives them.

    See torch_pickled.py (imported here, not at the top: it builds on this module), whose
    :func:`holdings` also reports NumPy arrays, the modules and which tensors are buffers.
    A tensor reached twice is listed twice (tied weights are aliases of one tensor).
    """
    from paramscope.sources.torch_pickled import Held, holdings

    for found in holdings(value, budget):
        if isinstance(found, Held) and isinstance(found.tensor, TensorRef):
            yield found.path, found.tensor, found.in_optimizer
