"""The audit driver for PyTorch modules.

Snapshot: every parameter and buffer (by identity, tied ones once), their gradients and
``requires_grad``, every module's ``training`` flag, the optimizer's state and hyper-parameters,
and the CPU (and CUDA) RNG states. The step is what a training loop does: forward in the mode
the user left the model in (that is the point: BatchNorm in train mode under a frozen backbone
must show), backward, ``optimizer.step()``. Between steps gradients are zeroed in place, as
``zero_grad(set_to_none=False)`` does: the setting under which stale gradients and weight
decay move frozen parameters, so the audit sees the worst case a loop can produce.
"""

from __future__ import annotations

import copy

from paramscope.errors import InputError
from paramscope.ops.audit_driver import (
    Observation,
    StepFacts,
    TrainingSetup,
    default_learning_rate,
    note_torch_gradient,
)

OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}


def _bits(tensor):
    """The tensor's bytes as integers, so equality is bitwise (NaN == NaN, -0.0 != 0.0)."""
    import torch

    flat = tensor.detach().reshape(-1)
    if flat.dtype.is_floating_point or flat.dtype.is_complex:
        return flat.contiguous().view(torch.uint8)
    return flat


def bit_equal(a, b) -> bool:
    import torch

    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(_bits(a), _bits(b))


def max_abs_delta(before, after) -> float:
    if before.numel() == 0 or before.dtype.is_complex:
        return 0.0
    return float((after.detach().double() - before.double()).abs().max())


def default_inputs(model, shape: tuple[int, ...] | None):
    """Inputs from ``--input-shape``, else from the first weighted layer (Linear, ConvNd,
    Embedding); a fixed generator, so the global RNG is not consumed."""
    import torch

    generator = torch.Generator().manual_seed(0)
    dtype = next((p.dtype for p in model.parameters() if p.dtype.is_floating_point), torch.float32)
    if shape is not None:
        return (torch.randn(shape, generator=generator, dtype=dtype),)
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            return (torch.randint(0, module.num_embeddings, (2, 8), generator=generator),)
        if isinstance(module, torch.nn.Linear):
            return (torch.randn((2, module.in_features), generator=generator, dtype=dtype),)
        if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            spatial = (16,) * (module.weight.dim() - 2)
            return (torch.randn((2, module.in_channels, *spatial), generator=generator, dtype=dtype),)
    raise InputError(
        "cannot tell this module's input: give it (CLI: --input-shape 2,8; Python: inputs=a_batch)"
    )


def as_call_arguments(inputs):
    """What the model is called with: a tensor is one argument (never split along its batch
    dimension), a dict keyword arguments, a tuple or list positional arguments."""
    import torch

    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (dict, tuple)):
        return inputs
    if isinstance(inputs, list):
        return tuple(inputs)
    raise InputError(f"inputs= takes a tensor, a tuple of tensors or a dict; got {type(inputs).__name__}")


def simple_loss(outputs):
    """Mean squared error of every floating output against fixed random targets."""
    import torch

    if isinstance(outputs, torch.Tensor):
        found = [outputs]
    elif isinstance(outputs, dict):
        found = [v for v in outputs.values() if isinstance(v, torch.Tensor)]
    elif isinstance(outputs, (list, tuple)):
        found = [v for v in outputs if isinstance(v, torch.Tensor)]
    else:
        found = [v for v in vars(outputs).values() if isinstance(v, torch.Tensor)]  # ModelOutput-like
    floating = [o for o in found if o.dtype.is_floating_point]
    if not floating:
        raise InputError("the model's outputs hold no floating tensor to take a loss of")
    return sum((o.float() - _target(o)).square().mean() for o in floating)


def _target(output):
    """Fixed random targets: the loss's gradient at the outputs is of order one even where an
    untrained network's outputs are vanishingly small (a fresh deep CNN's are ~1e-11)."""
    import torch

    generator = torch.Generator().manual_seed(1)
    return torch.rand(output.shape, generator=generator).to(output.device)


def _require_built(model) -> None:
    """A lazy module's first step creates its weights: nothing could be snapshotted or restored."""
    from torch.nn.parameter import UninitializedTensorMixin

    lazy = [name for name, t in model.named_parameters() if isinstance(t, UninitializedTensorMixin)]
    if lazy:
        raise InputError(
            f"the model is not built yet ({len(lazy)} lazy parameter(s), e.g. {lazy[0]}): call it once on "
            "a batch (model(batch)) so its weights exist, then audit"
        )


class TorchAudit:
    loss_scaled = False  # no loss scaler in the factory contract

    def __init__(self, model, tensors: dict[str, object], setup: TrainingSetup) -> None:
        import torch

        optimizer, inputs, loss, lr = setup.optimizer, setup.inputs, setup.loss, setup.lr
        optimizer_name, input_shape = setup.optimizer_name, setup.input_shape
        _require_built(model)
        self.model, self.tensors = model, tensors
        self.inputs = as_call_arguments(inputs) if inputs is not None else default_inputs(model, input_shape)
        self.loss = loss or simple_loss
        self.loss_label = (
            getattr(loss, "__name__", type(loss).__name__) if loss else "mean squared error to random targets"
        )
        if optimizer_name is not None or optimizer is None:
            name = (optimizer_name or "sgd").lower()
            if name not in OPTIMIZERS:
                raise InputError(f"--optimizer {name}: expected one of {', '.join(OPTIMIZERS)}")
            trainable = [p for p in model.parameters() if p.requires_grad]
            if not trainable:
                raise InputError("nothing to train: no parameter has requires_grad=True")
            if lr is None:
                lr = default_learning_rate(p.dtype for p in trainable)
            optimizer = getattr(torch.optim, OPTIMIZERS[name])(trainable, lr=lr)
            self.optimizer_label = (
                f"{OPTIMIZERS[name]}(lr={optimizer.param_groups[0]['lr']}) over the trainable parameters"
            )
        else:
            if lr is not None:
                raise InputError("--lr applies to the optimizer paramscope builds (--optimizer)")
            self.optimizer_label = f"the factory's {type(optimizer).__name__}"
        self.optimizer = optimizer
        self.parameters = {p: t for p, t in tensors.items() if isinstance(t, torch.nn.Parameter)}
        self.facts = StepFacts()

    @property
    def inputs_label(self) -> str:
        return ", ".join(
            f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}" for t in self._input_list()
        )

    def _input_list(self):
        import torch

        values = self.inputs.values() if isinstance(self.inputs, dict) else self.inputs
        return [v for v in values if isinstance(v, torch.Tensor)]

    # snapshot / restore -------------------------------------------------------------------
    def snapshot(self) -> None:
        import torch

        self.values = {path: t.detach().clone() for path, t in self.tensors.items()}
        self.grads = {
            path: None if p.grad is None else p.grad.detach().clone() for path, p in self.parameters.items()
        }
        self.requires_grad = {path: p.requires_grad for path, p in self.parameters.items()}
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.optimizer_state = {
            param: {
                k: v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in state.items()
            }
            for param, state in self.optimizer.state.items()
        }
        self.groups = [
            {k: copy.deepcopy(v) for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups
        ]
        self.rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def restore(self) -> None:
        import torch

        with torch.no_grad():
            for path, tensor in self.tensors.items():
                tensor.copy_(self.values[path])
        for path, param in self.parameters.items():
            saved = self.grads[path]
            param.grad = None if saved is None else saved.clone()
            param.requires_grad_(self.requires_grad[path])
        for module, training in self.modes:
            module.training = training
        self.optimizer.state.clear()
        for param, state in self.optimizer_state.items():
            self.optimizer.state[param] = {
                k: v.clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in state.items()
            }
        for group, saved in zip(self.optimizer.param_groups, self.groups, strict=True):
            group.update(copy.deepcopy(saved))
        torch.set_rng_state(self.rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)

    def restored_exactly(self) -> bool:
        import torch

        same = all(bit_equal(self.values[p], t) for p, t in self.tensors.items())
        for path, param in self.parameters.items():
            saved = self.grads[path]
            same &= (param.grad is None) == (saved is None)
            same &= saved is None or param.grad is None or bit_equal(saved, param.grad)
            same &= param.requires_grad == self.requires_grad[path]
        same &= all(m.training == training for m, training in self.modes)
        same &= set(self.optimizer.state) == set(self.optimizer_state)
        for param, state in self.optimizer_state.items():
            now = self.optimizer.state[param]
            for key, value in state.items():
                same &= bit_equal(value, now[key]) if torch.is_tensor(value) else value == now.get(key)
        same &= torch.equal(torch.get_rng_state(), self.rng)
        return bool(same)

    # the step ----------------------------------------------------------------------------
    def step(self) -> None:
        import torch

        for param in self.parameters.values():
            if param.grad is not None:  # zero_grad(set_to_none=False)
                param.grad.detach_()
                param.grad.zero_()
        with torch.enable_grad():
            outputs = self.model(**self.inputs) if isinstance(self.inputs, dict) else self.model(*self.inputs)
            loss = self.loss(outputs)
            if loss.requires_grad:  # else no trainable tensor is on the loss's path at all
                loss.backward()
        for path, param in self.parameters.items():
            if param.requires_grad:
                note_torch_gradient(path, param.grad, self.facts.no_gradient, self.facts.zero_gradient)
        self.optimizer.step()

    def observe(self) -> dict[str, Observation]:
        observed = {}
        for path, tensor in self.tensors.items():
            before = self.values[path]
            changed = not bit_equal(before, tensor)
            observed[path] = Observation(changed, max_abs_delta(before, tensor) if changed else 0.0)
        return observed

    def gather_facts(self) -> StepFacts:
        """Which optimizer group holds each parameter, with what, as the snapshot had it."""
        facts = self.facts
        group_of = {}
        for index, group in enumerate(self.optimizer.param_groups):
            for param in group["params"]:
                group_of[id(param)] = index
        for path, param in self.parameters.items():
            index = group_of.get(id(param))
            trainable = self.requires_grad[path]
            if index is None:
                if trainable:
                    facts.not_in_optimizer.add(path)
                continue
            group = self.groups[index]
            if trainable and group.get("lr") == 0:
                facts.zero_learning_rate.add(path)
            if not trainable:
                if group.get("weight_decay", 0):
                    facts.weight_decay.add(path)
                if self.grads[path] is not None:
                    facts.stale_gradient.add(path)
                if self.optimizer_state.get(param):
                    facts.optimizer_state.add(path)
        facts.no_gradient -= facts.not_in_optimizer
        return facts
