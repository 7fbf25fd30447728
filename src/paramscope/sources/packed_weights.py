"""Packed quantized weights among a flat file's tensors: GPTQ, AWQ, bitsandbytes and FP8.

Quantizers store a linear layer's weight as integers that pack several low-bit values each
(GPTQ's int32 ``qweight`` holds eight 4-bit weights) beside the scales, zero points and lookup
tables that turn them back into floats. Counted by its shape such a layer has an eighth of its
parameters, and its integer dtype made it look like state. Each layout is recognised here from
names, dtypes and shapes together, exactly as the quantizer's own code writes it (cited at each
recogniser): a tensor called ``qweight`` is not enough. A recognised weight becomes one logical
tensor (the float layer's parameter count, the bytes really stored); its scales, zero points
and tables become state, labelled with what they are. Tensors that do not fit a layout stay as
stored, and the report says which looked packed but did not fit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from paramscope.core.dtypes import tensor_bytes
from paramscope.core.units import count, plural
from paramscope.errors import InputError
from paramscope.sources.boundary import beside, load_json, read_small, shape_of
from paramscope.sources.budget import BudgetExceeded, ReadBudget

if TYPE_CHECKING:
    from paramscope.sources.flat import FlatTensor

PACK_BITS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}  # gptqmodel's pack dtypes
GPTQ_BITS = (2, 3, 4, 8)  # AutoGPTQ QuantLinear: "Only 2,3,4,8 bits are supported."
FP8 = {"float8_e4m3fn": "e4m3", "float8_e4m3fnuz": "e4m3", "float8_e5m2": "e5m2", "float8_e5m2fnuz": "e5m2"}
FLOATS = ("float", "bfloat")
BNB_TYPES = ("nf4", "fp4")
QUANT_STATE_BYTES = 64 * 1024  # bitsandbytes' packed quant state is a ~200-byte JSON text
CONFIG_FILES = ("config.json", "quantize_config.json", "quant_config.json")  # HF, AutoGPTQ, AutoAWQ
COMPANION_WORDS = {
    "scale": "scales",
    "zero-point": "zero points",
    "group-index": "group indices",
    "absmax": "absmax",
    "quant-map": "quant maps",
    "quant-state": "quant states",
    "format": "formats",
}


class NotPacked(Exception):
    """Tensors that look like a packed layer but do not fit its layout (the reason)."""


@dataclass(frozen=True)
class QuantConfig:
    """What a quantization config beside the file says, validated; ``problem`` if unusable."""

    file: str
    bits: int | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Hints:
    """What a reader knows besides the tensors' headers; both are asked only when needed."""

    config: Callable[[], QuantConfig | None] = lambda: None  # the quantization config beside the file
    content: Callable[[str], bytes] | None = None  # the stored bytes of a small tensor, by name


@dataclass(frozen=True)
class Packing:
    """How one tensor of a packed layer is reported."""

    layer: str  # the layer's dotted name: its node in the tree
    leaf: str  # the tensor's name under that node (``qweight``, ``weight.absmax``)
    quantized: str  # the weight's scheme, or what a companion tensor is (Tensor.quantized)
    logical: tuple[int, ...] | None = None  # the weight's logical shape; None for companions


@dataclass(frozen=True)
class PackedLayer:
    family: str  # for the report's sentence: "GPTQ 4-bit"
    scheme: str  # Tensor.quantized of the weight
    layer: str
    weight: FlatTensor
    logical: tuple[int, ...]
    companions: dict[str, str]  # tensor name -> what it is


@dataclass
class Recognition:
    packings: dict[str, Packing] = field(default_factory=dict)  # tensor name -> how it is reported
    warnings: list[str] = field(default_factory=list)


def stored_bytes(entry: FlatTensor) -> int:
    return (
        entry.nbytes if entry.nbytes is not None else tensor_bytes(math.prod(entry.shape), entry.dtype) or 0
    )


def _parent(name: str) -> tuple[str, str]:
    """(layer, leaf) of a dotted name; the layer is empty at the top level."""
    layer, _, leaf = name.rpartition(".")
    return layer, leaf


def _sibling(layer: str, leaf: str) -> str:
    return f"{layer}.{leaf}" if layer else leaf


def _is_float(entry: FlatTensor) -> bool:
    return entry.dtype.startswith(FLOATS) and entry.dtype not in FP8


def _groups_fit(features: int, groups: int) -> bool:
    """Whether ``ceil(features / group_size) == groups`` for some group size."""
    if not 1 <= groups <= features:
        return False
    size = -(-features // groups)
    return -(-features // size) == groups


# ---------------------------------------------------------------- GPTQ and AWQ


def _gptq_in(bits: int, pack: int, qweight: FlatTensor, g_idx: FlatTensor | None) -> int | None:
    """Input features of a GPTQ layer of ``bits``: g_idx has one entry per input; without it,
    qweight's rows unpacked (``infeatures // 32 * bits`` rows, AutoGPTQ)."""
    if g_idx is not None:
        return g_idx.shape[0]
    rows = qweight.shape[0]
    return rows * pack // bits if rows * pack % bits == 0 else None


def _gptq_bits(pack: int, qweight, qzeros, scales, g_idx) -> dict[int, tuple[int, int]]:
    """Bits -> logical (in, out) for every bit width the shapes fit, as AutoGPTQ's
    ``qlinear_cuda_old.QuantLinear.__init__`` (and gptqmodel's ``PackableQuantLinear``) size
    them: qweight (in // pack * bits, out), qzeros (groups, out // pack * bits), scales
    (groups, out) float, g_idx (in,) int."""
    groups, out = scales.shape
    fits = {}
    for bits in GPTQ_BITS:
        features = _gptq_in(bits, pack, qweight, g_idx)
        if (
            features
            and qweight.shape[0] == features // pack * bits
            and qzeros.shape[1] == out // pack * bits
            and _groups_fit(features, groups)
        ):
            fits[bits] = (features, out)
    return fits


def _awq_bits(pack: int, qweight, qzeros, scales) -> dict[int, tuple[int, int]]:
    """Bits -> logical (in, out), as AutoAWQ's ``awq/modules/linear/gemm.py``
    ``WQLinear_GEMM.__init__`` sizes them: qweight (in, out // (32 // w_bit)), qzeros
    (in // group_size, same), scales (in // group_size, out); in divides into whole groups."""
    groups, out = scales.shape
    features = qweight.shape[0]
    return {
        bits: (features, out)
        for bits in GPTQ_BITS
        if pack % bits == 0
        and qweight.shape[1] == out // (pack // bits)
        and qzeros.shape[1] == qweight.shape[1]
        and _groups_fit(features, groups)
        and features % groups == 0
    }


def _chosen_bits(fits: dict[int, tuple[int, int]], config: QuantConfig | None, notes: set[str]) -> int:
    """The bit width: the config's where the shapes allow it, else the one the shapes fit."""
    wanted = config.bits if config is not None else None
    if wanted in fits:
        return wanted
    if len(fits) != 1:
        widths = " or ".join(map(str, fits)) or "no bit width"
        raise NotPacked(f"its shapes fit {widths} bits")
    (bits,) = fits
    if wanted is not None:
        notes.add(
            f"{config.file} says {wanted}-bit; the tensors' shapes say {bits}-bit: counted from the shapes."
        )
    return bits


def _integer_layout(qweight: FlatTensor, by_name: dict, hints: Hints, notes: set[str]) -> PackedLayer | None:
    """A GPTQ or AWQ layer: an integer ``qweight`` with ``qzeros`` and float ``scales`` beside
    it; which of the two, and how many bits, its shapes say."""
    layer, leaf = _parent(qweight.name)
    if leaf != "qweight" or qweight.dtype not in PACK_BITS:
        return None
    qzeros = by_name.get(_sibling(layer, "qzeros"))
    scales = by_name.get(_sibling(layer, "scales"))
    if qzeros is None or scales is None:
        return None
    g_idx = by_name.get(_sibling(layer, "g_idx"))
    if not (
        len(qweight.shape) == len(qzeros.shape) == len(scales.shape) == 2
        and qzeros.dtype == qweight.dtype
        and _is_float(scales)
        and scales.shape[0] == qzeros.shape[0]
        and (g_idx is None or (len(g_idx.shape) == 1 and g_idx.dtype in PACK_BITS))
    ):
        raise NotPacked("qweight, qzeros and scales are not sized as one layer")
    pack = PACK_BITS[qweight.dtype]
    if qweight.shape[1] == scales.shape[1]:  # GPTQ packs along the input, AWQ along the output
        family, fits = "GPTQ", _gptq_bits(pack, qweight, qzeros, scales, g_idx)
    else:
        family, fits = "AWQ", _awq_bits(pack, qweight, qzeros, scales)
    bits = _chosen_bits(fits, hints.config(), notes)
    companions = {qzeros.name: "zero-point", scales.name: "scale"}
    if g_idx is not None and family == "GPTQ":
        companions[g_idx.name] = "group-index"
    return PackedLayer(
        f"{family} {bits}-bit", f"{family.lower()}-{bits}bit", layer, qweight, fits[bits], companions
    )


# ---------------------------------------------------------------- bitsandbytes


def _quant_state(raw: bytes, quant_type: str, budget: ReadBudget) -> tuple[tuple[int, ...], int]:
    """(logical shape, blocksize) from the JSON text bitsandbytes packs into a uint8 tensor
    (``QuantState.as_dict(packed=True)`` through ``utils.pack_dict_to_tensor``)."""
    try:
        state = load_json(raw, budget, "its quant state")
    except BudgetExceeded:
        raise
    except InputError as exc:
        raise NotPacked(str(exc)) from None
    if not isinstance(state, dict):
        raise NotPacked("its quant state is not a JSON object")
    if state.get("quant_type") != quant_type:
        raise NotPacked(f"its quant state says {state.get('quant_type')!r:.20}")
    blocksize = state.get("blocksize")
    if type(blocksize) is not int or blocksize <= 0:
        raise NotPacked(f"its quant state has blocksize {blocksize!r:.20}")
    try:
        shape = shape_of(state.get("shape"), budget, "a bitsandbytes quant state")
    except InputError as exc:
        raise NotPacked(str(exc)) from None
    return shape, blocksize


def _bnb4_companions(weight: FlatTensor, by_name: dict) -> dict[str, str]:
    """The tensors ``Linear4bit._save_to_state_dict`` writes beside ``weight`` (bitsandbytes
    ``nn/modules.py``): absmax and quant_map, nested ones under double quantization, whose
    absmax is then uint8."""
    absmax = by_name.get(f"{weight.name}.absmax")
    quant_map = by_name.get(f"{weight.name}.quant_map")
    if absmax is None or quant_map is None or len(absmax.shape) != 1 or math.prod(quant_map.shape) != 16:
        raise NotPacked("its absmax or 16-entry quant_map is missing")
    companions = {absmax.name: "absmax", quant_map.name: "quant-map"}
    if absmax.dtype == "uint8":  # compress_statistics: the absmax are quantized themselves
        nested = by_name.get(f"{weight.name}.nested_absmax")
        nested_map = by_name.get(f"{weight.name}.nested_quant_map")
        if nested is None or nested_map is None or math.prod(nested_map.shape) != 256:
            raise NotPacked("its uint8 absmax has no nested_absmax and 256-entry nested_quant_map")
        companions.update({nested.name: "absmax", nested_map.name: "quant-map"})
    return companions


def _bnb4_shape(weight, blob, quant_type, absmax, hints: Hints, budget) -> tuple[int, ...]:
    """The logical shape the quant state records; without the bytes of the state (a reader
    that cannot read tensor data) the packed size says it, two values per byte."""
    packed = math.prod(weight.shape)
    if hints.content is None:
        return (2 * packed,)
    if math.prod(blob.shape) > QUANT_STATE_BYTES:
        raise NotPacked(f"its quant state holds {math.prod(blob.shape):,} bytes")
    shape, blocksize = _quant_state(hints.content(blob.name), quant_type, budget)
    values = math.prod(shape)
    if (values + 1) // 2 != packed or -(-values // blocksize) != math.prod(absmax.shape):
        raise NotPacked(f"its quant state's shape {list(shape)} is not what is stored")
    return shape


def _bnb4(weight: FlatTensor, by_name: dict, hints: Hints, budget: ReadBudget) -> PackedLayer | None:
    """``Params4bit``: the weight as uint8 of shape ((n + 1) // 2, 1), two 4-bit values per byte
    (``functional.quantize_4bit``), its quant state beside it."""
    found = [(t, by_name.get(f"{weight.name}.quant_state.bitsandbytes__{t}")) for t in BNB_TYPES]
    found = [(t, blob) for t, blob in found if blob is not None]
    if weight.dtype != "uint8" or not found:
        return None
    quant_type, blob = found[0]
    if len(found) != 1 or blob.dtype != "uint8" or len(blob.shape) != 1 or not 1 <= len(weight.shape) <= 2:
        raise NotPacked("its weight or quant state is not a uint8 vector")
    companions = _bnb4_companions(weight, by_name)
    absmax = by_name[f"{weight.name}.absmax"]
    shape = _bnb4_shape(weight, blob, quant_type, absmax, hints, budget)
    companions[blob.name] = "quant-state"
    layer, _ = _parent(weight.name)
    return PackedLayer(f"bitsandbytes {quant_type.upper()}", quant_type, layer, weight, shape, companions)


def _bnb8(weight: FlatTensor, by_name: dict) -> PackedLayer | None:
    """``Linear8bitLt._save_to_state_dict``: the int8 weight (out, in), its per-row scales
    ``SCB`` (out,) float beside it and a ``weight_format`` byte."""
    layer, leaf = _parent(weight.name)
    scb = by_name.get(_sibling(layer, "SCB"))
    if leaf != "weight" or weight.dtype != "int8" or scb is None:
        return None
    if len(weight.shape) != 2 or not _is_float(scb) or scb.shape != weight.shape[:1]:
        raise NotPacked("SCB is not one float scale per row of the int8 weight")
    companions = {scb.name: "scale"}
    weight_format = by_name.get(_sibling(layer, "weight_format"))
    if weight_format is not None and math.prod(weight_format.shape) == 1:
        companions[weight_format.name] = "format"
    return PackedLayer("bitsandbytes int8", "int8", layer, weight, weight.shape, companions)


# ---------------------------------------------------------------- FP8


def _block_fits(features: int, blocks: int) -> bool:
    return _groups_fit(features, blocks) if features else blocks == 0


def _scale_fits(weight: FlatTensor, scale: FlatTensor) -> bool:
    """Per tensor (one value), per output row ((out,) or (out, 1)), or per block
    (ceil(out / b0), ceil(in / b1)) as DeepSeek-V3 and transformers' FP8Linear store them."""
    out, features = weight.shape
    if math.prod(scale.shape) == 1 or scale.shape in ((out,), (out, 1)):
        return True
    return (
        len(scale.shape) == 2 and _block_fits(out, scale.shape[0]) and _block_fits(features, scale.shape[1])
    )


def _fp8(weight: FlatTensor, by_name: dict) -> PackedLayer | None:
    """A float8 weight with its scale beside it: ``weight_scale_inv`` (transformers' FP8Linear,
    DeepSeek-V3) or ``weight_scale`` and ``input_scale`` (compressed-tensors, ModelOpt)."""
    layer, leaf = _parent(weight.name)
    if leaf != "weight" or weight.dtype not in FP8:
        return None
    scales = [by_name.get(_sibling(layer, n)) for n in ("weight_scale_inv", "weight_scale")]
    scales = [s for s in scales if s is not None]
    if not scales:
        return None
    if (
        len(weight.shape) != 2
        or len(scales) != 1
        or not _is_float(scales[0])
        or not _scale_fits(weight, scales[0])
    ):
        raise NotPacked("its weight scale does not fit the weight per tensor, row or block")
    companions = {scales[0].name: "scale"}
    input_scale = by_name.get(_sibling(layer, "input_scale"))
    if input_scale is not None and _is_float(input_scale):
        companions[input_scale.name] = "scale"
    kind = FP8[weight.dtype]
    return PackedLayer(f"FP8 ({kind})", f"fp8-{kind}", layer, weight, weight.shape, companions)


# ---------------------------------------------------------------- the whole file


def _layer_of(entry, by_name, hints, budget, notes) -> PackedLayer | None:
    return (
        _integer_layout(entry, by_name, hints, notes)
        or _bnb4(entry, by_name, hints, budget)
        or _bnb8(entry, by_name)
        or _fp8(entry, by_name)
    )


def recognise(entries: list[FlatTensor], hints: Hints, budget: ReadBudget | None = None) -> Recognition:
    """Every packed layer among ``entries``, each tensor of it with how to report it."""
    budget = budget or ReadBudget()
    config = functools.cache(hints.config)  # read once, and only if a layout needs its bits
    hints = Hints(config, hints.content)
    by_name = {entry.name: entry for entry in entries}
    layers, misfits, notes = [], [], set()
    for entry in entries:
        budget.tick()
        try:
            layer = _layer_of(entry, by_name, hints, budget, notes)
        except NotPacked as exc:
            misfits.append(f"{entry.name!r:.80} {exc}")
            continue
        if layer is not None:
            layers.append(layer)
    layers = _unshared(layers)
    recognition = Recognition(_packings(layers), _sentences(layers, by_name) + sorted(notes))
    read = config() if config.cache_info().currsize else None
    if read is not None and read.problem:
        recognition.warnings.append(
            f"{read.file} beside the file is not usable ({read.problem}): bit widths from the shapes."
        )
    if misfits:
        recognition.warnings.append(
            f"Left as stored, not fitting the quantized layout their names suggest: "
            f"{plural(len(misfits), 'layer')}, e.g. {misfits[0]}."
        )
    return recognition


def _packings(layers: list[PackedLayer]) -> dict[str, Packing]:
    """Tensor name -> how it is reported: under its layer's node, by its name within the layer."""

    def leaf(layer: PackedLayer, name: str) -> str:
        return name[len(layer.layer) + 1 :] if layer.layer else name

    packings = {}
    for layer in layers:
        packings[layer.weight.name] = Packing(
            layer.layer, leaf(layer, layer.weight.name), layer.scheme, layer.logical
        )
        for name, what in layer.companions.items():
            packings[name] = Packing(layer.layer, leaf(layer, name), what)
    return packings


def _unshared(layers: list[PackedLayer]) -> list[PackedLayer]:
    """The layers whose tensors no earlier layer claimed (a hostile file may make one scale
    serve two layouts; it is counted once, with the first)."""
    claimed: set[str] = set()
    kept = []
    for layer in layers:
        names = [layer.weight.name, *layer.companions]
        if claimed.isdisjoint(names):
            claimed.update(names)
            kept.append(layer)
    return kept


def _sentences(layers: list[PackedLayer], by_name: dict) -> list[str]:
    """One sentence per family: what was recognised and what it weighs."""
    families: dict[str, list[PackedLayer]] = {}
    for layer in layers:
        families.setdefault(layer.family, []).append(layer)
    return [_sentence(family, members, by_name) for family, members in families.items()]


def _sentence(family: str, members: list[PackedLayer], by_name: dict) -> str:
    params = sum(math.prod(layer.logical) for layer in members)
    stored = sum(stored_bytes(layer.weight) for layer in members)
    companions = [(name, what) for layer in members for name, what in layer.companions.items()]
    extra = sum(stored_bytes(by_name[name]) for name, _ in companions)
    words = ", ".join(dict.fromkeys(COMPANION_WORDS[what] for _, what in companions))
    return (
        f"{plural(len(members), f'{family} layer')}: {count(params)} logical parameters stored in "
        f"{count(stored)} bytes; their {plural(len(companions), 'quantization tensor')} ({words}, "
        f"{count(extra)} bytes) are state."
    )


# ---------------------------------------------------------------- the config beside the file


def config_beside(folder: Path, budget: ReadBudget) -> QuantConfig | None:
    """The bit width a quantization config next to the file gives: ``config.json``'s
    ``quantization_config`` (transformers), AutoGPTQ's ``quantize_config.json`` (``bits``) or
    AutoAWQ's ``quant_config.json`` (``w_bit``). An unreadable one is reported, not fatal: the
    shapes alone decide then."""
    for name in CONFIG_FILES:
        if not (folder / name).is_file():
            continue
        try:  # a link out of the folder (beside refuses it) is as unusable as bad JSON
            document = load_json(read_small(beside(folder, name, name), budget, name), budget, name)
        except InputError as exc:
            return QuantConfig(name, problem=str(exc))
        if name == "config.json":
            document = document.get("quantization_config") if isinstance(document, dict) else None
            if document is None:
                continue
        return _bits_of(name, document)
    return None


def _bits_of(name: str, document: object) -> QuantConfig:
    if not isinstance(document, dict):
        return QuantConfig(name, problem="not a JSON object")
    bits = document.get("bits", document.get("w_bit"))
    if bits is None:
        return QuantConfig(name)
    if type(bits) is not int or bits not in GPTQ_BITS:
        return QuantConfig(name, problem=f"bits {bits!r:.20} is not one of {GPTQ_BITS}")
    return QuantConfig(name, bits=bits)
