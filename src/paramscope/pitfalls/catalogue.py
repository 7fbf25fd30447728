"""Every freezing pitfall, written once: what lint, freeze findings and audit all cite.

A rule (rules.py) or an audit judgement (ops/audit.py) decides *that* a pitfall applies and
names the tensors; the words a user reads about *why* and *how to fix it* come from here, so
the two can never drift apart. ``docs/PITFALLS.md`` is generated from this table (a test
compares them; ``PARAMSCOPE_REGENERATE=1`` rewrites it), and every finding links to its
section there.
"""

from __future__ import annotations

from dataclasses import dataclass

DOCS_URL = "docs/PITFALLS.md"


@dataclass(frozen=True)
class Pitfall:
    id: str
    framework: str  # "Keras", "torch", "both", "tools"
    title: str  # one line: the symptom people see
    why: str  # why it happens
    fix: str  # the default fix (a rule may say it more precisely for the case at hand)
    references: tuple[str, ...] = ()  # public threads: owner/repo#N, or a URL
    static: str = "—"  # how lint sees it without running the model
    dynamic: str = "—"  # how audit proves it with a real step

    @property
    def anchor(self) -> str:
        return f"{DOCS_URL}#{self.id}"


CATALOGUE: dict[str, Pitfall] = {}


def _add(*pitfalls: Pitfall) -> None:
    for pitfall in pitfalls:
        if pitfall.id in CATALOGUE:
            raise ValueError(f"pitfall {pitfall.id} written twice")
        CATALOGUE[pitfall.id] = pitfall


_add(
    Pitfall(
        "stale-compile",
        "Keras",
        "frozen layers still train, or unfrozen ones do not",
        "compile() captures the trainable set; changing `trainable` afterwards is not seen by the compiled "
        "train step (tf.keras restores the compiled flags; Keras 3 warns its optimizer may track the wrong "
        "variables)",
        "call model.compile(...) again after changing trainable flags",
        ("keras-team/keras#6405", "keras-team/keras#9157"),
        "the trainable set differs from the one captured at compile()",
        "a frozen tensor changed, or a trainable one did not, in train_on_batch",
    ),
    Pitfall(
        "frozen-bn-train-mode",
        "torch",
        "BatchNorm running_mean/running_var drift though requires_grad=False",
        "requires_grad=False stops gradients, not the running statistics a module in train() mode updates "
        "in every forward pass",
        "after every model.train(), put the frozen BatchNorm modules in eval(), or use FrozenBatchNorm2d",
        ("pytorch/pytorch#66073", "https://discuss.pytorch.org/t/137904"),
        "a BatchNorm module whose parameters are frozen is in train() mode",
        "its buffers changed after one step",
    ),
    Pitfall(
        "bn-inference-when-frozen",
        "Keras",
        "a frozen base runs BatchNorm in inference mode; unfreezing it later destroys what it learned",
        "a frozen BatchNormalization layer runs in inference mode; once unfrozen, a base not called with "
        "training=False updates its statistics from the new data",
        "build the model with x = base_model(inputs, training=False)",
        ("keras-team/keras#18092", "https://keras.io/guides/transfer_learning/"),
        "frozen BatchNormalization inside a base that is not called with training=False",
        "moving statistics changed after unfreezing",
    ),
    Pitfall(
        "frozen-in-optimizer",
        "torch",
        "'frozen' weights still move a little",
        "torch skips a parameter whose .grad is None, but steps one with a zero (not None) gradient, "
        "momentum or moments from before the freeze, or weight decay",
        "build the optimizer from [p for p in model.parameters() if p.requires_grad]; set p.grad = None "
        "when freezing",
        ("facebookresearch/moco#14", "pytorch/pytorch#38581"),
        "a requires_grad=False parameter in a param group with a .grad, optimizer state or weight decay",
        "a frozen parameter changed after steps with the user's optimizer",
    ),
    Pitfall(
        "trainable-not-in-optimizer",
        "torch",
        "unfrozen layers never learn",
        "the optimizer was built before the layers were unfrozen and holds no reference to them",
        "re-create the optimizer after unfreezing, or optimizer.add_param_group({'params': [...]})",
        ("fastai/fastai#2133",),
        "a requires_grad=True parameter in no param group",
        "a trainable parameter did not change",
    ),
    Pitfall(
        "no-grad-path",
        "torch",
        "a trainable weight gets no gradient",
        "no_grad, detach, an unused head, or reentrant checkpointing with frozen inputs cut it off the loss",
        "remove the torch.no_grad()/detach() on its path; use_reentrant=False for checkpointing",
        ("huggingface/transformers#21381",),
        dynamic="requires_grad=True and .grad is None after backward",
    ),
    Pitfall(
        "zero-learning-rate",
        "both",
        "trainable weights do not move: their learning rate is 0",
        "their optimizer group's learning rate is 0 (a scheduler's warm-up, or a group set to 0 on purpose)",
        "give the group a learning rate, or check the scheduler's warm-up",
        dynamic="trainable tensors unchanged in a group whose learning rate is 0",
    ),
    Pitfall(
        "frozen-parent-override",
        "Keras",
        "a sublayer set trainable under a frozen parent: tf.keras keeps it frozen, Keras 3 trains it",
        "Keras 3 decides per variable, tf.keras per parent layer",
        "set flags from the outside in: freeze the parent, then unfreeze the sublayers you mean to train",
        ("keras-team/keras#18092",),
        "a trainable node under a frozen ancestor",
    ),
    Pitfall(
        "frozen-root-hides-all",
        "Keras",
        "model.trainable = False at the root: no sublayer trains, whatever its own flag",
        "a layer's trainable flag gates every variable below it; a frozen root hides all of them",
        "freeze the layers you mean, not the root",
        ("keras-team/keras#18092",),
        "the root's flag is False while descendants are trainable",
    ),
    Pitfall(
        "tied-freeze-conflict",
        "both",
        "freezing one side of a tied weight freezes the other (embedding and LM head)",
        "both sides share one tensor, so it has one requires_grad / trainable state",
        "untie the weights first, or freeze both knowingly",
        ("huggingface/transformers#11903",),
        "one tensor reached through two nodes with different intended roles",
    ),
    Pitfall(
        "nothing-to-train",
        "both",
        "training runs and nothing learns",
        "no parameter is trainable",
        "unfreeze the head (or the layers you mean to train)",
        static="zero trainable parameters",
    ),
    Pitfall(
        "index-freeze-on-weightless",
        "both",
        "layers[:N] froze fewer real layers than intended",
        "a selection by position lands on layers that own no weights (activations, pooling, dropout)",
        "select by name or by type:CLASS rather than by position",
        static="a freeze by index selects layers without weights",
    ),
    Pitfall(
        "double-count",
        "tools",
        "totals larger than the model",
        "a tensor reached through two modules (tied weights, shared layers) is counted at each",
        "count each tensor once, by identity (paramscope does)",
        ("TylerYep/torchinfo#377", "keras-team/keras#7116"),
        "one tensor reached at two paths",
    ),
    Pitfall(
        "quantized-count",
        "torch",
        "4-bit parameters counted as half",
        "bitsandbytes Params4bit packs two 4-bit values per stored uint8 element, so numel() is half",
        "count 4-bit parameters as numel() x 2 (paramscope does)",
        ("huggingface/peft#733",),
        "a packed 4-bit dtype",
    ),
    Pitfall(
        "amp-skip",
        "both",
        "trainable weights look frozen because the loss-scaled step was skipped",
        "a dynamic loss scaler skips the update when gradients overflow, and lowers the scale",
        "retry the step; never declare 'unchanged' on a skipped step (audit retries)",
        static="a loss scaler is present",
        dynamic="the loss scale dropped and no tensor changed",
    ),
    Pitfall(
        "bf16-rounding",
        "both",
        "tiny updates vanish in 16-bit weights",
        "an update below half an ulp of a bfloat16/float16 weight rounds back to the same value",
        "audit with a larger --lr, or keep float32 master weights",
        static="bf16/fp16 trainable tensors",
        dynamic="16-bit trainable tensors unchanged",
    ),
    Pitfall(
        "h5-nested-flag-lost",
        "tf.keras",
        "a base frozen with base.trainable = False and saved as legacy .h5 loads trainable",
        "the legacy .h5 format stores the nested model's config, whose flag loading does not restore",
        "save as .keras, or set the flag again after loading",
        static="a nested model saved frozen in a legacy .h5",
    ),
    Pitfall(
        "frozen-changed",
        "both",
        "frozen tensors changed in the train step",
        "something other than the optimizer writes to them (an in-place update in forward, a custom "
        "train_step)",
        "check what writes to them outside the optimizer",
        dynamic="a frozen tensor changed with no optimizer cause",
    ),
    Pitfall(
        "zero-gradient",
        "torch",
        "a trainable tensor did not change: its gradient was all zero",
        "its gradient is zero by construction for now: LoRA's A matrices while B is still zero "
        "(B moves first, then A), or a unit whose activation never fires on this batch",
        "nothing, for LoRA's A in the first steps (audit with --steps 3, or train a step first); "
        "otherwise check the activations that feed it",
        dynamic="requires_grad=True and .grad all zero after backward in a step",
    ),
    Pitfall(
        "trainable-unchanged",
        "both",
        "trainable tensors did not change in the train step",
        "the loss does not depend on them, or the optimizer does not update them",
        "check that the loss depends on them and that the optimizer updates them",
        dynamic="a trainable tensor unchanged with no other cause found",
    ),
    Pitfall(
        "train-step-failed",
        "both",
        "the training step raised",
        "the model, loss or optimizer failed inside the step",
        "make one training step of the model work, then audit again",
        dynamic="the step raised",
    ),
    Pitfall(
        "restore-failed",
        "both",
        "the model could not be restored bit-exactly after the audit",
        "a tensor the audit snapshotted differs after restoring it (a paramscope bug)",
        "report this as a paramscope bug; reload the model before training",
        dynamic="a restored tensor differs from its snapshot",
    ),
)


def pitfall(pitfall_id: str) -> Pitfall:
    """The catalogue entry; a rule citing an id that is not written here is a paramscope bug."""
    return CATALOGUE[pitfall_id]


def markdown() -> str:
    """docs/PITFALLS.md: the table, then one section per pitfall (the anchors findings link to)."""
    lines = [
        "# Freezing and fine-tuning pitfalls",
        "",
        "Generated from `src/paramscope/pitfalls/catalogue.py` (do not edit here). `paramscope lint` "
        "checks them statically, `paramscope audit` proves them with a real training step; every "
        "finding links to its section below.",
        "",
        "| id | framework | symptom | static check | dynamic check |",
        "|---|---|---|---|---|",
    ]
    for p in CATALOGUE.values():
        lines.append(f"| [{p.id}](#{p.id}) | {p.framework} | {p.title} | {p.static} | {p.dynamic} |")
    for p in CATALOGUE.values():
        lines += ["", f"## {p.id}", "", f"**{p.title}** ({p.framework})", "", f"Why: {p.why}.", ""]
        lines.append(f"Fix: {p.fix}.")
        if p.references:
            lines += ["", "References: " + ", ".join(p.references) + "."]
    return "\n".join(lines) + "\n"
