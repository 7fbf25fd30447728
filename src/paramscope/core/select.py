"""Selectors over node paths: which layers a freeze rule means.

Forms: a glob over paths (``base``, ``base/block_16_*``); ``re:REGEX`` (searched in the path);
``type:CLASS`` (a glob over layer types: ``type:BatchNormalization``); ``until:PATH`` and
``from:PATH`` (the layers that own weights, in model order, up to or from PATH, inclusive);
``last:N`` (the last N layers that own weights); ``all`` (the whole model). A selector that
matches nothing is an error naming it and the nearest paths.

People write what they see: the model's own name (``mobilenetv2_1.00_224`` for the root, and
``mobilenetv2_1.00_224/block_16_*`` below it, while paths start under the root), torch's
dotted names (``layer1.0.conv1``), and a tensor's key as its framework prints it (a
``state_dict()`` key ``layer1.0.conv1.weight``, a Keras variable path ``dense/kernel``), which
selects the layer owning that tensor: flags are set on layers. All are accepted. ``all`` and
the root's name select, in Keras, every top-level layer rather than the root: a frozen root
hides every variable below it whatever their own flags, so a later ``--unfreeze`` of a
sublayer would do nothing.
"""

from __future__ import annotations

import difflib
import fnmatch
import re

from paramscope.core.report import Node, Report
from paramscope.errors import InputError


def _everything(report: Report) -> list[Node]:
    """The whole model: the root where flags are per tensor (torch); in Keras, whose layers carry
    flags, the top-level layers that hold weights, so that the root itself stays trainable."""
    if report.root.trainable is None:
        return [report.root]
    summaries = report.summaries
    top = [child for child in report.root.children if sum(summaries[id(child)].counts)]
    return top or [report.root]


def _under_root(report: Report, text: str) -> str:
    """``ROOT_NAME/rest`` as the path ``rest`` (paths start below the root)."""
    prefix = f"{report.root.name}/"
    nested_alike = any(node.path.startswith(prefix) for node in report.nodes())
    if report.root.name and text.startswith(prefix) and not nested_alike:
        return text[len(prefix) :]
    return text


def _weighted(report: Report) -> list[Node]:
    """Layers that own tensors, in model order (depth first)."""
    return [node for node in report.nodes() if node.tensors and node is not report.root]


def _subtree_weighted(report: Report, path: str) -> list[int]:
    weighted = _weighted(report)
    prefix = path + "/"
    return [i for i, node in enumerate(weighted) if node.path == path or node.path.startswith(prefix)]


def _node(report: Report, path: str, selector: str) -> None:
    if not any(node.path == path for node in report.nodes()):
        raise InputError(f"selector {selector!r}: no layer {path!r}{_suggest(report, path)}")


def _suggest(report: Report, text: str) -> str:
    paths = [node.path for node in report.nodes() if node.path]
    close = difflib.get_close_matches(text, paths, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _by_path(nodes: list[Node], text: str) -> list[Node]:
    """Nodes whose path matches the glob, or, for a dotted name, torch's module name."""
    chosen = [n for n in nodes if fnmatch.fnmatchcase(n.path, text)]
    if not chosen and "." in text and "/" not in text:  # torch's dotted names
        chosen = [n for n in nodes if fnmatch.fnmatchcase(n.path, text.replace(".", "/"))]
    return chosen


def _by_key(nodes: list[Node], text: str) -> list[Node]:
    """Nodes owning a tensor whose framework key matches the glob (see ``Tensor.key``)."""
    return [
        n for n in nodes if any(t.key is not None and fnmatch.fnmatchcase(t.key, text) for t in n.tensors)
    ]


def select(report: Report, selector: str) -> list[Node]:
    """The nodes a selector names, in model order."""
    text = selector.strip()
    nodes = [node for node in report.nodes() if node is not report.root]
    if text == "all" or (text == report.root.name and text):
        return _everything(report)
    text = _under_root(report, text)
    if text.startswith("re:"):
        try:
            pattern = re.compile(text[3:])
        except re.error as exc:
            raise InputError(f"selector {selector!r}: bad regular expression ({exc})") from None
        chosen = [n for n in nodes if pattern.search(n.path)]
    elif text.startswith("type:"):
        chosen = [n for n in nodes if fnmatch.fnmatchcase(n.type, text[5:])]
    elif text.startswith(("until:", "from:")):
        kind, _, path = text.partition(":")
        _node(report, path, selector)
        weighted, positions = _weighted(report), _subtree_weighted(report, path)
        if not positions:
            raise InputError(f"selector {selector!r}: layer {path!r} owns no weights")
        chosen = weighted[: positions[-1] + 1] if kind == "until" else weighted[positions[0] :]
    elif text.startswith("last:"):
        count = text[5:]
        if not count.isdigit() or int(count) < 1:
            raise InputError(f"selector {selector!r}: last:N needs a positive whole number")
        chosen = _weighted(report)[-int(count) :]
    else:  # a key is matched as written: a Keras variable path may start with the root's name
        chosen = _by_path(nodes, text) or _by_key(nodes, selector.strip())
    if not chosen:
        raise InputError(f"selector {selector!r} matches no layer{_suggest(report, text.split(':')[-1])}")
    return chosen
