"""Activations one training step keeps, measured in the model's framework, never on its weights.

torch: the model is deep-copied with every parameter and buffer replaced by a fake tensor
(``FakeTensorMode``: shapes and dtypes, no data), so the user's weights are never read or
written. One forward runs under ``torch.autograd.graph.saved_tensors_hooks``, which sees every
tensor autograd saves for backward; each storage is counted once (a view saved twice is one
allocation) and the weights' own storages not at all (they are priced as weights). Autograd
saves nothing for operations no gradient flows through, so the layers below the first
trainable one cost nothing, as in real training. Then the backward runs on the fakes too.

Keras exposes no saved-tensor hook, so its figure is read from the layers' output shapes: the
input of the first layer that trains and the output of every layer from it on, at the batch
size given. It is an estimate where the torch figure is a measurement, and says so.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass

from paramscope.core.dtypes import normalize_dtype, tensor_bytes
from paramscope.core.kinds import Family, Kind
from paramscope.errors import InputError


@dataclass
class Activations:
    """What to run: the live model, its tensors by report path, and the step's shape and dtypes.

    ``cast``: the dtype floating-point weights and inputs are held in (None: as stored);
    ``autocast``: the dtype operations autocast to (amp), None for none.
    """

    model: object
    origins: dict[str, object]
    batch: int
    input_shape: tuple[int, ...]
    cast: str | None = None
    autocast: str | None = None

    def live_ids(self, trains: frozenset[str]) -> set[int]:
        return {id(self.origins[path]) for path in trains if path in self.origins}


class TorchActivations(Activations):
    @property
    def method(self) -> str:
        modes = {module.training for module in self.model.modules()}
        mode = "train" if modes == {True} else "eval" if modes == {False} else "train and eval"
        autocast = f", under CPU autocast to {self.autocast}" if self.autocast else ""
        return (
            "activations: measured — the bytes torch autograd saves for backward (saved_tensors_hooks), each "
            f"storage once, weights excluded, in one step on fake tensors (batch {self.batch} × "
            f"{self.input_shape}, modules in {mode} mode as the model is{autocast}); the model's weights "
            "are never read"
        )

    def __call__(self, trains: frozenset[str]) -> int:
        import torch
        from torch._subclasses.fake_tensor import FakeTensorMode

        mode = FakeTensorMode(allow_non_fake_inputs=True)  # constants the module keeps outside its state
        fakes = self._fakes(mode, self.live_ids(trains))
        weights = {id(fake.untyped_storage()) for fake in fakes.values()}
        twin = copy.deepcopy(self.model, dict(fakes))  # every tensor it reaches is a fake
        saved: dict[int, object] = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            if id(storage) not in weights:
                saved[id(storage)] = storage
            return tensor

        autocast = (
            torch.autocast("cpu", dtype=getattr(torch, self.autocast))
            if self.autocast
            else contextlib.nullcontext()
        )
        try:
            with mode:
                inputs = torch.empty((self.batch, *self.input_shape), dtype=self._input_dtype(twin))
                with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), autocast:
                    outputs = twin(inputs)
                _backward(outputs)
        except Exception as exc:  # an operation fake tensors cannot run, or a wrong input shape
            raise InputError(
                f"activations: the model could not run a step of batch {self.batch} × {self.input_shape} on fake "
                f"tensors ({type(exc).__name__}: {str(exc)[:200]})"
            ) from None
        return sum(storage.nbytes() for storage in saved.values())

    def _fakes(self, mode, trains: set[int]) -> dict[int, object]:
        """Live tensor id -> its fake (in the cast dtype), parameters requiring grad as planned."""
        import torch

        dtype = getattr(torch, self.cast) if self.cast else None
        fakes: dict[int, object] = {}
        for tensor in [*self.model.parameters(), *self.model.buffers()]:
            fake = mode.from_tensor(tensor.detach())
            if dtype is not None and fake.is_floating_point():
                with mode:
                    fake = fake.to(dtype)
            if isinstance(tensor, torch.nn.Parameter):
                fake = torch.nn.Parameter(
                    fake, requires_grad=id(tensor) in trains and fake.is_floating_point()
                )
            fakes[id(tensor)] = fake
        return fakes

    @staticmethod
    def _input_dtype(twin):
        """Token indices for a model that starts with an embedding, else its weights' float dtype."""
        import torch

        for module in twin.modules():
            if isinstance(module, (torch.nn.Embedding, torch.nn.EmbeddingBag)):
                return torch.long
            floating = [p for p in module.parameters(recurse=False) if p.is_floating_point()]
            if floating:
                return floating[0].dtype
        return torch.get_default_dtype()


def _backward(outputs) -> None:
    """Backward from the sum of every output gradients reach (nothing when none do)."""
    import torch
    from torch.utils._pytree import tree_leaves

    reached = [t for t in tree_leaves(outputs) if isinstance(t, torch.Tensor) and t.requires_grad]
    if reached:
        sum(t.float().sum() for t in reached).backward()


class KerasActivations(Activations):
    @property
    def method(self) -> str:
        return (
            "activations: estimated from Keras's output shapes (Keras exposes no saved-tensor hook), traced for "
            f"batch {self.batch} × {self.input_shape}: the input of the first layer that trains and every layer's "
            "output from it on"
        )

    def __call__(self, trains: frozenset[str]) -> int:
        ids = self.live_ids(trains)
        calls = self._calls()
        first = next(
            (i for i, (layer, _, _) in enumerate(calls) if any(id(v) in ids for v in layer.weights)), None
        )
        if first is None:
            return 0
        kept: dict[int, object] = {}
        for position, (_, inputs, outputs) in enumerate(calls[first:]):
            for tensor in _flat(outputs) + (_flat(inputs) if position == 0 else []):
                kept[id(tensor)] = tensor
        return sum(self._bytes(tensor) for tensor in kept.values())

    def _calls(self) -> list[tuple[object, object, object]]:
        """Every layer call of one step, in execution order, on shapes alone."""
        import keras

        inputs = getattr(self.model, "inputs", None) or []
        if len(inputs) != 1:
            raise InputError("activations: Keras's figure is traced for a model with exactly one input")
        built = tuple(inputs[0].shape)[1:]
        if len(built) != len(self.input_shape) or any(
            b is not None and b != given for b, given in zip(built, self.input_shape, strict=True)
        ):
            raise InputError(
                f"activations: input shape {self.input_shape} does not fit the model's input {built}"
            )
        calls: list[tuple[object, object, object]] = []
        _trace(self.model, keras.KerasTensor((self.batch, *self.input_shape), dtype=inputs[0].dtype), calls)
        return calls

    def _bytes(self, tensor) -> int:
        dtype = normalize_dtype(tensor.dtype)
        if self.cast or self.autocast:
            dtype = (self.cast or self.autocast) if "float" in dtype else dtype
        return tensor_bytes(math.prod(tensor.shape), dtype) or 0


def _flat(structure) -> list:
    import keras

    return [x for x in keras.tree.flatten(structure) if isinstance(x, keras.KerasTensor)]


def _trace(model, inputs, calls: list) -> object:
    """Run a Functional (or built Sequential) model's graph with ``compute_output_spec`` instead of
    ``call``: shapes only, no weights read, no node added to the model; nested models are opened
    and every other layer's call recorded. Keras 3's graph runner is its private
    ``_run_through_graph``, the one ``Functional.call`` itself uses."""
    graph = getattr(model, "_functional", None) or model
    if not hasattr(graph, "_run_through_graph"):
        raise InputError(
            f"activations: {type(model).__name__} {model.name!r} is not a Functional or built Sequential model; "
            "Keras's figure is traced through the model's graph"
        )

    def operation_fn(layer):
        if getattr(layer, "_functional", None) is not None or hasattr(layer, "_run_through_graph"):
            return lambda *args, **_: _trace(layer, args[0] if len(args) == 1 else list(args), calls)

        def shapes(*args, **kwargs):
            kwargs.pop("training", None)  # shapes do not depend on it, and not every layer's spec takes it
            outputs = layer.compute_output_spec(*args, **kwargs)
            calls.append((layer, (args, kwargs), outputs))
            return outputs

        return shapes

    return graph._run_through_graph(inputs, operation_fn=operation_fn)


def activation_meter(model, kind: Kind, origins: dict[str, object], batch: int, input_shape, cast, autocast):
    """The meter for this live model's framework."""
    shape = tuple(int(d) for d in input_shape)
    if kind.family is Family.TF_KERAS:
        raise InputError(
            "activations are measured for torch and Keras 3 models; tf.keras is not supported yet"
        )
    meter = TorchActivations if kind.family is Family.TORCH else KerasActivations
    return meter(model, origins, batch, shape, cast, autocast)
