"""The audit driver for Keras 3 (torch, jax and tensorflow backends) and tf.keras.

Snapshot: every variable the report reads (weights, non-trainable state, seed-generator
state, the built optimizer's slots and iteration counter, compiled metrics) as NumPy copies,
and the model's cached ``train_function``. A compiled model trains through its own
``train_on_batch`` with its compiled loss and optimizer, so a stale compile shows exactly as
in ``fit()``; an optimizer not built yet is swapped for a clone during the step, so the
user's stays unbuilt. An uncompiled model trains the way Keras's own trainers do on each
backend (GradientTape; ``loss.backward()``; ``stateless_call`` + ``jax.grad``) with a fresh
optimizer and the mean square of the outputs as loss. Restoring assigns the copies back.
"""

from __future__ import annotations

import numpy as np

from paramscope.core.kinds import Family, Kind
from paramscope.errors import InputError
from paramscope.ops.audit_driver import Observation, StepFacts, TrainingSetup, default_learning_rate


def _numpy(variable) -> np.ndarray:
    return np.array(variable.numpy(), copy=True)


def bit_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def max_abs_delta(before: np.ndarray, after: np.ndarray) -> float:
    if before.size == 0 or (before.dtype.kind not in "fiub" and str(before.dtype) != "bfloat16"):
        return 0.0
    return float(np.max(np.abs(after.astype(np.float64) - before.astype(np.float64))))


def _flat(structure) -> list:
    if isinstance(structure, dict):
        return [leaf for value in structure.values() for leaf in _flat(value)]
    if isinstance(structure, (list, tuple)):
        return [leaf for value in structure for leaf in _flat(value)]
    return [structure]


def _embedding_range(model) -> int:
    sizes = [layer.input_dim for layer in model._flatten_layers() if hasattr(layer, "input_dim")]
    return max(2, min(sizes)) if sizes else 2


def synthetic_inputs(model, input_shape: tuple[int, ...] | None):
    """Batch 2 from ``model.inputs``: unknown dims 4, integer inputs below the smallest
    Embedding's input_dim; a fixed seed, so runs compare."""
    rng = np.random.default_rng(0)
    if input_shape is not None:
        specs = [(tuple(input_shape), "float32")]
    else:
        try:
            inputs = model.inputs
        except (AttributeError, ValueError):
            inputs = None
        if not inputs:
            raise InputError("the model has no known inputs (no Input layer): pass --input-shape")
        specs = [((2, *[4 if d is None else d for d in tuple(t.shape)[1:]]), str(t.dtype)) for t in inputs]
    arrays = []
    for shape, dtype in specs:
        dtype = dtype.removeprefix("<dtype: '").removesuffix("'>")
        if "int" in dtype:
            arrays.append(rng.integers(0, _embedding_range(model), size=shape).astype(dtype))
        else:
            arrays.append(rng.random(shape, dtype=np.float32).astype(dtype))
    return arrays[0] if len(arrays) == 1 else arrays


def _targets(model, x):
    """Targets the compiled loss accepts: random floats shaped like the outputs, or class ids
    for a sparse loss."""
    rng = np.random.default_rng(1)
    outputs = model(x, training=False)
    sparse = "sparse" in str(getattr(model, "loss", "")).lower()

    def target(output):
        shape = tuple(output.shape)
        if sparse:
            return rng.integers(0, max(1, shape[-1]), size=shape[:-1]).astype("int32")
        return rng.random(shape, dtype=np.float32)

    if isinstance(outputs, dict):
        return {k: target(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return [target(o) for o in outputs]
    return target(outputs)


class KerasAudit:
    def __init__(self, model, tensors: dict[str, object], kind: Kind | str, setup: TrainingSetup) -> None:
        optimizer, inputs, loss, lr = setup.optimizer, setup.inputs, setup.loss, setup.lr
        optimizer_name, input_shape = setup.optimizer_name, setup.input_shape
        if not model.built:  # its first step would create the variables the audit must compare
            raise InputError(
                "the model is not built yet: call it once on a batch (model(batch)) or model.build(input_shape), "
                "then audit"
            )
        self.model, self.tensors = model, tensors
        self.tf_keras = Kind(kind).family is Family.TF_KERAS  # Keras 2: its own module, optimizers, ops
        self.path_of = {id(variable): path for path, variable in tensors.items()}
        self.keras = self._module()
        self.x = inputs if inputs is not None else synthetic_inputs(model, input_shape)
        self.facts = StepFacts()
        self.compiled = self._is_compiled() and optimizer is None and optimizer_name is None and loss is None
        self.loss = loss
        self.swapped = None
        if self.compiled:
            self.user_optimizer = model.optimizer
            self.optimizer = model.optimizer
            self.optimizer_label = f"the compiled {type(model.optimizer).__name__}"
            self.loss_label = f"the compiled loss ({getattr(model, 'loss', None)})"
            self.y = _targets(model, self.x)
        else:
            self.user_optimizer = optimizer
            if optimizer is not None and not self._built(optimizer):
                optimizer = self._clone(optimizer)  # building it in the step would change the user's
            self.optimizer = optimizer or self._fresh_optimizer(optimizer_name or "adam", lr)
            self.optimizer_label = (
                f"the factory's {type(optimizer).__name__}"
                if optimizer is not None
                else f"{type(self.optimizer).__name__}(learning_rate={self._lr(lr)}), fresh"
            )
            self.loss_label = (
                getattr(loss, "__name__", "given loss") if loss else "mean squared error to random targets"
            )

    # setup ---------------------------------------------------------------------------------
    def _module(self):
        if self.tf_keras:
            import tf_keras

            return tf_keras
        import keras

        return keras

    def _is_compiled(self) -> bool:
        if self.tf_keras:
            return (
                getattr(self.model, "optimizer", None) is not None
                and getattr(self.model, "compiled_loss", None) is not None
            )
        return (
            bool(getattr(self.model, "compiled", False))
            and getattr(self.model, "optimizer", None) is not None
        )

    def _lr(self, lr: float | None) -> float:
        if lr is not None:
            return lr
        return default_learning_rate(v.dtype for v in self.model.trainable_weights)

    def _clone(self, optimizer):
        return self.keras.optimizers.deserialize(self.keras.optimizers.serialize(optimizer))

    def _fresh_optimizer(self, name: str, lr: float | None):
        try:
            optimizer = self.keras.optimizers.get(name)
        except ValueError:
            raise InputError(f"--optimizer {name}: not a Keras optimizer name") from None
        optimizer.learning_rate = self._lr(lr)
        return optimizer

    @property
    def inputs_label(self) -> str:
        return ", ".join(f"{tuple(a.shape)} {a.dtype}" for a in _flat(self.x) if hasattr(a, "shape"))

    @property
    def loss_scaled(self) -> bool:
        return "LossScale" in type(self.optimizer).__name__

    # snapshot / restore --------------------------------------------------------------------
    def _extra_variables(self) -> list:
        """Variables the step may touch that the report does not list (a built optimizer in an
        uncompiled model, metrics trackers)."""
        seen = {id(v) for v in self.tensors.values()}
        extra = []
        candidates = (
            list(getattr(self.optimizer, "variables", []) or []) if self._built(self.optimizer) else []
        )
        candidates += list(getattr(self.model, "metrics_variables", []) or [])
        for variable in candidates:
            if id(variable) not in seen:
                seen.add(id(variable))
                extra.append(variable)
        return extra

    def _built(self, optimizer) -> bool:
        if self.tf_keras:
            return bool(getattr(optimizer, "_variables", None)) or bool(getattr(optimizer, "built", False))
        return bool(getattr(optimizer, "built", False))

    def snapshot(self) -> None:
        self.extra = self._extra_variables()
        self.values = {path: _numpy(v) for path, v in self.tensors.items()}
        self.extra_values = [_numpy(v) for v in self.extra]
        self.train_function = getattr(self.model, "train_function", None)
        self.user_optimizer_built = self.user_optimizer is not None and self._built(self.user_optimizer)

    def restore(self) -> None:
        for path, variable in self.tensors.items():
            variable.assign(self.values[path])
        for variable, value in zip(self.extra, self.extra_values, strict=True):
            variable.assign(value)
        if self.swapped is not None:
            object.__setattr__(self.model, "optimizer", self.swapped)
            self.swapped = None
        self.model.train_function = self.train_function

    def restored_exactly(self) -> bool:
        same = all(bit_equal(self.values[p], _numpy(v)) for p, v in self.tensors.items())
        same &= all(bit_equal(a, _numpy(v)) for v, a in zip(self.extra, self.extra_values, strict=True))
        same &= getattr(self.model, "train_function", None) is self.train_function
        if self.user_optimizer is not None:
            same &= self._built(self.user_optimizer) == self.user_optimizer_built
        return bool(same)

    # the step ------------------------------------------------------------------------------
    def step(self) -> None:
        if self.compiled:
            if not self._built(self.model.optimizer) and self.swapped is None:
                clone = self._clone(self.model.optimizer)
                self.swapped = self.model.optimizer
                object.__setattr__(self.model, "optimizer", clone)
                self.model.train_function = None  # traced with the clone, dropped at restore
            self.model.train_on_batch(self.x, self.y)
            return
        backend = "tensorflow" if self.tf_keras else self.keras.backend.backend()
        getattr(self, f"_step_{backend}")()

    def _loss(self, outputs):
        if self.loss is not None:
            return self.loss(outputs)
        ops = self._ops()
        floating = [o for o in _flat(outputs) if "float" in str(o.dtype)]
        if not floating:
            raise InputError("the model's outputs hold no floating tensor to take a loss of")
        total = 0.0
        for output in floating:
            # fixed random targets: an untrained deep CNN's outputs are ~1e-11, their square's
            # gradient would be too small to move anything
            target = np.random.default_rng(1).random(tuple(output.shape), dtype=np.float32)
            total = total + ops.mean(ops.square(ops.cast(output, "float32") - ops.convert_to_tensor(target)))
        return total

    def _gradient_values(self, grad) -> np.ndarray:
        """A gradient as numpy, whatever the backend (tf's IndexedSlices: the rows it holds)."""
        grad = getattr(grad, "values", grad)
        return np.asarray(grad.numpy() if self.tf_keras else self.keras.ops.convert_to_numpy(grad))

    def _ops(self):
        if self.tf_keras:
            import tensorflow as tf

            class _TF:
                mean, square = staticmethod(tf.reduce_mean), staticmethod(tf.square)
                cast, convert_to_tensor = staticmethod(tf.cast), staticmethod(tf.convert_to_tensor)

            return _TF
        return self.keras.ops

    def _apply(self, grads, variables) -> None:
        for variable, grad in zip(variables, grads, strict=True):
            path = self.path_of.get(id(variable), variable.name)
            if grad is None:
                self.facts.no_gradient.add(path)
            elif not np.any(self._gradient_values(grad)):
                self.facts.zero_gradient.add(path)  # reached, but zero: LoRA's B-is-zero start
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        if pairs:
            self.optimizer.apply_gradients(pairs)

    def _step_tensorflow(self) -> None:
        import tensorflow as tf

        variables = list(self.model.trainable_variables)
        with tf.GradientTape() as tape:
            loss = self._loss(self.model(self.x, training=True))
        self._apply(tape.gradient(loss, variables), variables)

    def _step_torch(self) -> None:
        import torch

        variables = list(self.model.trainable_variables)
        for variable in variables:
            variable.value.grad = None
        with torch.enable_grad():
            loss = self._loss(self.model(self.x, training=True))
            loss.backward()
        grads = [v.value.grad for v in variables]
        with torch.no_grad():
            self._apply(grads, variables)

    def _step_jax(self) -> None:
        import jax

        trainable = list(self.model.trainable_variables)
        non_trainable = list(self.model.non_trainable_variables)

        def compute(trainable_values, non_trainable_values):
            outputs, updated = self.model.stateless_call(
                trainable_values, non_trainable_values, self.x, training=True
            )
            return self._loss(outputs), updated

        grad_fn = jax.grad(compute, has_aux=True)
        grads, updated = grad_fn([v.value for v in trainable], [v.value for v in non_trainable])
        self._apply(grads, trainable)
        for variable, value in zip(non_trainable, updated, strict=True):
            variable.assign(value)

    def observe(self) -> dict[str, Observation]:
        observed = {}
        for path, variable in self.tensors.items():
            before, after = self.values[path], _numpy(variable)
            changed = not bit_equal(before, after)
            observed[path] = Observation(changed, max_abs_delta(before, after) if changed else 0.0)
        return observed

    def gather_facts(self) -> StepFacts:
        return self.facts
