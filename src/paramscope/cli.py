"""The ``paramscope`` command: parse, call the API, render, exit code.

Exit codes: 0 ok; 1 a check found a problem (a malicious pickle among them: its report is
printed, then one line on stderr says why the exit is 1); 2 bad input or usage, reported on
one line naming the model or file and what is wrong (``--debug`` shows the traceback).
"""

from __future__ import annotations

import functools
import sys

import click

from paramscope import __version__
from paramscope.errors import ParamscopeError
from paramscope.render import COMMANDS, FORMATS

EXIT_FOUND_PROBLEM = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


def _fail(message: str, code: int) -> None:
    """One line on stderr, whatever the message holds (names from files included), and exit."""
    from paramscope.core.printable import one_line

    click.echo(f"paramscope: error: {one_line(message)}", err=True)
    sys.exit(code)


def exit_if_malicious(report) -> None:
    """After the output: exit 1 when MODEL is a pickle that reaches dangerous functions, so
    that a CI step reading an untrusted checkpoint fails (DESIGN.md: a check found a problem)."""
    from paramscope.core.printable import one_line
    from paramscope.core.report import Verdict

    verdict = report.pickle
    if verdict is None or verdict.verdict is not Verdict.MALICIOUS:
        return
    names = ", ".join(name for name, _ in verdict.malicious[:3])
    more = f" and {len(verdict.malicious) - 3:,} more" if len(verdict.malicious) > 3 else ""
    message = (
        f"{report.source.path}: malicious pickle: it reaches {names}{more}; loading it would run them "
        "(paramscope executed nothing)"
    )
    click.echo(f"paramscope: {one_line(message)}", err=True)
    sys.exit(EXIT_FOUND_PROBLEM)


def _limits(_ctx, _param, values: tuple[str, ...]) -> dict[str, float]:
    """``--limit NAME=N`` pairs as a dict (names are checked when the limits are applied)."""
    parsed = {}
    for value in values:
        name, sep, number = value.partition("=")
        try:
            parsed[name.strip()] = float(number.replace("_", ""))
        except ValueError:
            raise click.BadParameter(
                f"{value!r}: expected NAME=NUMBER, e.g. pickle_opcodes=20000000"
            ) from None
        if not sep or parsed[name.strip()] < 0:
            raise click.BadParameter(f"{value!r}: expected NAME=NUMBER, e.g. pickle_opcodes=20000000")
    return parsed


def handles_errors(command):
    """Turn our errors into one-line messages and exit codes; `--debug` re-raises.

    Also gives every command `--limit NAME=N`, raising a read limit of the file budget
    (sources/budget.py) for this run.
    """

    @click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
    @click.option(
        "--limit",
        "read_limits",
        multiple=True,
        metavar="NAME=N",
        callback=_limits,
        help="Raise a file-reading limit, e.g. pickle_opcodes=50000000 (repeatable).",
    )
    @functools.wraps(command)
    def wrapper(*args, debug: bool, read_limits: dict[str, float], **kwargs):
        from paramscope.sources.boundary import recording_reads
        from paramscope.sources.budget import limits

        try:
            with limits(**read_limits), recording_reads() as reads:
                click.get_current_context().meta["reads"] = reads
                return command(*args, **kwargs)
        except ParamscopeError as exc:
            if debug:
                raise
            _fail(str(exc), EXIT_BAD_INPUT)
        except (KeyboardInterrupt, SystemExit, click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:
            if debug:
                raise
            _fail(
                f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback "
                "and please report it)",
                EXIT_INTERNAL,
            )

    return wrapper


def model_arguments(command):
    """MODEL and its repeatable ``--arg KEY=VALUE`` factory arguments."""
    command = click.option(
        "--arg",
        "factory_args",
        multiple=True,
        metavar="KEY=VALUE",
        help="Argument for the model factory (repeatable).",
    )(command)
    return click.argument("model")(command)


def freeze_first(command):
    """``--freeze``/``--unfreeze`` selectors applied before the command looks (audit, memory);
    their order on the command line is kept (OrderedRulesCommand)."""
    command = click.option(
        "--unfreeze", multiple=True, metavar="SELECTOR", help="Unfreeze these first (repeatable)."
    )(command)
    return click.option(
        "--freeze", "freeze_", multiple=True, metavar="SELECTOR", help="Freeze these first (repeatable)."
    )(command)


def show(
    command: str, result: object, fmt: str, output: str | None, inputs: list[str] = (), **options
) -> None:
    """Emit ``result`` of ``command``: text for a terminal is printed by rich (colour, the
    terminal's width); every other output is rendered to a string and emitted (see ``emit``).
    ``options``: the command's display options (summary: depth, all_layers, only, show_tensors)."""
    if fmt == "text" and output is None:
        from rich.console import Console

        from paramscope.render import renderable

        Console(highlight=False).print(renderable(command, result, **options), crop=False)
    else:
        from paramscope.render import render

        emit(render(command, result, fmt, **options), output, inputs)


def emit(text: str, output: str | None, inputs: list[str] = ()) -> None:
    """Print ``text``, or write it to ``output`` atomically, never over a file this command
    read (its MODEL, every file a reader opened, and ``inputs``)."""
    if output:
        from paramscope.fileio import write_atomic

        write_atomic(output, text, inputs=[*_input_paths(), *inputs])
    else:
        click.echo(text, nl=False)


def _input_paths() -> list[str]:
    """The files this command read — its MODEL and every file a reader opened (shards,
    external data) — which its outputs never overwrite."""
    context = click.get_current_context(silent=True)
    if context is None:
        return []
    named = [value for key in ("model", "folder") if isinstance(value := context.params.get(key), str)]
    return [*named, *sorted(context.meta.get("reads", ()))]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="paramscope")
def cli() -> None:
    """Know exactly what your model will learn.

    MODEL is a checkpoint file (.keras, .h5, .pt/.pth/.bin, safetensors or a sharded index,
    ONNX, GGUF, .npz/.npy: read without a framework, nothing executed), or a
    `package.module:factory` / `path/to/file.py:factory` reference; pass factory arguments
    with repeatable `--arg key=value` (values are Python literals).
    """


@cli.command()
@model_arguments
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE (atomically).")
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    default=None,
    help="Show layers down to this depth (root = 0); by default the deepest that fits a screen, "
    "with every trainable layer shown. JSON always holds the whole tree.",
)
@click.option("--all-layers", is_flag=True, help="Also show layers that hold no tensor (hidden by default).")
@click.option(
    "--only",
    type=click.Choice(["trainable", "frozen", "state", "unknown"]),
    help="Only the layers holding tensors of this role.",
)
@click.option("--show-tensors", is_flag=True, help="List every tensor with its shape, dtype and role.")
@handles_errors
def summary(
    model: str,
    factory_args: tuple[str, ...],
    fmt: str,
    output: str | None,
    depth: int | None,
    all_layers: bool,
    only: str | None,
    show_tensors: bool,
) -> None:
    """Every layer's tensors and parameters by role, reconciled with the framework's totals.

    Exits 1 after the summary if MODEL is a malicious pickle (it names what it reaches).
    """
    from paramscope.api import inspect
    from paramscope.sources.reference import parse_factory_args

    report = inspect(model, **parse_factory_args(factory_args))
    options = {"depth": depth, "all_layers": all_layers, "only": only, "show_tensors": show_tensors}
    show("summary", report, fmt, output, **options)
    exit_if_malicious(report)


@cli.command()
@model_arguments
@click.option(
    "--layer",
    metavar="SELECTOR",
    help="Only these layers and those inside them: a path or glob (base/block_16_*), type:CLASS, … as freeze takes.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE (atomically).")
@handles_errors
def explain(
    model: str, factory_args: tuple[str, ...], layer: str | None, fmt: str, output: str | None
) -> None:
    """Why each count is what it is, layer by layer, and what your numbers mean.

    Exits 1 if a formula disagrees with the layer's real tensors (a paramscope bug, reported),
    or if MODEL is a malicious pickle.
    """
    from paramscope.api import explain as explain_model
    from paramscope.sources.reference import parse_factory_args

    explanation = explain_model(model, layer=layer, **parse_factory_args(factory_args))
    show("explain", explanation, fmt, output)
    exit_if_malicious(explanation.report)
    if explanation.problems:
        sys.exit(EXIT_FOUND_PROBLEM)


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: one line per file; json: one document, a source per file; md: a table.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE (atomically).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Wall-clock time each file may take (default: the seconds read limit, 60).",
)
@click.option(
    "--max-memory",
    type=click.IntRange(min=1),
    metavar="MB",
    help="Memory each reader process may add to its own size (default: 1024).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["none", "malicious", "needs-code"]),
    default="malicious",
    show_default=True,
    help="Exit 1 when a pickled file's verdict reaches this level (needs-code includes malicious).",
)
@handles_errors
def scan(
    folder: str,
    fmt: str,
    output: str | None,
    timeout: float | None,
    max_memory: int | None,
    fail_on: str,
) -> None:
    """One line for every checkpoint under FOLDER, read in parallel, nothing executed.

    A pickled file's line says what loading it would do: data-only, needs-code (it imports
    classes from other packages) or malicious (it reaches functions that run commands, open
    files or evaluate code). A file that takes too long, needs too much memory or crashes its
    reader gets an error line and the scan goes on. Exits 1 if any checkpoint could not be read
    (its line says why) or if a verdict reaches --fail-on.
    """
    from paramscope.api import scan as scan_folder

    memory = max_memory * 1024 * 1024 if max_memory else None
    scanned = scan_folder(folder, timeout=timeout, max_memory=memory)
    files = [line.path for line in scanned.lines]  # read in worker processes: never overwritten
    show("scan", scanned, fmt, output, inputs=files)
    if scanned.errors or scanned.failing(fail_on):
        sys.exit(EXIT_FOUND_PROBLEM)


class OrderedRulesCommand(click.Command):
    """Keeps the command-line order of --freeze and --unfreeze: later rules win."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["rule_order"] = [
            arg.split("=", 1)[0].lstrip("-")
            for arg in args
            if arg.split("=", 1)[0] in ("--freeze", "--unfreeze")
        ]
        return super().parse_args(ctx, args)


def ordered_rules(freeze_: tuple[str, ...], unfreeze: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (action, selector) rules in the order they were typed (see OrderedRulesCommand)."""
    values = {"freeze": list(freeze_), "unfreeze": list(unfreeze)}
    return [(action, values[action].pop(0)) for action in click.get_current_context().meta["rule_order"]]


@cli.command(cls=OrderedRulesCommand)
@model_arguments
@click.option("--freeze", "freeze_", multiple=True, metavar="SELECTOR", help="Layers to freeze (repeatable).")
@click.option("--unfreeze", multiple=True, metavar="SELECTOR", help="Layers to unfreeze (repeatable).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write the report to FILE (atomically)."
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    help="Write the plan: a .keras file with the flags (Keras), or a JSON plan (torch).",
)
@click.option("--force", is_flag=True, help="Let --out overwrite an existing file.")
@handles_errors
def freeze(
    model: str,
    factory_args: tuple[str, ...],
    freeze_: tuple[str, ...],
    unfreeze: tuple[str, ...],
    fmt: str,
    output: str | None,
    out: str | None,
    force: bool,
) -> None:
    """Plan a freeze: before/after per role, the layers it changes, and the code.

    SELECTOR: a path glob (base, base/block_16_*), re:REGEX, type:CLASS, until:PATH, from:PATH,
    last:N or all. Rules apply in the order given; later rules win. The model is not changed.
    """
    from paramscope.api import freeze as plan_model
    from paramscope.sources.reference import parse_factory_args

    rules = ordered_rules(freeze_, unfreeze)
    plan = plan_model(model, rules=rules, **parse_factory_args(factory_args))
    if out:
        from paramscope.api import write_plan

        write_plan(plan, out, force=force)
    show("freeze", plan, fmt, output)
    exit_if_malicious(plan.report)


def _input_shape(_ctx, _param, value: str | None) -> tuple[int, ...] | None:
    """``2,3,32,32``, ``2x3x32x32`` or a tuple as Python prints it, ``(2, 3, 32, 32)``."""
    if value is None:
        return None
    try:
        parts = value.strip().removeprefix("(").removesuffix(")").replace("x", ",").split(",")
        shape = tuple(int(part) for part in parts if part.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected integers such as 2,3,32,32") from None
    if not shape or min(shape) < 1:
        raise click.BadParameter(f"{value!r}: expected positive integers such as 2,3,32,32")
    return shape


@cli.command(cls=OrderedRulesCommand)
@model_arguments
@freeze_first
@click.option(
    "--optimizer",
    "optimizer_name",
    metavar="NAME",
    help="Build this optimizer (sgd, adam, adamw…) instead of the model's.",
)
@click.option("--lr", type=float, help="Learning rate of the optimizer built by --optimizer (or by default).")
@click.option(
    "--steps", type=click.IntRange(min=1), default=2, show_default=True, help="Training steps to take."
)
@click.option(
    "--input-shape", callback=_input_shape, metavar="SHAPE", help="Input shape with batch, e.g. 2,3,32,32."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE (atomically).")
@handles_errors
def audit(
    model: str,
    factory_args: tuple[str, ...],
    freeze_: tuple[str, ...],
    unfreeze: tuple[str, ...],
    optimizer_name: str | None,
    lr: float | None,
    steps: int,
    input_shape: tuple[int, ...] | None,
    fmt: str,
    output: str | None,
) -> None:
    """Prove a freeze: take real training steps, diff every tensor, restore everything.

    Frozen tensors must stay bit-identical and trainable ones must move; findings name the
    pitfall and its fix. Exits 1 when the step contradicts the roles (for CI).
    """
    from paramscope.api import audit as audit_model
    from paramscope.sources.reference import parse_factory_args

    rules = ordered_rules(freeze_, unfreeze)
    result = audit_model(
        model,
        steps=steps,
        rules=rules or None,
        optimizer_name=optimizer_name,
        lr=lr,
        input_shape=input_shape,
        **parse_factory_args(factory_args),
    )
    show("audit", result, fmt, output)
    if result.failed:
        sys.exit(EXIT_FOUND_PROBLEM)


@cli.command()
@model_arguments
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE (atomically).")
@handles_errors
def lint(model: str, factory_args: tuple[str, ...], fmt: str, output: str | None) -> None:
    """The freezing pitfalls MODEL falls into. Exits 1 on an error-severity finding, or when
    MODEL is a malicious pickle (for CI)."""
    from paramscope.api import lint as lint_model
    from paramscope.sources.reference import parse_factory_args

    report, findings = lint_model(model, **parse_factory_args(factory_args))
    show("lint", (report, findings), fmt, output)
    exit_if_malicious(report)
    if any(f.severity == "error" for f in findings):
        sys.exit(EXIT_FOUND_PROBLEM)


@cli.command(cls=OrderedRulesCommand)
@model_arguments
@click.option(
    "--optimizer",
    default="adam",
    show_default=True,
    metavar="NAME",
    help="sgd, momentum, adam, adamw, adafactor, adam8bit (bitsandbytes) or lion.",
)
@click.option("--amsgrad", is_flag=True, help="Adam/AdamW with amsgrad: a third moment.")
@click.option(
    "--precision", metavar="NAME", help="fp32, bf16, fp16, amp or mixed-master (default: the stored dtypes)."
)
@click.option(
    "--devices", type=click.IntRange(min=1), default=1, show_default=True, help="Data-parallel devices."
)
@click.option(
    "--sharding", default="none", show_default=True, metavar="NAME", help="none, zero1, zero2, zero3 or fsdp."
)
@click.option("--batch", type=click.IntRange(min=1), help="Batch size per device, to measure activations.")
@click.option(
    "--input-shape",
    callback=_input_shape,
    metavar="SHAPE",
    help="One example's shape, without the batch: 224,224,3.",
)
@freeze_first
@click.option(
    "--lora", metavar="r=R,targets=LAYER,…", help="Train LoRA adapters of rank R on these layers only."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE (atomically).")
@handles_errors
def memory(
    model: str, factory_args: tuple[str, ...], freeze_, unfreeze, fmt: str, output: str | None, **how
) -> None:
    """What training MODEL costs with this freeze: weights, gradients, optimizer state, master
    weights and (with --batch and --input-shape, on a MODEL that runs) activations, per role,
    per device under --sharding, beside DeepSpeed's estimate and the same model with everything
    trainable. A file's tensors of unknown role count as trainable unless --freeze says otherwise.
    """
    from paramscope.api import memory as estimate
    from paramscope.sources.reference import parse_factory_args

    rules = ordered_rules(freeze_, unfreeze)
    result = estimate(model, rules=rules, **how, **parse_factory_args(factory_args))
    show("memory", result, fmt, output)


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Values that moved by at most this count as unchanged (default: bit-identical only).",
)
@click.option(
    "--expect-frozen",
    multiple=True,
    metavar="SELECTOR",
    help="Layers of A that must not have changed; exit 1 if one did (repeatable).",
)
@click.option(
    "--match",
    default="name",
    show_default=True,
    metavar="name|order",
    help="Pair tensors by path, or by order and shape.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE (atomically).")
@handles_errors
def diff(
    a: str, b: str, tolerance: float, expect_frozen: tuple[str, ...], match: str, fmt: str, output
) -> None:
    """What changed from A to B: tensors added, removed, reshaped, dtype- and role-changed, then
    values tensor by tensor (bit-identical, or max |Δ|, ‖Δ‖/‖A‖ and the fraction of elements
    changed), summed up per layer. A and B are checkpoint files in any mix of formats, or
    module:factory references (without --arg). Files are read in bounded chunks, never whole.
    Exits 1 when a layer named by --expect-frozen changed (for CI).
    """
    from paramscope.api import diff as compare

    result = compare(a, b, tolerance=tolerance, expect_frozen=expect_frozen, match=match)
    show("diff", result, fmt, output, inputs=[a, b])
    if result.failed:
        sys.exit(EXIT_FOUND_PROBLEM)


@cli.command(cls=OrderedRulesCommand)
@model_arguments
@click.option(
    "--output", "-o", required=True, type=click.Path(dir_okay=False), help="The HTML file to write."
)
@click.option(
    "--freeze",
    "freeze_",
    multiple=True,
    metavar="SELECTOR",
    help="Show this freeze in the plan (repeatable).",
)
@click.option(
    "--unfreeze", multiple=True, metavar="SELECTOR", help="Show this unfreeze in the plan (repeatable)."
)
@click.option("--audit", "audit_", is_flag=True, help="Run a real training step and show its verdicts.")
@click.option(
    "--optimizer", default="adam", show_default=True, help="The optimizer the memory breakdown prices."
)
@handles_errors
def report(
    model: str, factory_args: tuple[str, ...], output: str, freeze_, unfreeze, audit_, optimizer
) -> None:
    """One offline HTML page: the numbers per role beside the framework's own, where the
    parameters sit (a chart), the layer table with formulas, memory, and optionally a freeze
    plan and an audit. Inline CSS and SVG only: it opens anywhere, without a network.

    Exits 1 after writing the page if the audit failed or MODEL is a malicious pickle."""
    from paramscope.api import report as overview
    from paramscope.render import render
    from paramscope.sources.reference import parse_factory_args

    rules = ordered_rules(freeze_, unfreeze)
    result = overview(
        model, rules=rules, audit=audit_, optimizer=optimizer, **parse_factory_args(factory_args)
    )
    emit(render("report", result, "html"), output)
    click.echo(f"wrote {output}", err=True)
    exit_if_malicious(result.explanation.report)
    if result.audit is not None and result.audit.failed:
        sys.exit(EXIT_FOUND_PROBLEM)


@cli.command()
@model_arguments
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="FILE.png or FILE.svg.")
@click.option("--by", type=click.Choice(["role", "dtype", "layer-type"]), default="role", show_default=True)
@handles_errors
def plot(model: str, factory_args: tuple[str, ...], output: str, by: str) -> None:
    """Parameters per top-level node as stacked bars (needs matplotlib: paramscope[plot])."""
    from pathlib import Path

    from paramscope.api import inspect
    from paramscope.errors import InputError
    from paramscope.fileio import write_atomic
    from paramscope.sources.reference import parse_factory_args

    try:
        from paramscope.render.plot import image
    except ImportError as exc:
        raise InputError(f"plot needs matplotlib: pip install 'paramscope[plot]' ({exc})") from exc
    fmt = Path(output).suffix.lower().lstrip(".")
    data = image(inspect(model, **parse_factory_args(factory_args)), by, fmt)
    write_atomic(output, data, inputs=_input_paths())
    click.echo(f"wrote {output}", err=True)


@cli.command()
@click.argument("command", required=False, type=click.Choice(COMMANDS))
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE (atomically).")
@handles_errors
def schema(command: str | None, output: str | None) -> None:
    """The JSON Schema (draft 2020-12) of COMMAND's `--format json` output; without COMMAND,
    one schema that every command's output validates against."""
    import json

    from paramscope.schema import schema as load_schema

    emit(json.dumps(load_schema(command), indent=2) + "\n", output)


@cli.command()
@handles_errors
def demo() -> None:
    """The transfer-learning story: MobileNetV2 base + head, before and after freezing."""
    from paramscope.demo import run_demo

    run_demo()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
