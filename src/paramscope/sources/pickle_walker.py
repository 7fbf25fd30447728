"""A restricted pickle interpreter that never imports, calls or instantiates anything.

Why hand-written: ``pickle.load`` executes whatever the file asks for (``os.system``, ``eval``,
any importable callable), and even torch's own ``weights_only`` unpickler imports and calls
the allowlisted functions — it has had remote-code-execution bugs. We only need the *shape*
of the data, so we interpret the opcode stream (``pickletools.genops``) on a stack of inert
values: a global is a name, a call is a record of which name was applied to which arguments.
A global outside a small allowlist of data-only names is refused, naming it, before anything
else happens; so are INST/OBJ/EXT opcodes. Nothing from the file is ever executed.

The handlers for the allowlisted names build inert records (``StorageRef``, ``TensorRef``)
from their arguments; callers walk the resulting plain Python structure.
"""

from __future__ import annotations

import io
import pickletools
from collections.abc import Callable
from dataclasses import dataclass, field

from paramscope.errors import InputError
from paramscope.sources.limits import MAX_DEPTH, MAX_MEMO, MAX_OPCODES

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
TORCH_DTYPES = {
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

# Data-only names a checkpoint may mention; each is interpreted, never imported.
ALLOWED = {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("__builtin__", "set"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch.nn.parameter", "Parameter"),
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
}


CONSTANTS = frozenset(
    {
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "FLOAT",
        "BINFLOAT",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
    }
)


@dataclass(frozen=True)
class Global:
    module: str
    name: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


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


@dataclass
class Call:
    """An allowlisted callable applied to arguments we did not need to understand."""

    function: Global
    args: tuple
    state: object = None


@dataclass
class _Mark:
    pass


@dataclass
class _Inert:
    """An object under construction by an allowlisted class (e.g. OrderedDict)."""

    cls: Global
    items: dict = field(default_factory=dict)


class UnsafePickle(InputError):
    pass


def _storage_from_pid(pid) -> StorageRef:
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and len(pid) >= 5):
        raise InputError(f"unexpected persistent id {pid!r:.80}")
    _, storage_type, key, location, numel = pid[:5]
    if isinstance(storage_type, Global):
        if storage_type.module == "torch" and storage_type.name in STORAGE_DTYPES:
            dtype = STORAGE_DTYPES[storage_type.name]
        elif storage_type.module == "torch" and storage_type.name in TORCH_DTYPES:
            dtype = storage_type.name
        else:
            raise UnsafePickle(f"refused global {storage_type.dotted} as a storage type")
    else:
        raise InputError(f"unexpected storage type {storage_type!r:.80}")
    if not isinstance(numel, int) or numel < 0:
        raise InputError(f"bad storage size {numel!r:.40}")
    return StorageRef(str(key), dtype, numel, str(location))


def _as_shape(value) -> tuple[int, ...]:
    if isinstance(value, Call) and value.function == Global("torch", "Size"):
        value = value.args[0] if value.args else ()
    if not isinstance(value, (tuple, list)) or not all(isinstance(d, int) and d >= 0 for d in value):
        raise InputError(f"bad tensor shape {value!r:.80}")
    return tuple(value)


def _reduce(function: Global, args: tuple):
    name = (function.module, function.name)
    if name in {
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_tensor"),
        ("torch._utils", "_rebuild_tensor_v3"),
    }:
        storage, offset, size, stride = args[:4]
        if not isinstance(storage, StorageRef):
            raise InputError("a tensor without a storage")
        requires_grad = bool(args[4]) if len(args) > 4 and isinstance(args[4], bool) else False
        if name[1] == "_rebuild_tensor_v3" and len(args) > 6 and isinstance(args[6], Global):
            storage = StorageRef(storage.key, args[6].name, storage.numel, storage.location)
        return TensorRef(storage, int(offset), _as_shape(size), _as_shape(stride), requires_grad)
    if name in {
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch.nn.parameter", "Parameter"),
    }:
        tensor = args[0] if args else None
        if not isinstance(tensor, TensorRef):
            raise InputError("a parameter without a tensor")
        requires_grad = bool(args[1]) if len(args) > 1 else True
        return TensorRef(tensor.storage, tensor.offset, tensor.shape, tensor.stride, requires_grad, True)
    if name == ("torch._tensor", "_rebuild_from_type_v2"):
        # (function, type, args, state): the tensor is what `function(*args)` rebuilds
        inner = args[0] if args else None
        if isinstance(inner, Global) and len(args) > 2 and isinstance(args[2], tuple):
            return _reduce(inner, args[2])
        raise InputError("unreadable tensor subclass record")
    if name in {("collections", "OrderedDict"), ("collections", "defaultdict")}:
        return _Inert(function)
    return Call(function, args)


def walk(
    data: bytes | io.BufferedIOBase,
    persistent_load=_storage_from_pid,
    also_allowed: Callable[[Global], bool] | None = None,
    reduce: Callable[[Global, tuple], object] = _reduce,
) -> object:
    """Interpret one pickle (bytes, or the next pickle in a stream) into inert Python data.

    Refuses anything but data; a stream is left just after the pickle's STOP. A reader whose
    format pickles framework objects by design (Keras's npz weights) widens the allowlist with
    ``also_allowed`` and may keep every call a plain record with ``reduce``: the names stay
    inert, never imported or called.
    """
    stack: list = []
    metastack: list[list] = []
    memo: dict[int, object] = {}
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        for count, (opcode, arg, _pos) in enumerate(pickletools.genops(stream)):
            if count > MAX_OPCODES:
                raise InputError("pickle too long (opcode limit)")
            name = opcode.name
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                return _finish(stack.pop())
            if name in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ"):
                if name == "GLOBAL" or name == "INST":
                    module, qual = arg.split(" ", 1) if " " in arg else arg.split("\n", 1)
                elif name == "STACK_GLOBAL":
                    qual, module = stack.pop(), stack.pop()
                    if not isinstance(module, str) or not isinstance(qual, str):
                        raise UnsafePickle("refused STACK_GLOBAL with non-string names")
                else:  # OBJ: the class is on the stack after the mark
                    items = _pop_mark(stack, metastack)
                    target = items[0] if items else None
                    label = target.dotted if isinstance(target, Global) else "an object"
                    raise UnsafePickle(f"refused OBJ opcode instantiating {label}")
                target = Global(module, qual)
                if name == "INST":
                    raise UnsafePickle(f"refused INST opcode instantiating {target.dotted}")
                if (
                    (module, qual) not in ALLOWED
                    and not _is_dtype_global(target)
                    and not (also_allowed is not None and also_allowed(target))
                ):
                    raise UnsafePickle(f"refused global {target.dotted}")
                stack.append(target)
            elif name in ("EXT1", "EXT2", "EXT4"):
                raise UnsafePickle("refused pickle extension-registry opcode")
            elif name == "REDUCE":
                args, function = stack.pop(), stack.pop()
                callable_ = (Global, Call) if also_allowed is not None else Global  # partial(cls)(…)
                if not isinstance(function, callable_) or not isinstance(args, tuple):
                    raise UnsafePickle("refused REDUCE of something that is not an allowed global")
                stack.append(reduce(function, args))
            elif name in ("NEWOBJ", "NEWOBJ_EX"):
                if name == "NEWOBJ_EX":
                    stack.pop()
                args, cls = stack.pop(), stack.pop()
                if not isinstance(cls, Global):
                    raise UnsafePickle("refused NEWOBJ of something that is not an allowed global")
                stack.append(reduce(cls, args if isinstance(args, tuple) else ()))
            elif name == "BUILD":
                state = stack.pop()
                target = stack[-1]
                if isinstance(target, Call):
                    target.state = state
                # state of an OrderedDict (its `_metadata`) or a tensor (hooks): not needed
            elif name in ("BINPERSID", "PERSID"):
                pid = stack.pop() if name == "BINPERSID" else arg
                stack.append(persistent_load(pid))
            elif name == "MARK":
                metastack.append(stack)
                stack = []
            elif name in ("POP",):
                stack.pop()
            elif name == "POP_MARK":
                _pop_mark(stack, metastack)
                stack = metastack.pop()
            elif name == "DUP":
                stack.append(stack[-1])
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = stack[-1]
                _check_memo(memo)
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
                _check_memo(memo)
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                key = int(arg)
                if key not in memo:
                    raise InputError("pickle refers to a memo entry it never stored")
                stack.append(memo[key])
            elif name in ("EMPTY_DICT",):
                stack.append({})
            elif name in ("EMPTY_LIST",):
                stack.append([])
            elif name in ("EMPTY_TUPLE",):
                stack.append(())
            elif name == "EMPTY_SET":
                stack.append([])
            elif name == "DICT":
                items = _pop_mark(stack, metastack)
                stack = metastack.pop()
                stack.append(_pairs(items))
            elif name == "LIST":
                items = _pop_mark(stack, metastack)
                stack = metastack.pop()
                stack.append(list(items))
            elif name in ("TUPLE", "FROZENSET"):
                items = _pop_mark(stack, metastack)
                stack = metastack.pop()
                stack.append(tuple(items))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                _setitem(stack[-1], key, value)
            elif name == "SETITEMS":
                items = _pop_mark(stack, metastack)
                stack = metastack.pop()
                for key, value in _pairs(items).items():
                    _setitem(stack[-1], key, value)
            elif name == "APPEND":
                value = stack.pop()
                _append(stack[-1], [value])
            elif name in ("APPENDS", "ADDITEMS"):
                items = _pop_mark(stack, metastack)
                stack = metastack.pop()
                _append(stack[-1], items)
            elif name in ("NONE",):
                stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                stack.append(name == "NEWTRUE")
            elif name in CONSTANTS:
                stack.append(arg)
            else:
                raise UnsafePickle(f"refused pickle opcode {name}")
            if len(metastack) > MAX_DEPTH:
                raise InputError("pickle nests too deeply")
    except InputError:
        raise
    except RecursionError:
        raise InputError("pickle nests too deeply") from None
    except ValueError as exc:
        if "exhausted" in str(exc):  # pickletools' word for a stream that ends early
            raise InputError("pickle is truncated (it ends before STOP)") from None
        raise InputError(f"malformed pickle ({str(exc)[:80]})") from None
    except (IndexError, KeyError, TypeError, AttributeError, EOFError) as exc:
        raise InputError(f"malformed pickle ({type(exc).__name__}: {str(exc)[:80]})") from None
    raise InputError("pickle ends without STOP (truncated)")


def _is_dtype_global(target: Global) -> bool:
    return target.module == "torch" and (target.name in STORAGE_DTYPES or target.name in TORCH_DTYPES)


def _check_memo(memo: dict) -> None:
    if len(memo) > MAX_MEMO:
        raise InputError("pickle memo too large")


def _pop_mark(stack: list, metastack: list) -> list:
    if not metastack:
        raise InputError("malformed pickle (MARK missing)")
    return stack


def _pairs(items: list) -> dict:
    if len(items) % 2:
        raise InputError("malformed pickle (odd dict items)")
    result = {}
    for key, value in zip(items[::2], items[1::2], strict=True):
        result[_hashable(key)] = value
    return result


def _hashable(key):
    try:
        hash(key)
    except TypeError:
        return repr(key)
    return key


def _setitem(target, key, value) -> None:
    if isinstance(target, dict):
        target[_hashable(key)] = value
    elif isinstance(target, _Inert):
        target.items[_hashable(key)] = value
    else:
        raise InputError("malformed pickle (SETITEM on a non-dict)")


def _append(target, items) -> None:
    if isinstance(target, list):
        target.extend(items)
    elif isinstance(target, (_Inert, Call)):
        pass  # e.g. set/defaultdict contents we do not need
    else:
        raise InputError("malformed pickle (APPEND on a non-list)")


def _finish(value, done: dict[int, object] | None = None):
    """Turn inert OrderedDicts back into dicts, recursively, for the callers.

    Memo references can share or even cycle through containers; each container is converted
    once and a cycle points back to the converted object.
    """
    done = {} if done is None else done
    if id(value) in done:
        return done[id(value)]
    if isinstance(value, (_Inert, dict)):
        result: dict = {}
        done[id(value)] = result
        for key, item in (value.items if isinstance(value, _Inert) else value).items():
            result[key] = _finish(item, done)
        return result
    if isinstance(value, list):
        items: list = []
        done[id(value)] = items
        items.extend(_finish(item, done) for item in value)
        return items
    if isinstance(value, tuple):
        return tuple(_finish(item, done) for item in value)
    return value
