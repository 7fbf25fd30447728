"""A GGUF file with a 262,144-token vocabulary: paramscope against ``gguf.GGUFReader``.

The vocabulary is what real GGUF files carry besides tensors (Gemma 3's 262,144 tokens, their
scores and token types, plus BPE merges as Llama 3 and Qwen store them). ``GGUFReader`` makes
one numpy view per array element; paramscope skips fixed-size arrays by length and walks only
the string lengths. Goal: ``paramscope summary FILE --format json`` in a cold process under
0.3 s. Both sides are timed as fresh processes; paramscope's is the best of three, the
reader's the best of ``--reader-runs`` (one by default: it takes tens of seconds).

Run: ``.venv/bin/python benchmarks/gguf_vocab.py``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VOCABULARY = 262_144
GOAL_SECONDS = 0.3


def write_model(path: Path, vocabulary: int) -> int:
    """The file, written by gguf's own writer; returns its parameter count."""
    import gguf

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_array("tokenizer.ggml.tokens", [f"<token {i}>" for i in range(vocabulary)])
    writer.add_array("tokenizer.ggml.scores", [float(-i) for i in range(vocabulary)])
    writer.add_array("tokenizer.ggml.token_type", [1] * vocabulary)
    writer.add_array("tokenizer.ggml.merges", [f"a{i} b{i}" for i in range(vocabulary)])
    params = 0
    for name, shape in [("token_embd.weight", (256, 64)), ("blk.0.attn_q.weight", (64, 64))]:
        writer.add_tensor(name, np.ones(shape, np.float16))
        params += shape[0] * shape[1]
    q8 = gguf.quants.quantize(np.ones((64, 256), np.float32), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.ffn_up.weight", q8, raw_shape=q8.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return params + 64 * 256


def cold(command: list[str], runs: int) -> tuple[float, str]:
    """Best wall time of ``runs`` fresh processes, and the last one's output."""
    best, output = float("inf"), ""
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        output = result.stdout
    return best, output


def summary(path: Path) -> list[str]:
    return [sys.executable, "-m", "paramscope.cli", "summary", str(path), "--format", "json"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader-runs", type=int, default=1, help="cold runs of gguf.GGUFReader (slow)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path, floor_path = Path(folder) / "vocab.gguf", Path(folder) / "tiny-vocab.gguf"
        params = write_model(path, VOCABULARY)
        write_model(floor_path, 1)
        ours, output = cold(summary(path), 3)
        assert json.loads(output)["totals"]["all"]["params"] == params, "paramscope's total is wrong"
        floor, _ = cold(summary(floor_path), 3)
        reader_code = (
            "import sys, gguf; r = gguf.GGUFReader(sys.argv[1]); "
            "print(sum(int(t.n_elements) for t in r.tensors))"
        )
        theirs, count = cold([sys.executable, "-c", reader_code, str(path)], args.reader_runs)
        assert int(count) == params, "GGUFReader's total differs"
        size = path.stat().st_size / 2**20
    print(f"GGUF, {VOCABULARY:,}-token vocabulary (tokens, scores, token types, merges), {size:.1f} MB")
    print(f"{'tool':<44}{'seconds':>10}")
    print(f"{'paramscope summary --format json (best of 3)':<44}{ours:>10.3f}")
    print(f"{'  same, a 1-token vocabulary (start-up floor)':<44}{floor:>10.3f}")
    print(f"{f'gguf.GGUFReader + tensors (best of {args.reader_runs})':<44}{theirs:>10.3f}")
    verdict = "met" if ours < GOAL_SECONDS else "NOT met"
    print(f"ratio {theirs / ours:.0f}×; goal paramscope < {GOAL_SECONDS} s: {verdict}")


if __name__ == "__main__":
    main()
