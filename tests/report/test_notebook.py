"""A real notebook, executed by a Jupyter kernel (nbclient + ipykernel): ``paramscope.show``
and a Report left as a cell's value both display the summary's HTML, which is valid HTML5."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from tests.report.pages import elements, parse

SETUP = """\
import paramscope
from torch import nn

model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
model[0].requires_grad_(False)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
paramscope.show(model)"""


def _html_outputs(cell) -> list[str]:
    return [output["data"]["text/html"] for output in cell.outputs if "text/html" in output.get("data", {})]


def test_a_notebook_shows_the_summary_as_html(tmp_path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell("paramscope.inspect(model)"),
        nbformat.v4.new_code_cell("trainable"),
    ]
    NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    shown, value, trainable = notebook.cells
    assert [output["output_type"] for output in shown.outputs] == ["display_data"]
    assert [output["output_type"] for output in value.outputs] == ["execute_result"]
    torch_trainable = int(trainable.outputs[0]["data"]["text/plain"])
    for markup in (*_html_outputs(shown), *_html_outputs(value)):
        fragment = parse(markup, fragment=True)
        assert elements(fragment, "div", "paramscope") and not elements(fragment, "script")
        (row,) = elements(fragment, "tr", "role-trainable")
        cells = ["".join(cell.itertext()) for cell in elements(row, "td")]  # role, layers, tensors, params
        assert cells[3] == f"{torch_trainable:,}"
