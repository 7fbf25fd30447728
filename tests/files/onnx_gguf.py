"""ONNX and GGUF files written by their own libraries (onnx.helper, gguf.GGUFWriter)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_onnx(path: Path, external_location: str | None = None) -> dict:
    """A model with dense and sparse initializers, an If subgraph with its own initializer and
    a Constant node; returns what the file holds, as onnx itself reports it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "encoder.weight")
    b = numpy_helper.from_array(np.zeros(4, np.float16), "encoder.bias")
    sub_init = numpy_helper.from_array(np.ones((2, 2), np.float32), "branch.scale")
    then_graph = helper.make_graph(
        [helper.make_node("Identity", ["branch.scale"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 2])],
        [sub_init],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Identity", ["branch.scale"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 2])],
        [sub_init],
    )
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "lookup.table"),
        numpy_helper.from_array(np.array([1, 5], np.int64), "lookup.idx"),
        [3, 4],
    )
    constant = helper.make_node(
        "Constant", [], ["c"], value=numpy_helper.from_array(np.ones(7, np.float32), "c")
    )
    nodes = [
        helper.make_node("Gemm", ["x", "encoder.weight"], ["y"], transB=1),
        constant,
        helper.make_node("If", ["cond"], ["z"], then_branch=then_graph, else_branch=else_graph),
    ]
    graph = helper.make_graph(
        nodes,
        "net",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [w, b],
        sparse_initializer=[sparse],
    )
    model = helper.make_model(graph)
    if external_location is not None:
        w.data_location = TensorProto.EXTERNAL
        del w.external_data[:]
        w.external_data.add(key="location", value=external_location)
        w.ClearField("raw_data")
        model.graph.initializer[0].CopyFrom(w)
    onnx.save(model, path)
    return {"params": 12 + 4 + 4 + 4 + 12, "tensors": 5, "constants": 1}


def write_gguf(path: Path) -> dict:
    import gguf

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tensor("token_embd.weight", np.ones((8, 64), np.float32))
    writer.add_tensor("blk.0.attn_q.weight", np.ones((64, 64), np.float16))
    q8 = gguf.quants.quantize(np.ones((64, 64), np.float32), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.ffn_up.weight", q8, raw_shape=q8.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    q8_bytes = 64 * 64 // 32 * 34
    return {"params": 8 * 64 + 64 * 64 + 64 * 64, "bytes": 8 * 64 * 4 + 64 * 64 * 2 + q8_bytes}
