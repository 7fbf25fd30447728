"""The long fuzzing run behind ``tests/files/test_fuzz.py``.

    python benchmarks/fuzz.py [--examples N] [--only TARGET]... [--atheris SECONDS]

1. Hypothesis: every target of ``test_fuzz.TARGETS`` (structure-aware pickles, safetensors
   headers, zip archives, ONNX protobuf soups, GGUF key/values, Keras configs, byte flips and
   cuts of every format) with ``--examples`` examples each (default 5,000 instead of the test
   suite's 50), each read in a forked, limited child. Failures are printed, not raised, so one
   run reports every target.
2. Atheris (coverage-guided libFuzzer, ``pip install atheris``): raw bytes into
   ``paramscope.inspect`` in-process, paramscope instrumented for coverage, seeded with the
   hostile corpus's small files; the first byte picks the file name (a few formats are found by
   name: ``*.index.json``, ``*.weights.json``). Any exception but InputError is a crash that
   libFuzzer saves; ``-timeout`` and ``-rss_limit_mb`` turn hangs and memory blow-ups into
   crashes too. Runs in a child process, as libFuzzer exits when done.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PARAMSCOPE_STRICT"] = "1"  # a reader bug propagates instead of becoming an InputError

NAMES = [  # what the first byte of an Atheris input names the file
    "model.pt",
    "model.safetensors",
    "model.safetensors.index.json",
    "model.weights.json",
    "model.keras",
    "model.h5",
    "model.onnx",
    "model.gguf",
    "array.npy",
    "arrays.npz",
]
SEED_LIMIT = 64 * 1024  # bytes: larger corpus files slow every mutation down


def hypothesis_run(examples: int, only: list[str]) -> int:
    """Every target with ``examples`` examples; the number of targets that failed."""
    from hypothesis import HealthCheck, given, settings

    from tests.files.test_fuzz import TARGETS, check

    long_run = settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    failed = 0
    for name, strategy in TARGETS.items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        try:
            long_run(given(strategy)(check))()
            verdict = "ok"
        except Exception as exc:  # report and go on: one run shows every target's failures
            failed += 1
            verdict = f"FAILED\n{exc}"
        print(f"{name}: {examples:,} examples in {time.perf_counter() - start:.0f} s: {verdict}", flush=True)
    return failed


def write_seeds(folder: Path) -> int:
    """The corpus's valid and truncated files (its hostile ones would stop libFuzzer at the
    first known finding), each prefixed with the byte naming it."""
    from tests.files.hostile_corpus import corpus

    count = 0
    for case in corpus(folder / "PWNED"):
        data = case.files.get(case.target)
        suffix = next((name for name in NAMES if case.target.endswith(name.split(".", 1)[1])), None)
        if (
            case.kind not in ("control", "truncation")
            or data is None
            or suffix is None
            or len(data) > SEED_LIMIT
        ):
            continue
        (folder / case.name).write_bytes(bytes([NAMES.index(suffix)]) + data)
        count += 1
    return count


def atheris_child(seconds: int, work: str, artifacts: str) -> None:
    """libFuzzer's loop over paramscope.inspect (never returns: libFuzzer exits)."""
    import atheris

    from tests.files.hostile_runner import preload

    with atheris.instrument_imports(include=["paramscope"]):  # readers are imported lazily: load them here
        preload()
        import paramscope
        from paramscope.errors import InputError
        from paramscope.render import render

    folder = Path(work) / "scratch"  # libFuzzer exits this process: the parent removes it
    folder.mkdir()

    def test_one_input(data: bytes) -> None:
        if not data:
            return
        path = folder / NAMES[data[0] % len(NAMES)]
        path.write_bytes(data[1:])
        try:
            render("summary", paramscope.inspect(path), "json")
        except InputError:
            pass
        finally:
            path.unlink()

    flags = [f"-max_total_time={seconds}", "-timeout=5", "-rss_limit_mb=2048", "-max_len=65536"]
    flags.append(f"-artifact_prefix={artifacts}/")
    atheris.Setup([sys.argv[0], *flags, str(Path(work) / "seeds")], test_one_input)
    atheris.Fuzz()


def atheris_run(seconds: int) -> int:
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris: not installed (pip install atheris); Hypothesis only")
        return 0
    artifacts = tempfile.mkdtemp(prefix="paramscope-atheris-findings-")
    with tempfile.TemporaryDirectory(prefix="paramscope-atheris-") as work:
        seeds = Path(work) / "seeds"
        seeds.mkdir()
        print(f"atheris: {write_seeds(seeds)} seeds, {seconds} s, findings in {artifacts}", flush=True)
        child = [
            sys.executable,
            __file__,
            "--atheris-child",
            str(seconds),
            "--work",
            work,
            "--artifacts",
            artifacts,
        ]
        return subprocess.run(child, cwd=ROOT, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=5000, help="Hypothesis examples per target")
    parser.add_argument("--only", action="append", default=[], help="a target of test_fuzz.TARGETS")
    parser.add_argument("--atheris", type=int, default=600, metavar="SECONDS", help="0 skips Atheris")
    parser.add_argument("--atheris-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.atheris_child is not None:
        atheris_child(args.atheris_child, args.work, args.artifacts)
    failed = hypothesis_run(args.examples, args.only) if args.examples else 0
    crashed = atheris_run(args.atheris) if args.atheris else 0
    print(f"hypothesis: {failed} target(s) failed; atheris: exit status {crashed}")
    return 1 if failed or crashed else 0


if __name__ == "__main__":
    sys.exit(main())
