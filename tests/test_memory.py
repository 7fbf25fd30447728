"""memory on torch modules and files: hand-computed figures, the truth after one real optimizer
step, activations against torch's own memory tracker, and ZeRO against the published formulas."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import paramscope
from paramscope.errors import InputError


class Frozen(nn.Module):
    """A frozen base (Linear + BatchNorm, whose buffers are state) under a trainable head whose
    first weight holds 5,120 values: past bitsandbytes' 4,096, so its 8-bit path is taken."""

    def __init__(self, dtype=torch.float32) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.base = nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32))
        self.head = nn.Sequential(nn.Linear(32, 160), nn.ReLU(), nn.Linear(160, 3))
        self.base.requires_grad_(False)
        self.to(dtype)

    def forward(self, x):
        return self.head(self.base(x))


def tiny() -> nn.Sequential:
    """Linear(10, 4) frozen, Linear(4, 2) trainable: 44 frozen and 10 trainable params in 2 tensors."""
    model = nn.Sequential(nn.Linear(10, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    return model


def parts(estimate) -> tuple[int, int, int, int]:
    return (
        estimate.weights.bytes,
        estimate.gradients.bytes,
        estimate.optimizer.bytes,
        estimate.master_weights.bytes,
    )


# (optimizer, precision, weights, gradients, optimizer state, master weights), worked by hand on tiny():
# 54 params, 10 of them trainable in 2 tensors (weight (2, 4), bias (2,)).
HAND = [
    ("adam", None, 54 * 4, 10 * 4, 2 * 10 * 4 + 2 * 4, 0),  # 2 moments + a float32 step per tensor
    ("adam", "fp32", 54 * 4, 10 * 4, 2 * 10 * 4 + 2 * 4, 0),
    ("adam", "amp", 54 * 4, 10 * 4, 2 * 10 * 4 + 2 * 4, 0),  # autocast keeps fp32 weights: nothing extra
    ("adam", "bf16", 54 * 2, 10 * 2, 2 * 10 * 2 + 2 * 4, 0),  # moments in the parameter's dtype
    ("adam", "fp16", 54 * 2, 10 * 2, 2 * 10 * 2 + 2 * 4, 0),
    ("adam", "mixed-master", 54 * 2, 10 * 2, 2 * 10 * 4 + 2 * 4, 10 * 4),  # state beside the fp32 master
    ("adamw", None, 54 * 4, 10 * 4, 2 * 10 * 4 + 2 * 4, 0),
    ("sgd", None, 54 * 4, 10 * 4, 0, 0),
    ("momentum", None, 54 * 4, 10 * 4, 10 * 4, 0),
    ("lion", "bf16", 54 * 2, 10 * 2, 10 * 2, 0),
    ("adafactor", None, 54 * 4, 10 * 4, (2 + 4) * 4 + 2 * 4 + 2 * 4, 0),  # row 2 + column 4; bias full
    ("adam8bit", None, 54 * 4, 10 * 4, 2 * 10 * 4, 0),  # under 4,096 values: two float32 states, no step
    ("adam8bit", "bf16", 54 * 2, 10 * 2, 2 * 10 * 4, 0),  # ... float32 whatever the parameter's dtype
]


@pytest.mark.parametrize(("optimizer", "precision", "weights", "gradients", "state", "master"), HAND)
def test_hand_computed_figures(optimizer, precision, weights, gradients, state, master) -> None:
    estimate = paramscope.memory(tiny(), optimizer=optimizer, precision=precision)
    assert parts(estimate) == (weights, gradients, state, master)
    assert estimate.total.bytes == weights + gradients + state + master
    assert estimate.activations is None and estimate.per_device is None
    assert estimate.gradients.by_role == {"trainable": gradients, "frozen": 0, "state": 0, "unknown": 0}


def test_what_freezing_saved_is_the_frozen_tensors_training_cost() -> None:
    estimate = paramscope.memory(tiny(), optimizer="adam")
    # Trained, the 44 frozen params would need a gradient and 2 moments (12 bytes each) and the
    # 2 frozen tensors a step scalar each.
    assert estimate.saved_by_freezing.by_role == {
        "trainable": 0,
        "frozen": 44 * 12 + 2 * 4,
        "state": 0,
        "unknown": 0,
    }
    assert estimate.all_trainable_total.bytes == estimate.total.bytes + estimate.saved_by_freezing.bytes
    assert any("torch Adam" in line for line in estimate.assumptions)


def test_amsgrad_keeps_a_third_moment() -> None:
    estimate = paramscope.memory(tiny(), optimizer="adamw", amsgrad=True)
    assert estimate.optimizer.bytes == 3 * 10 * 4 + 2 * 4


def state_bytes(optimizer) -> int:
    """Every tensor the optimizer keeps, each storage once (bitsandbytes shares its qmaps)."""
    storages = {}
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                storages[id(value.untyped_storage())] = value.untyped_storage().nbytes()
    return sum(storages.values())


def step(model: nn.Module, optimizer) -> None:
    model.train()
    model(torch.randn(8, 16, dtype=next(model.parameters()).dtype)).float().square().mean().backward()
    optimizer.step()


def truth(model: nn.Module, optimizer) -> tuple[int, int, int, int]:
    """What torch holds after one real step: weights, .grads, optimizer state (no master copy)."""
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    grads = sum(p.grad.nbytes for p in model.parameters() if p.grad is not None)
    return sum(t.nbytes for t in tensors.values()), grads, state_bytes(optimizer), 0


def _bnb(name: str):
    bnb = pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed")
    return getattr(bnb.optim, name)


OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.1),
    "momentum": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    "adam": lambda params: torch.optim.Adam(params),
    "adamw": lambda params: torch.optim.AdamW(params, amsgrad=True),
    "adafactor": lambda params: torch.optim.Adafactor(params),
    # torch has no Lion: bitsandbytes' 32-bit one keeps lion-pytorch's single buffer and no step.
    "lion": lambda params: _bnb("Lion32bit")(params),
    "adam8bit": lambda params: _bnb("Adam8bit")(params),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_prediction_equals_torch_after_one_real_step(name) -> None:
    model = Frozen()
    estimate = paramscope.memory(model, optimizer=name, amsgrad=name == "adamw")
    optimizer = OPTIMIZERS[name]([p for p in model.parameters() if p.requires_grad])
    step(model, optimizer)
    assert all(p.grad is None for p in model.base.parameters())
    assert parts(estimate) == truth(model, optimizer)


@pytest.mark.parametrize("name", ["adam", "adafactor"])
def test_bf16_prediction_equals_a_bf16_model_after_one_real_step(name) -> None:
    predicted = paramscope.memory(Frozen(), optimizer=name, precision="bf16")  # an fp32 model, priced in bf16
    model = Frozen(torch.bfloat16)
    optimizer = OPTIMIZERS[name]([p for p in model.parameters() if p.requires_grad])
    step(model, optimizer)
    assert parts(predicted) == truth(model, optimizer)
    assert parts(paramscope.memory(model, optimizer=name)) == truth(model, optimizer)  # as stored


def test_lora_prediction_equals_peft_after_one_real_step() -> None:
    peft = pytest.importorskip("peft", reason="peft is not installed")
    estimate = paramscope.memory(Frozen(), optimizer="adam", lora="r=4,targets=0")  # the Linears named 0
    model = peft.get_peft_model(Frozen(), peft.LoraConfig(r=4, target_modules=["0"]))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert estimate.gradients.bytes == sum(p.nbytes for p in trainable)  # A and B of base.0 and head.0
    optimizer = torch.optim.Adam(trainable)
    step(model, optimizer)
    assert estimate.optimizer.bytes == state_bytes(optimizer)
    assert estimate.weights.bytes == sum(t.nbytes for t in [*model.parameters(), *model.buffers()])
    assert estimate.saved_by_freezing.by_role["frozen"] > 0 > estimate.saved_by_freezing.by_role["trainable"]


def test_qlora_prices_the_4bit_base_at_its_storage_and_trains_only_the_adapters() -> None:
    bnb = pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed")
    model = nn.Sequential(bnb.nn.Linear4bit(64, 32, quant_type="nf4"), nn.ReLU(), nn.Linear(32, 2)).to("cpu")
    estimate = paramscope.memory(model, optimizer="adam", lora="r=4,targets=0")
    assert model[0].weight.nbytes == 32 * 64 // 2  # two 4-bit values per byte, as torch stores them
    assert estimate.weights.by_role["frozen"] == sum(p.nbytes for p in model.parameters())  # all of it frozen
    adapters = 4 * 64 + 32 * 4  # A (4, 64) and B (32, 4), float32
    assert estimate.gradients.bytes == adapters * 4
    assert estimate.optimizer.bytes == 2 * adapters * 4 + 2 * 4


def published(stage: int, psi: int, devices: int) -> int:
    """ZeRO's per-device model states with mixed-precision Adam: 2Ψ + 2Ψ + KΨ, K = 12, split by stage."""
    weights, gradients, states = 2 * psi, 2 * psi, 12 * psi
    if stage >= 1:
        states //= devices
    if stage >= 2:
        gradients //= devices
    if stage >= 3:
        weights //= devices
    return weights + gradients + states


@pytest.mark.parametrize(
    ("sharding", "stage"), [("none", 0), ("zero1", 1), ("zero2", 2), ("zero3", 3), ("fsdp", 3)]
)
def test_zero_per_device_equals_the_published_formula_when_everything_trains(sharding, stage) -> None:
    model = nn.Sequential(nn.Linear(64, 32), nn.Linear(32, 16))  # Ψ = 2,608 = 8 × 326
    psi = sum(p.numel() for p in model.parameters())
    estimate = paramscope.memory(
        model, optimizer="adam", precision="mixed-master", devices=8, sharding=sharding
    )
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 64)).sum().backward()
    optimizer.step()
    steps = sum(state["step"].nbytes for state in optimizer.state.values())  # replicated, not in the formula
    assert estimate.per_device.bytes == published(stage, psi, 8) + steps


def test_sharding_partitions_only_what_trains_and_deepspeed_counts_everything() -> None:
    model = Frozen()
    zero2 = paramscope.memory(model, precision="mixed-master", devices=4, sharding="zero2")
    zero3 = paramscope.memory(model, precision="mixed-master", devices=4, sharding="zero3")
    frozen_weights = zero2.weights.by_role["frozen"]
    assert zero2.per_device.by_role["frozen"] == frozen_weights  # stage 2 keeps every weight whole
    assert zero3.per_device.by_role["frozen"] == frozen_weights // 4  # stage 3 partitions frozen ones too
    assert zero3.per_device.by_role["state"] == zero3.weights.by_role["state"]  # buffers replicated
    # DeepSpeed's own count (model_to_params): every parameter, requires_grad or not, buffers apart.
    psi = sum({p.data_ptr(): p.numel() for p in model.parameters()}.values())
    assert zero2.per_device.deepspeed.params == psi
    assert zero2.per_device.deepspeed.bytes == 4 * psi + int(16 * psi / 4)
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    assert zero3.per_device.deepspeed.bytes == 4 * largest + int(18 * psi / 4)


def tracked_activations(module: nn.Module, inputs: torch.Tensor) -> int:
    """Activation bytes torch's MemTracker holds after a forward, the loss it produced taken out."""
    from torch.distributed._tools.mem_tracker import MemTracker, _MemRefType

    tracker = MemTracker()
    tracker.track_external(module, inputs)
    with tracker:
        loss = module(inputs).sum()
        tracked = tracker.get_tracker_snapshot("current")[inputs.device][_MemRefType.ACT]
    return tracked - loss.nbytes


def conv_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip


def test_activations_equal_torchs_memory_tracker() -> None:
    model = conv_net()
    estimate = paramscope.memory(model, batch=4, input_shape=(3, 16, 16))
    inputs = torch.randn(4, 3, 16, 16)
    # MemTracker files the input it was handed as external; autograd keeps it for the first conv.
    assert estimate.activations.bytes == tracked_activations(model, inputs) + inputs.nbytes


def test_activations_start_at_the_first_trainable_layer_and_touch_nothing() -> None:
    model = conv_net()
    model[:3].requires_grad_(False)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    estimate = paramscope.memory(model, batch=4, input_shape=(3, 16, 16))
    assert all(torch.equal(before[name], t) for name, t in model.state_dict().items())  # stats did not move
    assert [p.requires_grad for p in model.parameters()] == [False] * 4 + [True] * 6
    with torch.no_grad():
        features = model[:3](torch.randn(4, 3, 16, 16))  # what the trainable part is fed
    assert estimate.activations.bytes == tracked_activations(model[3:], features) + features.nbytes
    assert estimate.saved_by_freezing.by_role["trainable"] > 0  # the frozen convs' saved tensors
    nothing = paramscope.memory(model, freeze=["all"], batch=4, input_shape=(3, 16, 16))
    assert nothing.activations.bytes == 0


def test_amp_activations_are_measured_under_autocast() -> None:
    full = paramscope.memory(conv_net(), batch=4, input_shape=(3, 16, 16)).activations.bytes
    amp = paramscope.memory(conv_net(), precision="amp", batch=4, input_shape=(3, 16, 16)).activations.bytes
    assert 0 < amp < full


def test_a_file_counts_unknown_roles_as_trainable_and_takes_freeze_rules(tmp_path) -> None:
    safetensors = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")
    live = nn.Sequential(nn.Linear(10, 4), nn.Linear(4, 2))
    path = tmp_path / "model.safetensors"
    safetensors.save_file(live.state_dict(), str(path))
    estimate = paramscope.memory(path, optimizer="adam")
    assert estimate.gradients.by_role["unknown"] == sum(p.nbytes for p in live.parameters())
    frozen = paramscope.memory(path, optimizer="adam", freeze=["0"])
    assert parts(frozen) == parts(paramscope.memory(tiny(), optimizer="adam"))  # tiny() freezes layer 0 live


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"optimizer": "adagrad"}, "optimizer 'adagrad'"),
        ({"precision": "int8"}, "precision 'int8'"),
        ({"sharding": "zero4"}, "sharding 'zero4'"),
        ({"devices": 0}, "devices 0"),
        ({"batch": 4}, "both a batch size and an input shape"),
        ({"lora": "r=0,targets=0"}, "lora"),
        ({"lora": "r=4,targets=nowhere"}, "matches no layer"),
    ],
)
def test_bad_options_are_input_errors(options, message) -> None:
    with pytest.raises(InputError, match=message):
        paramscope.memory(tiny(), **options)


def test_activations_of_a_file_are_an_input_error(tmp_path) -> None:
    safetensors = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")
    path = tmp_path / "model.safetensors"
    safetensors.save_file(tiny().state_dict(), str(path))
    with pytest.raises(InputError, match="activations need a model that runs"):
        paramscope.memory(path, batch=2, input_shape=(10,))
