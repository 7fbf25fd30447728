"""``diff`` of two large safetensors files: peak memory and speed, beside ``cmp`` on the same files.

Writes two identical safetensors files of ``--gigabytes`` GB each (float32 tensors of 32 MB)
and a third that differs from the first in its last tensor, then times, in fresh processes,
best of ``--repeats`` with the files in the page cache:

* ``cmp A B`` — the floor: compare two files byte by byte, nothing else;
* ``paramscope.diff(A, B)`` on the identical pair — bit-identical check of every tensor;
* ``paramscope.diff(A, C)`` — the same, plus float64 statistics of the changed tensor.

Goals (issue #14): peak RSS under 300 MB whatever the file size; identical files at disk speed,
i.e. a time ratio to ``cmp`` near 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TENSOR_ELEMENTS = 8 * 1024 * 1024  # 32 MB of float32
DIFF = """
import json, resource, sys, paramscope
diff = paramscope.diff(sys.argv[1], sys.argv[2])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"summary": diff.summary, "peak": peak}))
"""


def write_safetensors(path: Path, tensors: int, seed: int = 0) -> None:
    """``tensors`` float32 tensors of TENSOR_ELEMENTS each, written one at a time."""
    size = TENSOR_ELEMENTS * 4
    header = {
        f"layers.{i}.weight": {
            "dtype": "F32",
            "shape": [TENSOR_ELEMENTS],
            "data_offsets": [i * size, (i + 1) * size],
        }
        for i in range(tensors)
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as handle:
        handle.write(len(raw).to_bytes(8, "little") + raw)
        for _ in range(tensors):
            handle.write(rng.standard_normal(TENSOR_ELEMENTS, dtype=np.float32).tobytes())


def nudged_copy(source: Path, target: Path) -> None:
    """A copy of ``source`` whose last tensor has moved by a little, every 7th element."""
    shutil.copyfile(source, target)
    with open(target, "r+b") as handle:
        handle.seek(-TENSOR_ELEMENTS * 4, os.SEEK_END)
        start = handle.tell()
        last = np.frombuffer(handle.read(), dtype=np.float32).copy()
        last[::7] += np.float32(1e-3)
        os.pwrite(handle.fileno(), last.tobytes(), start)


def timed(command: list[str], repeats: int) -> tuple[float, str]:
    """Best wall time of ``repeats`` runs (after one to warm the page cache), and the last output."""
    subprocess.run(command, capture_output=True, check=False)
    best, output = float("inf"), ""
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        best = min(best, time.perf_counter() - start)
        output = result.stdout
    return best, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--folder", type=Path, default=None, help="where to write the files (default: a temp dir)"
    )
    args = parser.parse_args()
    tensors = max(1, round(args.gigabytes * 1024**3 / (TENSOR_ELEMENTS * 4)))
    folder = Path(tempfile.mkdtemp(dir=args.folder))
    try:
        a, b, c = folder / "a.safetensors", folder / "b.safetensors", folder / "c.safetensors"
        write_safetensors(a, tensors)
        shutil.copyfile(a, b)
        nudged_copy(a, c)
        report(a, b, c, args.repeats)
    finally:
        shutil.rmtree(folder)


def report(a: Path, b: Path, c: Path, repeats: int) -> None:
    size = a.stat().st_size
    cmp_seconds, _ = timed(["cmp", str(a), str(b)], repeats)
    rows = [("cmp A B (identical)", cmp_seconds, None, "")]
    for label, other in (
        ("paramscope.diff(A, B) (identical)", b),
        ("paramscope.diff(A, C) (last tensor moved)", c),
    ):
        seconds, output = timed([sys.executable, "-c", DIFF, str(a), str(other)], repeats)
        answer = json.loads(output)
        rows.append((label, seconds, answer["peak"], answer["summary"]))
    print(f"two files of {size / 1e9:.2f} GB ({size:,} bytes), in the page cache; best of {repeats}")
    print(f"{'run':44} {'seconds':>8} {'GB/s':>6} {'vs cmp':>7} {'peak RSS':>9}")
    for label, seconds, peak, _ in rows:
        memory = f"{peak / 2**20:.0f} MB" if peak is not None else "—"
        print(
            f"{label:44} {seconds:8.2f} {2 * size / seconds / 1e9:6.2f} {seconds / cmp_seconds:6.2f}× {memory:>9}"
        )
    for label, _, _, summary in rows[1:]:
        print(f"{label}: {summary}")


if __name__ == "__main__":
    main()
