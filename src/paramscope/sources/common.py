"""Small pieces the live sources share."""

from __future__ import annotations


def unbuilt_warning(names: list[str]) -> list[str]:
    """The warning for layers that have not created their weights yet (they count zero)."""
    if not names:
        return []
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return [
        f"{len(names)} layer(s) not built yet ({shown}): they have no weights, so they count 0. "
        "Build the model (model.build(input_shape), or call it on data) before inspecting."
    ]
