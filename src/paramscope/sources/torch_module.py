"""Live PyTorch ``nn.Module`` objects.

Parameters are ``trainable`` or ``frozen`` by ``requires_grad``; buffers are ``state``
(persistent or not, as ``state_dict()`` would save them). A parameter reached twice (an LM
head tied to its embedding, a module registered under two names) is the same object, so it
is counted once, at its first path, as ``parameters()`` does. No forward pass is run and
nothing on the module is changed.
"""

from __future__ import annotations

from paramscope.core.kinds import Kind
from paramscope.core.report import Node, Report, Role, Source, Tensor
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

    tree = _ModuleTree()
    root = tree.node(module, "", type(module).__name__, "")
    return Report(
        source=Source(kind=Kind.TORCH, framework_version=torch.__version__),
        root=root,
        warnings=tree.warnings() + prune_warnings(pruned_tensors(module)),
        framework_undercount=tree.undercount,
        origins=tree.builder.origins(),
    )


class _ModuleTree:
    """One walk over a module: its nodes, and what the walk meets on the way — lazy modules'
    placeholders (no shape yet) and 4-bit weights (that ``numel()`` undercounts)."""

    def __init__(self) -> None:
        from torch.nn.parameter import UninitializedTensorMixin  # lazy modules' placeholders

        self.builder = TreeBuilder()
        self.lazy: list[str] = []
        self.undercount: dict[str, int] = {}  # role -> parameters numel() misses
        self._placeholder = UninitializedTensorMixin

    def node(self, mod, path: str, name: str, prefix: str) -> Node:
        """The module's node; ``prefix`` is its dotted name plus a dot, as its tensors' keys begin."""
        node = Node(
            path=path,
            name=name,
            type=type(mod).__name__,
            mode="train" if mod.training else "eval",
            config_loader=lambda mod=mod: (module_config(mod), {}),
            origin=mod,
        )
        for pname, param in mod._parameters.items():
            if self._present(param, path, pname):
                node.tensors.append(self._parameter(param, path, pname, prefix + pname))
        for bname, buffer in mod._buffers.items():
            if self._present(buffer, path, bname):
                persistent = bname not in mod._non_persistent_buffers_set
                node.tensors.append(
                    self.builder.tensor(
                        buffer,
                        path,
                        bname,
                        buffer.shape,
                        buffer.dtype,
                        Role.STATE,
                        persistent,
                        key=prefix + bname,
                    )
                )
        for cname, child in mod._modules.items():
            if child is not None:
                node.children.append(self.node(child, join_path(path, cname), cname, f"{prefix}{cname}."))
        return node

    def _present(self, tensor, path: str, name: str) -> bool:
        """Whether a slot holds a tensor to count: not None, and not a lazy placeholder."""
        if isinstance(tensor, self._placeholder):
            self.lazy.append(join_path(path, name))
            return False
        return tensor is not None

    def _parameter(self, param, path: str, name: str, key: str) -> Tensor:
        role = Role.TRAINABLE if param.requires_grad else Role.FROZEN
        packed = packed_4bit(param)
        if packed is None:
            return self.builder.tensor(param, path, name, param.shape, param.dtype, role, key=key)
        shape, dtype = packed  # stored two per byte: count the parameters, not the bytes
        tensor = self.builder.tensor(param, path, name, shape, dtype, role, nbytes=param.numel(), key=key)
        self.undercount[role.value] = self.undercount.get(role.value, 0) + tensor.params - param.numel()
        return tensor

    def warnings(self) -> list[str]:
        warnings = []
        if self.lazy:
            warnings.append(
                f"{len(self.lazy)} lazy tensor(s) not initialized yet ({', '.join(self.lazy[:5])}): they "
                "count 0 until the module has seen one input."
            )
        if self.undercount:
            warnings.append(
                f"4-bit quantized weights (bitsandbytes) pack two parameters per stored element: "
                f"model.parameters() counts {sum(self.undercount.values()):,} fewer than the model has; "
                "paramscope counts them all."
            )
        return warnings
