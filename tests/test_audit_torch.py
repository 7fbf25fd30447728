"""audit on torch modules: each dynamic pitfall caught, its fix passing, everything restored.

"Restored" is checked here independently of the audit's own proof: the state dict, gradients,
requires_grad flags, module modes, optimizer state and the RNG are compared bit for bit.
"""

from __future__ import annotations

import copy

import pytest
import torch
from click.testing import CliRunner, Result

import paramscope
from paramscope.cli import cli
from paramscope.core.report import Role
from paramscope.errors import InputError
from paramscope.testing import assert_frozen
from tests.json_contract import validated
from tests.test_torch import TiedLanguageModel


class Backbone(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Classifier(torch.nn.Module):
    def __init__(self, head_without_grad: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = Backbone()
        self.head = torch.nn.Linear(4, 3)
        self.temperature = torch.nn.Parameter(torch.ones(()))
        self.head_without_grad = head_without_grad

    def forward(self, x):
        features = self.backbone(x).mean(dim=(2, 3))
        if self.head_without_grad:
            with torch.no_grad():
                logits = self.head(features)
        else:
            logits = self.head(features)
        return logits / self.temperature


class TiedLM(TiedLanguageModel):
    def forward(self, tokens):
        return self.decoder(self.lstm(self.embedding(tokens))[0])


INPUTS = (torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)),)


def frozen_classifier(**kwargs) -> Classifier:
    model = Classifier(**kwargs)
    model.backbone.requires_grad_(False)
    return model


def snapshot(model: torch.nn.Module, optimizer=None) -> dict:
    return {
        "state": {k: v.clone() for k, v in model.state_dict(keep_vars=False).items()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "modes": {n: m.training for n, m in model.named_modules()},
        "optimizer": copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None,
        "rng": torch.get_rng_state(),
    }


def bits(t: torch.Tensor) -> bytes:
    return t.detach().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and bits(a) == bits(b)
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def audited(model, optimizer=None, **options):
    before = snapshot(model, optimizer)
    result = paramscope.audit(model, optimizer=optimizer, inputs=INPUTS, **options)
    assert result.restored
    assert same(snapshot(model, optimizer), before), "the audit left the model or optimizer changed"
    return result


def rules(result) -> list[str]:
    return [finding.rule for finding in result.findings]


def test_batchnorm_in_train_mode_under_a_frozen_backbone_is_caught() -> None:
    model = frozen_classifier()
    result = audited(model)
    assert rules(result) == ["frozen-bn-train-mode"]
    assert set(result.findings[0].tensors) == {
        "backbone/bn/running_mean",
        "backbone/bn/running_var",
        "backbone/bn/num_batches_tracked",
    }
    assert model.training and model.backbone.bn.training  # the mode the user left it in


def test_batchnorm_in_eval_mode_passes() -> None:
    model = frozen_classifier()
    model.backbone.bn.eval()
    result = audited(model)
    assert result.findings == [] and not result.failed
    assert set(result.changed) == {"head/weight", "head/bias", "temperature"}
    assert not model.backbone.bn.training


def test_frozen_params_in_adamw_with_zero_grads_are_caught() -> None:
    model = frozen_classifier()
    model.backbone.bn.eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    for param in model.parameters():
        param.grad = torch.zeros_like(param)  # zeroed, not None: AdamW still decays them
    result = audited(model, optimizer)
    assert rules(result) == ["frozen-in-optimizer"]
    assert "backbone/conv/weight" in result.findings[0].tensors
    assert "weight decay" in result.findings[0].message
    assert result.failed


def test_adamw_over_trainable_params_only_passes() -> None:
    model = frozen_classifier()
    model.backbone.bn.eval()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=0.01, weight_decay=0.1
    )
    assert audited(model, optimizer).findings == []


def test_parameter_unfrozen_after_the_optimizer_was_built_is_caught() -> None:
    model = frozen_classifier()
    model.backbone.bn.eval()
    optimizer = torch.optim.SGD([*model.head.parameters(), model.temperature], lr=0.1)
    model.backbone.conv.requires_grad_(True)
    result = audited(model, optimizer)
    assert rules(result) == ["trainable-not-in-optimizer"]
    assert set(result.findings[0].tensors) == {"backbone/conv/weight", "backbone/conv/bias"}
    optimizer.add_param_group({"params": list(model.backbone.conv.parameters())})
    assert audited(model, optimizer).findings == []


def test_trainable_head_behind_no_grad_is_caught() -> None:
    model = frozen_classifier(head_without_grad=True)
    model.backbone.bn.eval()
    result = audited(model)
    assert rules(result) == ["no-grad-path"]
    assert set(result.findings[0].tensors) == {"head/weight", "head/bias"}


def test_verdicts_cover_every_tensor_once_with_torch_roles() -> None:
    model = TiedLM()
    model.embedding.requires_grad_(False)  # also freezes the tied decoder weight
    inputs = (torch.randint(0, 50, (2, 5)),)
    result = paramscope.audit(model, inputs=inputs)
    unique = {id(p) for p in model.parameters()} | {id(b) for b in model.buffers()}
    assert len(result.verdicts) == len(unique)
    trainable = [v for v in result.verdicts if v.role is Role.TRAINABLE]
    assert len(trainable) == sum(1 for p in model.parameters() if p.requires_grad)
    assert all(v.changed for v in trainable) and result.findings == []


def test_inputs_from_the_first_layer_and_bf16_weights_move() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).to(
        torch.bfloat16
    )
    result = paramscope.audit(model)
    assert result.inputs == "(2, 6) bfloat16"
    assert "lr=0.1" in result.optimizer
    assert len(result.changed) == 4 and result.findings == []


def test_freeze_rules_are_applied_for_the_audit_and_undone_after() -> None:
    model = Classifier()
    model.eval()  # BatchNorm statistics stay put, so only the freeze is judged
    result = paramscope.audit(model, freeze=["all"], unfreeze=["head"], inputs=INPUTS)
    assert result.findings == [] and result.restored
    assert {v.path for v in result.verdicts if v.role is Role.TRAINABLE} == {"head/weight", "head/bias"}
    assert all(p.requires_grad for p in model.parameters())  # the flags are back


def test_a_model_that_cannot_run_is_bad_input() -> None:
    model = torch.nn.Linear(3, 2)
    with pytest.raises(InputError, match="train step failed"):
        paramscope.audit(model, input_shape=(2, 5))
    assert model.weight.grad is None


def test_assert_frozen_helper_and_fixture(assert_frozen) -> None:  # the fixture shadows the import
    good = frozen_classifier()
    good.backbone.bn.eval()
    assert_frozen(good, "backbone", inputs=INPUTS)
    with pytest.raises(AssertionError, match="frozen-bn-train-mode"):
        assert_frozen(frozen_classifier(), "backbone", inputs=INPUTS)
    with pytest.raises(AssertionError, match="should be frozen but trains"):
        assert_frozen(good, "head", inputs=INPUTS)


def test_assert_frozen_import() -> None:
    with pytest.raises(AssertionError, match="matches no tensor"):
        assert_frozen(frozen_classifier(), "nope", inputs=INPUTS)


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", *args])


def test_cli_exit_codes_and_json(tmp_path) -> None:
    factory = tmp_path / "factory.py"
    factory.write_text(
        "import torch\n"
        "def bn_train():\n"
        "    torch.manual_seed(0)\n"
        "    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),\n"
        "                                torch.nn.Linear(4 * 14 * 14, 2))\n"
        "    model[0].requires_grad_(False); model[1].requires_grad_(False)\n"
        "    return model\n"
    )
    failing = run_cli(f"{factory}:bn_train", "--format", "json")
    assert failing.exit_code == 1, failing.stderr
    data = validated(failing.stdout)
    assert {"findings", "changed", "unchanged", "restored"} <= data.keys()
    assert data["restored"] is True and data["passed"] is False
    assert data["findings"][0]["rule"] == "frozen-bn-train-mode"
    assert {"rule", "tensors", "message", "fix"} <= data["findings"][0].keys()
    assert set(data["changed"]) >= {"3/weight", "3/bias", "1/running_mean"}
    passing = run_cli(
        f"{factory}:bn_train", "--freeze", "1", "--unfreeze", "0", "--optimizer", "adam", "--lr", "0.01"
    )
    assert passing.exit_code == 1  # BatchNorm is still in train mode inside a frozen part
    fixed = run_cli(f"{factory}:bn_train", "--unfreeze", "1", "--steps", "1")
    assert fixed.exit_code == 0, fixed.stdout + fixed.stderr
    assert "Audit passed." in fixed.stdout and "Restored:" in fixed.stdout
    bad = run_cli(f"{factory}:bn_train", "--input-shape", "2,5")
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "train step failed" in bad.stderr


def test_inputs_one_tensor_is_one_argument() -> None:
    """`audit(model, optimizer=opt, inputs=batch)` with one tensor, as the README writes it:
    the batch is the model's one argument, never split along its first dimension."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    model[0].requires_grad_(False)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for inputs in (torch.randn(8, 4), (torch.randn(8, 4),), [torch.randn(8, 4)]):
        result = paramscope.audit(model, optimizer=optimizer, inputs=inputs)
        assert result.restored and not [f for f in result.findings if f.severity == "error"]
        assert {v.path for v in result.verdicts if v.changed} == {"1/weight", "1/bias"}
    with pytest.raises(paramscope.InputError, match="inputs= takes a tensor"):
        paramscope.audit(model, optimizer=optimizer, inputs=3)


def test_unbuilt_lazy_model_is_an_input_error() -> None:
    """An audit that cannot take a step on the real weights checks nothing: it must not pass."""
    model = torch.nn.Sequential(torch.nn.LazyLinear(3), torch.nn.Linear(3, 2))
    with pytest.raises(InputError, match=r"not built yet.*call it once"):
        paramscope.audit(model, inputs=torch.randn(2, 4))
    model(torch.randn(2, 4))
    assert paramscope.audit(model, inputs=torch.randn(2, 4)).restored


def test_a_fresh_lora_model_passes_its_zero_gradient_a_matrices_explained() -> None:
    """LoRA's B starts at zero, so A's gradient is all zero until B moves: with --steps 1 A stays
    bit-identical, rightly. That is an info finding naming them, not a failed audit blaming a
    no_grad() that is not there; a tensor cut off the loss stays an error (tests above)."""
    import peft

    torch.manual_seed(0)
    model = peft.get_peft_model(
        torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)),
        peft.LoraConfig(r=2, target_modules=["0", "2"]),
    )
    result = paramscope.audit(model, inputs=torch.randn(4, 6), steps=1)
    lora_a = sorted(name.replace(".", "/") for name, _ in model.named_parameters() if "lora_A" in name)
    assert all(p.grad is None for p in model.parameters())  # restored: the audit leaves no gradient behind
    assert not result.failed, result.findings
    (finding,) = result.findings
    assert (finding.rule, finding.severity, sorted(finding.tensors)) == ("zero-gradient", "info", lora_a)
    by_path = {v.path: v for v in result.verdicts}
    assert all(not by_path[path].changed and by_path[path].expected == "either" for path in lora_a)
    assert all(v.changed for v in result.verdicts if "lora_B" in v.path)
