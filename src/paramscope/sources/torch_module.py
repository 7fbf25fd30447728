"""Live PyTorch ``nn.Module`` objects.

Parameters are ``trainable`` or ``frozen`` by ``requires_grad``; buffers are ``state``
(persistent or not, as ``state_dict()`` would save them). A parameter reached twice (an LM
head tied to its embedding, a module registered under two names) is the same object, so it
is counted once, at its first path, as ``parameters()`` does. No forward pass is run and
nothing on the module is changed.
"""

from __future__ import annotations

from paramscope.core.report import Node, Report, Role, Source
from paramscope.core.tree import TreeBuilder, join_path
from paramscope.sources.torch_prune import MASK, Pruned, prune_warnings, pruned_names

_PLAIN = (bool, int, float, str, tuple, list, type(None))


def module_config(module) -> dict:
    """A module's public plain attributes (``in_features``, ``kernel_size``…) for formulas.

    Each parameter slot adds ``has_<name>``; ``bias`` is always a flag: the module's own flag
    where it has one (RNNs), else whether a ``bias`` parameter exists.
    """
    config = {k: v for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, _PLAIN)}
    config["_qkv_same_embed_dim"] = getattr(module, "_qkv_same_embed_dim", True)
    for name, param in module._parameters.items():
        config[f"has_{name}"] = param is not None
    if not isinstance(config.get("bias"), bool):
        config["bias"] = config.get("has_bias", config.get("has_in_proj_bias", False))
    return config


def packed_4bit(param) -> tuple[tuple[int, ...], str] | None:
    """(real shape, dtype) of a bitsandbytes 4-bit parameter, whose storage packs two values
    per uint8 element, so that ``numel()`` reports half its parameters; None otherwise."""
    state = getattr(param, "quant_state", None)
    if type(param).__name__ != "Params4bit" or state is None or getattr(state, "shape", None) is None:
        return None
    return tuple(int(d) for d in state.shape), str(getattr(param, "quant_type", "4bit"))


def pruned_tensors(module) -> list[Pruned]:
    """Each tensor ``torch.nn.utils.prune`` reparametrised (see torch_prune.py), with how many
    of its mask's elements are nonzero: the weights that survive. A module reached twice is
    listed once, as ``named_modules()`` lists it."""
    import torch

    found = []
    for name, mod in module.named_modules():
        for _, tensor in pruned_names([*mod._parameters, *mod._buffers]):
            mask = mod._buffers.get(tensor + MASK)
            if mask is None:
                continue
            surviving = None if mask.is_meta else int(torch.count_nonzero(mask))
            found.append(Pruned(name, tensor, mask.numel(), surviving))
    return found


def inspect_torch(module) -> Report:
    """Report of a live ``torch.nn.Module``, untouched."""
    import torch
    from torch.nn.parameter import UninitializedTensorMixin  # lazy modules' placeholders

    builder = TreeBuilder()
    lazy: list[str] = []
    undercount: dict[str, int] = {}

    def visit(mod, path: str, name: str) -> Node:
        node = Node(
            path=path,
            name=name,
            type=type(mod).__name__,
            mode="train" if mod.training else "eval",
            config_loader=lambda mod=mod: (module_config(mod), {}),
            origin=mod,
        )
        for pname, param in mod._parameters.items():
            if param is None:
                continue
            if isinstance(param, UninitializedTensorMixin):
                lazy.append(join_path(path, pname))
                continue
            role = Role.TRAINABLE if param.requires_grad else Role.FROZEN
            packed = packed_4bit(param)
            if packed is not None:  # stored two per byte: count the parameters, not the bytes
                shape, dtype = packed
                tensor = builder.tensor(param, path, pname, shape, dtype, role, nbytes=param.numel())
                undercount[role.value] = undercount.get(role.value, 0) + tensor.params - param.numel()
                node.tensors.append(tensor)
                continue
            node.tensors.append(builder.tensor(param, path, pname, param.shape, param.dtype, role))
        for bname, buffer in mod._buffers.items():
            if buffer is None:
                continue
            if isinstance(buffer, UninitializedTensorMixin):
                lazy.append(join_path(path, bname))
                continue
            persistent = bname not in mod._non_persistent_buffers_set
            node.tensors.append(
                builder.tensor(buffer, path, bname, buffer.shape, buffer.dtype, Role.STATE, persistent)
            )
        for cname, child in mod._modules.items():
            if child is not None:
                node.children.append(visit(child, join_path(path, cname), cname))
        return node

    root = visit(module, "", type(module).__name__)
    warnings = []
    if lazy:
        warnings.append(
            f"{len(lazy)} lazy tensor(s) not initialized yet ({', '.join(lazy[:5])}): they "
            "count 0 until the module has seen one input."
        )
    if undercount:
        warnings.append(
            f"4-bit quantized weights (bitsandbytes) pack two parameters per stored element: "
            f"model.parameters() counts {sum(undercount.values()):,} fewer than the model has; "
            "paramscope counts them all."
        )
    warnings.extend(prune_warnings(pruned_tensors(module)))
    return Report(
        source=Source(kind="torch", framework_version=torch.__version__),
        root=root,
        warnings=warnings,
        framework_undercount=undercount,
        origins=builder.origins(),
    )
