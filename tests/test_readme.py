"""Every example in README.md runs, exactly as printed, so the README cannot drift.

The rules (the README's authors follow them):

* a ```sh block: every line is a ``paramscope ...`` command (a trailing ``\\`` continues it),
  run in-process through click's CliRunner; it must exit 0, or N when the line ends with
  ``# exit N``. Any other line is an error: a block of other commands (``make``, ``pip``) is
  preceded by ``<!-- readme: skip (why) -->``;
* a ```python block is executed with fresh globals; the ``test_*`` functions it defines are
  then called, as pytest would;
* an output block (```text or a bare fence) whose first line is ``$ paramscope ...`` is run
  too, and what it shows must be what the command prints: its lines, in order, each a line of
  the real output at 80 columns (``…`` stands for any text; lines may be left out);
* every block runs in a temporary folder holding a copy of ``examples/``, one folder per README
  section (heading), its blocks in order: a python block can write the checkpoint that the next
  sh block reads.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

from paramscope.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SKIP = re.compile(r"<!--\s*readme:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
EXPECTED_EXIT = re.compile(r"#\s*exit\s+(?P<code>\d+)\s*$")
PROMPT = "$ paramscope "


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README and where it stands."""

    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    section: str  # the heading it is under
    skip: str | None  # the reason given in a skip marker right before it

    @property
    def runs(self) -> bool:
        return self.lang in ("sh", "python") or self.text.startswith(PROMPT)


def readme_blocks(markdown: str) -> list[Block]:
    """The README's fenced blocks with their sections and skip markers, in order."""
    tokens = MarkdownIt().parse(markdown)
    blocks, section = [], "(top)"
    for index, token in enumerate(tokens):
        if token.type == "inline" and tokens[index - 1].type == "heading_open":
            section = token.content
        elif token.type == "fence":
            previous = tokens[index - 1] if index else None
            marker = SKIP.search(previous.content) if previous and previous.type == "html_block" else None
            line = token.map[0] + 1
            skip = marker["reason"] if marker else None
            blocks.append(Block(line, token.info.strip(), token.content, section, skip))
    return blocks


BLOCKS = [block for block in readme_blocks(README.read_text(encoding="utf-8")) if block.runs]


def commands(block: Block) -> list[tuple[list[str], int]]:
    """A sh block's commands (continuations joined) and the exit code each must give."""
    found = []
    for line in block.text.replace("\\\n", " ").splitlines():
        if not line.strip():
            continue
        assert line.startswith("paramscope "), (
            f"README.md:{block.line}: {line!r} is not a paramscope command; precede the block with "
            "<!-- readme: skip (why) --> if it cannot run in a test"
        )
        expected = EXPECTED_EXIT.search(line)
        found.append((shlex.split(line, comments=True)[1:], int(expected["code"]) if expected else 0))
    return found


def invoke(args: list[str], where: str) -> tuple[str, int]:
    """Run one command in-process; its output (stdout and stderr) and exit code."""
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "80"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{where}: paramscope {shlex.join(args)} raised") from result.exception
    return result.output, result.exit_code


def run_sh(block: Block) -> None:
    for args, expected in commands(block):
        output, code = invoke(args, f"README.md:{block.line}")
        assert code == expected, (
            f"README.md:{block.line}: paramscope {shlex.join(args)} exited {code}:\n{output}"
        )


def run_python(block: Block) -> None:
    namespace = {"__name__": "__readme__"}
    exec(compile(block.text, f"README.md:{block.line}", "exec"), namespace)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value()


def matches(expected: str, actual: str) -> bool:
    """Whether one shown line is a line of the real output, ``…`` standing for any text."""
    pattern = ".*".join(re.escape(part) for part in expected.rstrip().split("…"))
    return re.fullmatch(pattern, actual.rstrip()) is not None


def run_output(block: Block) -> None:
    """The command on the block's first line prints every other line of it, in order."""
    first, *shown = block.text.splitlines()
    expected_exit = EXPECTED_EXIT.search(first)
    args = shlex.split(first.removeprefix("$ "), comments=True)[1:]
    output, code = invoke(args, f"README.md:{block.line}")
    assert code == (int(expected_exit["code"]) if expected_exit else 0), output
    lines = iter(output.splitlines())
    for line in filter(str.strip, shown):
        assert any(matches(line, actual) for actual in lines), (
            f"README.md:{block.line}: {line!r} is not in the output (or not in this order):\n{output}"
        )


RUNNERS = {"sh": run_sh, "python": run_python}


class Sections:
    """One working folder per README section, its blocks run in order: running a block first
    runs the section's earlier blocks there (a test selected alone still finds their files)."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory, self.folders, self.done = factory, {}, set()

    def folder(self, section: str) -> Path:
        if section not in self.folders:
            folder = self.factory.mktemp("readme")
            shutil.copytree(
                ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("__pycache__")
            )
            self.folders[section] = folder
        return self.folders[section]

    def run(self, block: Block) -> None:
        for earlier in BLOCKS:
            if earlier.section == block.section and earlier.line < block.line and earlier not in self.done:
                try:
                    self.run(earlier)
                except AssertionError as failure:
                    pytest.fail(f"README.md:{earlier.line}, which this block builds on, fails: {failure}")
        if block.skip is None:
            RUNNERS.get(block.lang, run_output)(block)
        self.done.add(block)


@pytest.fixture(scope="module")
def sections(tmp_path_factory: pytest.TempPathFactory) -> Sections:
    return Sections(tmp_path_factory)


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch):
    """The README's imports (``examples.models``) come from the section's folder, as from the
    repository root, and leave nothing behind for the next section."""
    modules = set(sys.modules)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield monkeypatch
    for name in set(sys.modules) - modules:
        if name == "examples" or name.startswith(("examples.", "_paramscope_user_")):
            del sys.modules[name]


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}-{b.lang or 'output'}" for b in BLOCKS])
def test_readme_block(block: Block, sections: Sections, isolated: pytest.MonkeyPatch) -> None:
    if block.skip is not None:
        pytest.skip(block.skip)
    folder = sections.folder(block.section)
    isolated.chdir(folder)
    isolated.syspath_prepend(os.fspath(folder))
    sections.run(block)


def test_no_command_escapes_the_doc_test() -> None:
    """Commands are shown in ```sh blocks or as the first line of an output block: nowhere else,
    where this test would not run them."""
    for block in readme_blocks(README.read_text(encoding="utf-8")):
        assert block.lang not in ("bash", "shell", "console"), f"README.md:{block.line}: use ```sh"
        prompts = [line for line in block.text.splitlines() if line.startswith("$ ")]
        assert prompts == ([block.text.splitlines()[0]] if block.text.startswith(PROMPT) else []), (
            f"README.md:{block.line}: a shown command is the block's first line, one per block"
        )
