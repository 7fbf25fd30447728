"""The hostile corpus of issue #10, judged.

Several hundred hostile files (``hostile_corpus.py``) are read by the harness
(``hostile_runner.py``) in one subprocess, each in a forked child with CPU and memory limits.
For every file: no exception but a clean InputError, no kill, at most 2 s of CPU and 300 MB of
memory, a refusal that is one clean line naming the file, a report whose totals are sane and
whose text output cannot forge the terminal, and the outcome the case expects (a trojan
beside real weights: read, with a malicious verdict naming what it reaches). Nothing ever
runs, and no input is modified. Each assertion lists every failing file with its class,
format and outcome, so that one run shows all findings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from paramscope.core.printable import visible
from tests.files.hostile_corpus import EITHER, KINDS, MALICIOUS, READ, REFUSED, write_corpus
from tests.files.hostile_runner import fingerprint

# Run alone, after the parallel suite: the CPU seconds measured here must be the reader's, not
# what two cores shared with other test workers add to them. The fixture runs one runner per
# core, each forking one reader at a time.
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parents[2]
CPU_LIMIT_S = 2.0
RSS_LIMIT_MB = 300.0
MESSAGE_LIMIT = 300
MIN_HOSTILE = 300
# A format may describe data it does not hold (external data, sparse or compressed tensors, a
# storage viewed with stride 0); its report must then say so with a warning containing one of:
DATA_ELSEWHERE = ("outside the file", "not in the file", "compressed", "not stored")
BITS_PER_PARAM = 1  # the fewest any format stores (GGUF's IQ1 types: 1.56)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("hostile")
    corpus, marker = folder / "corpus", folder / "PWNED"
    cases = write_corpus(corpus, marker)
    before = fingerprint(corpus)
    shards = os.cpu_count() or 1  # one runner per core: what each child reads and measures is its own
    runners = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.files.hostile_runner", str(corpus), "--shard", f"{i}/{shards}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(shards)
    ]
    outputs = [runner.communicate(timeout=1800) for runner in runners]
    for runner, (_, stderr) in zip(runners, outputs, strict=True):
        assert runner.returncode == 0, stderr[-3000:]
    results = [json.loads(line) for stdout, _ in outputs for line in stdout.splitlines()]
    order = {case.name: position for position, case in enumerate(cases)}
    results.sort(key=lambda result: order.get(result["name"], len(order)))  # the shards interleave
    return {
        "cases": cases,
        "results": results,
        "marker": marker,
        "modified": fingerprint(corpus) != before,
        "stderr": "".join(stderr for _, stderr in outputs),
    }


def require_none(rows: list[dict], detail: Callable[[dict], str]) -> None:
    """Fail listing every failing file, one line each, grouped by class and format."""
    if rows:
        lines = [
            f"  {row['kind']:10} {row['format']:17} {row['name']}: {detail(row)}"
            for row in sorted(rows, key=lambda r: (r["kind"], r["format"], r["name"]))
        ]
        pytest.fail(f"{len(rows)} file(s):\n" + "\n".join(lines), pytrace=False)


def outcome(row: dict) -> str:
    if row["outcome"] == "report":
        return "read"
    text = f"{row['outcome']}: {row.get('error_type', '')} {row.get('message', '')!r:.160}"
    return text + (f" at {row['where']}" if row.get("where") else "")


def test_corpus_is_large_and_covers_every_class(run) -> None:
    hostile = [case for case in run["cases"] if case.kind != "control"]
    assert len(hostile) >= MIN_HOSTILE
    assert {case.kind for case in run["cases"]} == set(KINDS)
    assert {case.expect for case in run["cases"]} == {READ, REFUSED, EITHER, MALICIOUS}
    assert [r["name"] for r in run["results"]] == [case.name for case in run["cases"]], run["stderr"][-2000:]


def test_only_clean_refusals_escape(run) -> None:
    """An exception other than InputError, a kill by the CPU limit or the wall clock, a crash."""
    failing = [r for r in run["results"] if r["outcome"] not in ("report", "refused")]
    require_none(failing, outcome)


def test_cpu_within_two_seconds(run) -> None:
    failing = [r for r in run["results"] if r["cpu_s"] > CPU_LIMIT_S]
    require_none(failing, lambda r: f"{r['cpu_s']:.2f} s CPU, {outcome(r)}")


def test_memory_within_300_mb(run) -> None:
    failing = [r for r in run["results"] if r["rss_mb"] > RSS_LIMIT_MB]
    require_none(failing, lambda r: f"{r['rss_mb']:.0f} MB peak RSS, {outcome(r)}")


def message_problems(row: dict) -> list[str]:
    """What is wrong with a refusal's message as a line for the user's terminal."""
    message = row["message"]
    problems = []
    if "\n" in message or "\r" in message:
        problems.append("more than one line")
    if row["message_length"] > MESSAGE_LIMIT:
        problems.append(f"{row['message_length']:,} characters")
    if any(not char.isprintable() for char in message):
        problems.append("unprintable characters")
    name = Path(row["path"]).name
    if name not in message and visible(name) not in message:
        problems.append("does not name the file")
    return problems


def test_refusals_are_one_clean_line_naming_the_file(run) -> None:
    failing = [r for r in run["results"] if r["outcome"] == "refused" and message_problems(r)]
    require_none(failing, lambda r: f"{', '.join(message_problems(r))}: {r['message']!r:.160}")


def listed(row: dict, what: str) -> int:
    """A total (bytes, params) over every tensor the report lists: its model's and its groups'."""
    return sum(t[what] for role, t in row["totals"].items() if role == "all" or role.startswith("group:"))


def says_data_is_elsewhere(row: dict) -> bool:
    return any(phrase in warning for warning in row["warnings"] for phrase in DATA_ELSEWHERE)


def totals_problems(row: dict) -> list[str]:
    problems = [
        f"negative {what} ({role})"
        for role, totals in row["totals"].items()
        for what, value in totals.items()
        if value < 0
    ]
    disk = row["disk_bytes"]
    if not says_data_is_elsewhere(row):
        if listed(row, "bytes") > disk:
            problems.append(f"{listed(row, 'bytes'):,} bytes described, {disk:,} on disk")
        if listed(row, "params") * BITS_PER_PARAM > disk * 8:
            problems.append(f"{listed(row, 'params'):,} params in {disk:,} bytes")
    return problems


def test_reports_have_sane_totals(run) -> None:
    """No negative count; no more bytes (or parameters at one bit each) than the files hold,
    unless the report warns that the data lies elsewhere."""
    failing = [r for r in run["results"] if r["outcome"] == "report" and totals_problems(r)]
    require_none(failing, lambda r: "; ".join(totals_problems(r)))


def forgery(row: dict) -> str:
    unsafe = f"prints {', '.join(row['unsafe_output'])}" if row["unsafe_output"] else ""
    return "; ".join(
        filter(None, [unsafe, "starts a line with a name's INJECTED" if row["forged_line"] else ""])
    )


def test_rendered_text_cannot_forge_the_terminal(run) -> None:
    """The text summary (and --show-tensors) holds no control character but newlines, and no
    newline taken from a name (the corpus's names go on with INJECTED after theirs)."""
    require_none([r for r in run["results"] if r["outcome"] == "report" and forgery(r)], forgery)


def malicious_problem(row: dict) -> str:
    """A trojan beside real weights must be read, its verdict malicious, naming its global."""
    if row["outcome"] != "report":
        return f"must be read with a malicious verdict, {outcome(row)}"
    verdict = row["pickle"] or {"verdict": None, "malicious": []}
    if verdict["verdict"] != MALICIOUS:
        return f"the verdict is {verdict['verdict']}, must be malicious"
    named = [entry["global"] for entry in verdict["malicious"]]
    if row["phrase"] not in named:
        return f"the verdict names {named}, not {row['phrase']!r}"
    return ""


def expectation_problem(row: dict) -> str:
    if row["expect"] == MALICIOUS:
        return malicious_problem(row)
    if row["expect"] == REFUSED and row["outcome"] == "report":
        return "read, must be refused"
    if row["expect"] == READ and row["outcome"] != "report":
        return f"must be read, {outcome(row)}"
    if row["phrase"] and row["outcome"] == "refused" and row["phrase"] not in row["message"]:
        return f"the refusal does not name {row['phrase']!r}: {row['message']!r:.120}"
    return ""


def test_each_file_meets_its_expectation(run) -> None:
    failing = [r for r in run["results"] if expectation_problem(r)]
    require_none(failing, expectation_problem)


def test_nothing_executed(run) -> None:
    require_none([r for r in run["results"] if r["executed"]], outcome)
    assert not run["marker"].exists()


def test_no_input_modified(run) -> None:
    require_none([r for r in run["results"] if r["modified"]], outcome)
    assert not run["modified"]
