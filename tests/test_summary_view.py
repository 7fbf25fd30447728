"""The summary's default view answers "what trains?" at a glance (render/summary/view.py):
weightless layers hidden, alike siblings collapsed, an adaptive depth that keeps every
trainable layer in sight, the one-line answer in the framework's own numbers, `--only`, the
tied marker, torch's dotted names and Keras's output shapes. Counts are the frameworks' own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import paramscope
from paramscope.cli import cli
from paramscope.render import render
from tests import golden_models

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ the models


def efficientnet_transfer():
    """EfficientNetB0 (weights=None) frozen but its last block, under a new Dense head."""
    import keras

    base = keras.applications.EfficientNetB0(weights=None, include_top=False, input_shape=(224, 224, 3))
    for layer in base.layers:
        layer.trainable = layer.name.startswith("block7a_")
    inputs = keras.Input((224, 224, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(base(inputs, training=False))
    return keras.Model(inputs, keras.layers.Dense(5, name="head")(pooled), name="transfer")


class BasicBlock(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)


class ResNetLike(nn.Module):
    """A stem, three alike blocks (the last one trainable) and a head, as ResNet names them."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(BasicBlock(), BasicBlock(), BasicBlock())
        self.fc = nn.Linear(4, 2)
        self.conv1.requires_grad_(False)
        self.layer1[:2].requires_grad_(False)


def resnet_like() -> ResNetLike:
    return ResNetLike()


def _answer(trainable: int, total: int, tensors: int, frozen: int, state: int) -> str:
    return (
        f"trainable {trainable:,} of {total:,} params ({100 * trainable / total:.2f} %) in {tensors} "
        f"tensor{'s' if tensors != 1 else ''}; frozen {frozen:,}; state {state:,}"
    )


def _numbers(text: str, label: str) -> list[str]:
    """The cells after ``label`` on its row."""
    line = next(line for line in text.splitlines() if label in line)
    return line.split(label, 1)[1].split()


# ------------------------------------------------------------------ EfficientNetB0, Keras


@pytest.fixture(scope="module")
def transfer():
    model = efficientnet_transfer()
    return model, paramscope.inspect(model)


def test_efficientnet_default_view_fits_a_screen_and_names_every_trainable_layer(transfer) -> None:
    model, report = transfer
    text = render("summary", report, "text", width=80)
    assert len(text.splitlines()) <= 40
    owners = {variable.path.split("/")[-2] for variable in model.trainable_weights}
    assert len(owners) == 9  # block7a's eight layers and the head
    for owner in owners:
        assert re.search(rf"[─ ]{owner} \(\w+\)", text), owner  # its whole name and type, uncut
    assert "… 123 other layers" in text  # the frozen rest of the base, one row


def test_the_one_line_answer_is_keras_own_numbers(transfer) -> None:
    model, report = transfer
    trainable = sum(int(torch.tensor(v.shape).prod()) for v in model.trainable_weights)
    frozen_and_state = sum(int(torch.tensor(v.shape).prod()) for v in model.non_trainable_weights)
    answer = render("summary", report, "text", width=200).splitlines()[1]
    assert answer == _answer(
        trainable,
        model.count_params(),
        len(model.trainable_weights),
        report.totals["frozen"].params,
        report.totals["state"].params,
    )
    assert report.totals["frozen"].params + report.totals["state"].params == frozen_and_state


def test_keras_output_shapes_cost_no_forward_pass() -> None:
    model = golden_models.keras_transfer()
    text = render("summary", paramscope.inspect(model), "text", width=120)
    head = model.get_layer("head")
    assert _numbers(text, "head (Dense)")[:2] == ["(None,", f"{head.output.shape[1]})"]


# ------------------------------------------------------------------ a ResNet-like torch module


def test_alike_blocks_collapse_and_split_where_their_status_differs() -> None:
    model = resnet_like()
    text = render("summary", paramscope.inspect(model), "text", width=100)
    params, buffers = list(model.layer1[:2].parameters()), list(model.layer1[:2].buffers())
    assert not any(p.requires_grad for p in params)
    assert _numbers(text, "layer1.0 … layer1.1 (2 × BasicBlock)") == [
        "N",
        f"0/{len(params)}/{len(buffers)}",
        f"{sum(t.numel() for t in params + buffers):,}",
        "0",
    ]
    assert "layer1.2 (BasicBlock)" in text and "layer1.2.conv1 (Conv2d)" in text
    assert "layer1.0.conv1" not in text  # inside the collapsed run
    assert "a … b (N × Type)" in text


def test_the_one_line_answer_is_torch_parameters() -> None:
    model = resnet_like()
    report = paramscope.inspect(model)
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    answer = render("summary", report, "text", width=200).splitlines()[1]
    frozen = sum(p.numel() for p in params if not p.requires_grad)
    state = sum(b.numel() for b in model.buffers())
    total = sum(p.numel() for p in params)
    assert answer == _answer(sum(p.numel() for p in trainable), total, len(trainable), frozen, state)
    assert "the first line's total is model.parameters() only" in render("summary", report, "text", width=200)


def test_only_keeps_the_layers_holding_that_role() -> None:
    report = paramscope.inspect(resnet_like())
    trainable = render("summary", report, "text", width=100, only="trainable")
    assert "fc (Linear)" in trainable and "layer1.2 (BasicBlock)" in trainable
    assert "conv1 (Conv2d)" not in trainable.replace("layer1.2.conv1 (Conv2d)", "")
    assert "layer1.0" not in trainable
    frozen = render("summary", report, "text", width=100, only="frozen")
    assert "fc (Linear)" not in frozen and "conv1 (Conv2d)" in frozen


def test_all_layers_shows_what_the_default_hides() -> None:
    report = paramscope.inspect(resnet_like())
    default = render("summary", report, "text", width=100)
    assert "relu (ReLU)" not in default
    assert "1 layer without tensors hidden (--all-layers shows them)." in default
    every = render("summary", report, "text", width=100, all_layers=True)
    assert "relu (ReLU)" in every and "without tensors hidden" not in every


def test_cli_options_and_torch_keys(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    model = "tests/test_summary_view.py:resnet_like"
    result = CliRunner().invoke(cli, ["summary", model, "--depth", "3", "--show-tensors", "--only", "state"])
    assert result.exit_code == 0, result.output
    assert "· layer1.2.bn1.running_mean (4,) float32" in result.output  # the state_dict key, whole
    assert "fc (Linear)" not in result.output
    shown = CliRunner().invoke(cli, ["summary", model, "--all-layers", "--format", "md"])
    assert shown.exit_code == 0 and "relu (ReLU)" in shown.output


# ------------------------------------------------------------------ tied tensors


def test_a_tied_tensor_is_marked_on_the_layer_that_reuses_it() -> None:
    model = golden_models.torch_tied_norm()
    assert model.decoder.weight is model.embedding.weight
    text = render("summary", paramscope.inspect(model), "text", width=100)
    assert "decoder (Linear) ↔ embedding" in text
    assert "↔ x: reuses a tensor of layer x (tied), counted once, at x." in text
    assert "embedding (Embedding) ↔" not in text


def test_only_a_role_no_layer_holds_says_so() -> None:
    model = nn.Linear(3, 2).requires_grad_(False)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 0
    text = render("summary", paramscope.inspect(model), "text", width=100, only="trainable")
    assert "no layer holds trainable tensors" in text
    assert "no layer holds" not in render(
        "summary", paramscope.inspect(model), "text", width=100, only="frozen"
    )


def keras_tied_embedding():
    """An output layer that reuses the embedding it holds as an attribute: Keras tracks `emb` twice."""
    import keras

    class TiedOut(keras.layers.Layer):
        def __init__(self, emb, **kwargs) -> None:
            super().__init__(**kwargs)
            self.emb = emb

        def call(self, x):
            return keras.ops.matmul(x, keras.ops.transpose(self.emb.embeddings))

    inputs = keras.Input((5,), dtype="int32")
    emb = keras.layers.Embedding(30, 8, name="emb")
    return keras.Model(inputs, TiedOut(emb, name="tied_out")(emb(inputs)), name="lm")


def test_a_keras_layer_tracked_twice_is_never_marked_tied_to_itself() -> None:
    text = render("summary", paramscope.inspect(keras_tied_embedding()), "text", width=120)
    marks = re.findall(r"(\S+) \(\w+\) ↔ (\S+)", text)
    assert ("emb", "lm/emb") in marks
    assert all(row != owner for row, owner in marks)


def test_a_file_whose_roles_are_unknown_says_what_is_known(tmp_path) -> None:
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    torch.save(module.state_dict(), tmp_path / "sd.pt")
    text = render("summary", paramscope.inspect(str(tmp_path / "sd.pt")), "text", width=200)
    weights = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    assert (
        f"{weights + buffers} params in 7 tensors; roles unknown (a file stores no trainability): "
        f"{weights} in 4 tensors could train, {buffers} state"
    ) in text
    assert "Tensors T/F/S/U" in text
    assert "Tensors T/F/S/U" in render("summary", paramscope.inspect(str(tmp_path / "sd.pt")), "md")


def nested_long_names() -> nn.Module:
    """Names as deep and long as a PEFT model's, so that they must fold at 80 columns."""
    leaf = nn.Module()
    leaf.query_projection_lora_adapter = nn.Linear(2, 2)
    middle = nn.Module()
    middle.self_attention_block = leaf
    root = nn.Module()
    root.base_model_wrapper_layers = nn.ModuleList([middle])
    return root


def test_long_names_fold_at_dots_never_inside_an_identifier() -> None:
    text = render("summary", paramscope.inspect(nested_long_names()), "text", width=80, depth=4)
    identifiers = {"base_model_wrapper_layers", "self_attention_block", "query_projection_lora_adapter"}
    parts = re.findall(r"[A-Za-z_]{6,}", text)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert identifiers <= set(parts)
    assert not any(part != name and part in name for part in parts for name in identifiers)


# ------------------------------------------------------------------ a LoRA model (peft)


def lora_llama(layers: int) -> nn.Module:
    """A tiny Llama with LoRA (r=2) on q_proj and v_proj of each of its decoder layers."""
    import peft
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    torch.manual_seed(0)
    base = transformers.LlamaForCausalLM(config)
    return peft.get_peft_model(base, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))


STATUS = re.compile(r"Y|N|partial|—")


def _rows(text: str) -> dict[str, list[str]]:
    """Each table row's label, without its type (a label folded over lines joined back), and
    its cells from the Trains column on: [status, *numbers]."""
    rows: list[tuple[str, list[str]]] = []
    for line in text.splitlines()[4:]:
        if rows and not line.startswith((" ", "│", "├", "└")):
            break  # the notes under the table
        cells = line.replace("│", " ").replace("├─", " ").replace("└─", " ").split()
        status = next((i for i, cell in enumerate(cells) if STATUS.fullmatch(cell)), None)
        if status is not None and status > 0:
            rows.append(("".join(cells[:status]), cells[status:]))
        else:  # the rest of the row above's label
            rows[-1] = (rows[-1][0] + "".join(cells), rows[-1][1])
    return {re.sub(r"\(.*\)$", "", label): cells for label, cells in rows}


def test_a_lora_model_is_one_screen_whatever_its_depth_and_names_every_adapter() -> None:
    """Each decoder layer is partly trainable (its adapters); their run is opened once for all,
    a row per adapter layer named by the glob selecting it in every layer, with the sum of the
    parameters torch holds there. The table has the same rows for 2 layers as for 12."""
    texts = {}
    for layers in (2, 12):
        model = lora_llama(layers)
        texts[layers] = render("summary", paramscope.inspect(model), "text", width=80)
    rows = _rows(texts[12])
    counted = re.compile(r"(?<=layers\.)\d+$|(?<=…)\d+(?=other)")  # the run's last member, the rest
    shown = [counted.sub("N", label) for label in rows]
    assert [counted.sub("N", label) for label in _rows(texts[2])] == shown
    assert len(texts[12].splitlines()) <= 60
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    for projection in ("q_proj", "v_proj"):
        for matrix in ("lora_A", "lora_B"):
            glob = f"base_model.model.model.layers.*.self_attn.{projection}.{matrix}"
            held = [
                p
                for name, p in model.named_parameters()
                if re.fullmatch(glob.replace("*", r"\d+") + r"\..*", name)
            ]
            assert len(held) == 12 and all(p.requires_grad for p in held)
            assert rows[glob][0] == "Y" and f"{sum(p.numel() for p in held):,}" in rows[glob], glob
    assert len(trainable) == 48  # 12 layers × 2 projections × (A, B): every one under a row above
    assert "a.*.b, a.{i…j}.b (N × Type): the same layer in each of N alike blocks, one row." in texts[12]


class AttentionBlock(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.attn, self.mlp = nn.Linear(8, width), nn.Linear(8, 8)
        self.mlp.requires_grad_(False)


def blocks(*widths: int, frozen: tuple[int, ...] = ()) -> nn.Module:
    model = nn.Module()
    model.blocks = nn.ModuleList(AttentionBlock(width) for width in widths)
    for index in frozen:
        model.blocks[index].requires_grad_(False)
    return model


def test_runs_are_consecutive_blocks_only() -> None:
    """Partly trainable blocks alternating with frozen ones never collapse across them: a row
    `blocks.0 … blocks.8` would read as nine blocks where it held five."""
    model = blocks(*[8] * 10, frozen=(1, 3, 5, 7, 9))
    rows = _rows(render("summary", paramscope.inspect(model), "text", width=100))
    assert not [label for label in rows if "…" in label and "other" not in label]
    for index in range(10):
        held = sum(p.numel() for p in model.blocks[index].parameters())
        assert f"{held:,}" in rows[f"blocks.{index}"]


def test_two_runs_of_one_model_never_share_a_row_label() -> None:
    """Blocks 0–2 and 3–5 differ in width: two runs, whose rows name their blocks ({0…2},
    {3…5}) with the parameters torch holds there; `*` only where a run is every block."""
    model = blocks(8, 8, 8, 16, 16, 16)
    rows = _rows(render("summary", paramscope.inspect(model), "text", width=100))
    for first, last in ((0, 2), (3, 5)):
        held = sum(
            model.blocks[i].attn.weight.numel() + model.blocks[i].attn.bias.numel()
            for i in range(first, last + 1)
        )
        row = rows[f"blocks.{{{first}…{last}}}.attn"]
        assert row[0] == "Y" and f"{held:,}" in row
    whole = _rows(render("summary", paramscope.inspect(blocks(8, 8, 8)), "text", width=100))
    assert "blocks.*.attn" in whole


def test_a_depth_the_user_gives_is_exact_under_a_run() -> None:
    """--depth 2 stops at the run; --depth 3 shows every layer of its blocks, frozen ones too."""
    model = blocks(8, 8, 8)
    shallow = _rows(render("summary", paramscope.inspect(model), "text", width=100, depth=2))
    deep = _rows(render("summary", paramscope.inspect(model), "text", width=100, depth=3))
    assert not [label for label in shallow if ".*." in label]
    assert {"blocks.*.attn", "blocks.*.mlp"} <= set(deep)
    assert deep["blocks.*.mlp"][0] == "N" and f"{3 * 72:,}" in deep["blocks.*.mlp"]


def test_show_tensors_lists_the_tensors_of_every_layer_shown() -> None:
    """A PEFT `lora_A` holds its weight one level down (`lora_A.default`): the row shown lists
    it, so every trainable tensor's state_dict key is in the output, as --show-tensors says."""
    model = lora_llama(2)
    text = render("summary", paramscope.inspect(model), "text", width=200, show_tensors=True)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == 8
    for name in trainable:
        assert re.search(rf"[─ ]{re.escape(name)}\b", text), name
