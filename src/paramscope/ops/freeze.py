"""freeze: plan a freeze on the report, see what it changes, get the code, apply on request.

Semantics are each framework's own:

* Keras 3: ``layer.trainable = flag`` sets the flag of the layer, all its sublayers and their
  variables; a variable trains when its flag and the root model's are set (a sublayer
  re-enabled under a frozen parent trains).
* tf.keras: the setter propagates the same way, but a variable trains only when every
  enclosing layer is trainable (a sublayer re-enabled under a frozen parent stays frozen).
* torch: ``requires_grad_`` on every parameter of the module; buffers are never trained, and
  ``requires_grad`` does not stop BatchNorm statistics in ``train()`` mode.

Simulation never touches the model. ``apply_plan`` sets the flags on the live model through
the frameworks' public setters; the API then re-inspects it, so the "after" is what the
framework itself now says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paramscope.core.kinds import Freezing
from paramscope.core.live_facts import LiveFacts
from paramscope.core.report import Node, Report, Role, RoleTotals, totals_of
from paramscope.core.select import select
from paramscope.errors import InputError
from paramscope.pitfalls import LintContext

LEARNABLE = (Role.TRAINABLE, Role.FROZEN)


@dataclass(frozen=True)
class Rule:
    action: str  # "freeze" or "unfreeze"
    selector: str

    @property
    def flag(self) -> bool:
        return self.action == "unfreeze"


@dataclass
class FreezePlan:
    report: Report
    rules: list[Rule]
    selected: list[tuple[Rule, list[Node]]]
    after: dict[str, RoleTotals]
    roles_after: dict[str, Role]  # tensor path -> role once the plan is applied
    changed: list[dict] = field(default_factory=list)
    snippet: str = ""
    semantics: str = ""
    applied: bool = False
    findings: list = field(default_factory=list)
    layer_flags: dict[str, bool] | None = None  # Keras: each layer's trainable flag once applied
    report_after: Report | None = None  # applied: the model re-inspected, as its framework now says

    def _repr_html_(self) -> str:  # Jupyter, VS Code, Colab
        """A display hook: the plan's before/after as HTML, rendered lazily (ARCHITECTURE.md)."""
        from paramscope.render import notebook_html

        return notebook_html("freeze", self)


def parse_rules(
    freeze: list[str] | tuple[str, ...] = (),
    unfreeze: list[str] | tuple[str, ...] = (),
    rules: list[tuple[str, str]] | None = None,
) -> list[Rule]:
    """Ordered rules: ``rules`` as given, else every freeze then every unfreeze."""
    pairs = (
        rules if rules is not None else [("freeze", s) for s in freeze] + [("unfreeze", s) for s in unfreeze]
    )
    parsed = []
    for action, selector in pairs:
        if action not in ("freeze", "unfreeze"):
            raise InputError(f"rule {action!r}: expected freeze or unfreeze")
        parsed.append(Rule(action, selector))
    if not parsed:
        raise InputError("nothing to do: give at least one --freeze or --unfreeze selector")
    return parsed


def _owner_node(tensor_path: str) -> str:
    return tensor_path.rsplit("/", 1)[0] if "/" in tensor_path else ""


def _simulate(report: Report, selected: list[tuple[Rule, list[Node]]]) -> tuple[dict[str, Role], dict | None]:
    """Every tensor's role once the rules are applied, in order, with the framework's semantics,
    and (Keras) every layer's flag then."""
    freezing = report.source.kind.freezing
    owner: dict[str, str] = {}  # tensor path -> the path of the object it is (aliases share it)
    roles: dict[str, Role] = {}
    for tensor in report.tensors():
        owner[tensor.path] = tensor.shared_with or tensor.path
        roles.setdefault(owner[tensor.path], tensor.role)
    if freezing is Freezing.PER_PARAMETER:
        for rule, nodes in selected:
            for node in nodes:
                for tensor in node.all_tensors():
                    if roles[owner[tensor.path]] in LEARNABLE:
                        roles[owner[tensor.path]] = Role.TRAINABLE if rule.flag else Role.FROZEN
        return {path: roles[key] for path, key in owner.items()}, None
    if freezing is Freezing.NONE:
        raise InputError(
            f"{report.source.path or report.source.kind}: this format stores no trainability, so there is nothing to freeze"
        )
    node_flag = {node.path: node.trainable is not False for node in report.nodes()}
    # A variable's own flag: known from its role while the root trains; under a frozen root every
    # role reads frozen, and the owning layer's flag (which its setter keeps in step) tells.
    variable_flag = {
        key: role is Role.TRAINABLE if node_flag[""] else node_flag.get(_owner_node(key), True)
        for key, role in roles.items()
    }
    for rule, nodes in selected:
        for node in nodes:
            for inner in node.walk():  # the setter reaches every sublayer and its variables
                node_flag[inner.path] = rule.flag
                for tensor in inner.tensors:
                    variable_flag[owner[tensor.path]] = rule.flag
    after = {}
    for path, key in owner.items():
        if roles[key] not in LEARNABLE:
            after[path] = roles[key]
        elif freezing is Freezing.PER_VARIABLE:  # under the root's flag
            after[path] = Role.TRAINABLE if node_flag[""] and variable_flag[key] else Role.FROZEN
        else:  # per parent: the owning layer and every ancestor must be trainable
            parts = _owner_node(key).split("/") if _owner_node(key) else []
            trains = node_flag[""] and all(
                node_flag.get("/".join(parts[: i + 1]), True) for i in range(len(parts))
            )
            after[path] = Role.TRAINABLE if trains else Role.FROZEN
    return after, node_flag


def _changed(report: Report, roles: dict[str, Role]) -> list[dict]:
    changed = []
    for node in report.nodes():
        if not node.tensors:
            continue
        before, after = report.summaries[id(node)].status, node.training_status(roles)
        if before != after:
            changed.append({"path": node.path, "type": node.type, "before": before, "after": after})
    return changed


def _keras_access(node: Node) -> str:
    if not node.path:
        return "model"
    return "model" + "".join(f".get_layer({part!r})" for part in node.path.split("/"))


def _snippet(report: Report, selected: list[tuple[Rule, list[Node]]]) -> str:
    lines = []
    if report.source.kind.freezing is Freezing.PER_PARAMETER:
        for rule, nodes in selected:
            lines.append(f"# {rule.action} {rule.selector}")
            for node in nodes:
                target = "model" if not node.path else f"model.get_submodule({node.path.replace('/', '.')!r})"
                lines.append(f"{target}.requires_grad_({rule.flag})")
        frozen_bn = [
            n
            for rule, nodes in selected
            if not rule.flag
            for node in nodes
            for n in node.walk()
            if n.type.startswith("BatchNorm")
        ]
        lines.append("# build the optimizer from trainable parameters only:")
        lines.append("optimizer = torch.optim.AdamW(p for p in model.parameters() if p.requires_grad)")
        if frozen_bn:
            lines.append(
                "# requires_grad does not stop BatchNorm statistics: after every model.train(), call"
            )
            lines.append("for module in model.modules():")
            lines.append("    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not any(")
            lines.append("            p.requires_grad for p in module.parameters()):")
            lines.append("        module.eval()")
        return "\n".join(lines) + "\n"
    for rule, nodes in selected:
        lines.append(f"# {rule.action} {rule.selector}")
        if len(nodes) > 12:
            names = [n.path for n in nodes]
            lines.append(f"for path in {names!r}:")
            lines.append("    layer = model")
            lines.append("    for part in path.split('/'):")
            lines.append("        layer = layer.get_layer(part)")
            lines.append(f"    layer.trainable = {rule.flag}")
        else:
            lines += [f"{_keras_access(node)}.trainable = {rule.flag}" for node in nodes]
    lines.append("model.compile(...)  # again: fit() uses the trainable set captured at compile()")
    return "\n".join(lines) + "\n"


# How freezing works, by (freezing semantics, live model): a live model also runs, a file does not.
SEMANTICS = {
    (Freezing.PER_VARIABLE, True): "Keras 3: decided per variable — a sublayer re-enabled under a frozen "
    "parent trains; frozen BatchNormalization runs in inference mode.",
    (Freezing.PER_VARIABLE, False): "Keras 3: decided per variable — a sublayer re-enabled under a frozen "
    "parent trains.",
    (Freezing.PER_PARENT, True): "tf.keras: decided per parent — a sublayer re-enabled under a frozen parent "
    "stays frozen.",
    (Freezing.PER_PARENT, False): "tf.keras or Keras 3 file: flags as saved; re-enabled sublayers follow the "
    "writer's rules.",
    (Freezing.PER_PARAMETER, True): "PyTorch: requires_grad per parameter; buffers are never trained, and "
    "BatchNorm statistics still update in train() mode unless those modules are put in eval().",
}


def plan_freeze(report: Report, rules: list[Rule]) -> FreezePlan:
    selected = [(rule, select(report, rule.selector)) for rule in rules]
    roles, layer_flags = _simulate(report, selected)
    return FreezePlan(
        report,
        rules,
        selected,
        totals_of(report.tensors(), roles),
        roles,
        _changed(report, roles),
        _snippet(report, selected),
        SEMANTICS.get((report.source.kind.freezing, report.source.kind.live), ""),
        layer_flags=layer_flags,
    )


def applied_plan(before: Report, after: Report) -> FreezePlan:
    """A plan applied from elsewhere (a torch plan file): no rules, the roles before and after
    as the framework reports them, and the layers whose training status changed."""
    roles = {tensor.path: tensor.role for tensor in after.tensors()}
    semantics = SEMANTICS.get((before.source.kind.freezing, before.source.kind.live), "")
    plan = FreezePlan(before, [], [], after.totals, roles, _changed(before, roles), "", semantics)
    plan.applied, plan.report_after = True, after
    return plan


def apply_plan(plan: FreezePlan) -> None:
    """Set the flags on the live model, in rule order, with each framework's public setter
    (``requires_grad_``, the ``trainable`` property). The caller re-inspects the model."""
    kind = plan.report.source.kind
    if not kind.live:
        raise InputError("only a live model can be changed; files are never modified")
    for rule, nodes in plan.selected:
        for node in nodes:
            if node.origin is None:
                raise InputError(f"layer {node.path!r} has no live object to change")
            if kind.freezing is Freezing.PER_PARAMETER:
                node.origin.requires_grad_(rule.flag)
            else:
                node.origin.trainable = rule.flag


def plan_context(plan: FreezePlan, facts: LiveFacts) -> LintContext:
    """The lint context of a plan: the roles it leaves, and the nodes it freezes."""
    frozen: set[str] = set()
    for rule, nodes in plan.selected:
        paths = {inner.path for node in nodes for inner in node.walk()}
        frozen = frozen - paths if rule.flag else frozen | paths
    return LintContext(plan.report, plan.roles_after, facts, plan=plan, frozen_nodes=frozen)
