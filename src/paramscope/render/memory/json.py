"""`memory` as JSON: every part in exact bytes per role, the settings, the rules applied."""

from __future__ import annotations

from paramscope.ops.memory import MemoryEstimate
from paramscope.render.envelope import envelope, source_dict


def _settings(estimate: MemoryEstimate) -> dict:
    settings = estimate.settings
    shape = list(settings.input_shape) if settings.input_shape is not None else None
    return {
        "optimizer": settings.optimizer,
        "amsgrad": settings.amsgrad,
        "precision": settings.precision,
        "devices": settings.devices,
        "sharding": settings.sharding,
        "batch": settings.batch,
        "input_shape": shape,
    }


def document(estimate: MemoryEstimate) -> dict:
    return envelope(
        "memory", source_dict(estimate.report.source), settings=_settings(estimate), **estimate.as_dict()
    )
