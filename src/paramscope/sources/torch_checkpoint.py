"""Which of a checkpoint's tensors are the model, and the plain facts it carries beside them.

A training checkpoint is a dict: the model's state dict (or the pickled module) under a key,
optimizer state, counters, hyper-parameters. Optimizer moments are told apart wherever they
sit (torch_pickled.py marks them). Lightning's ``Trainer.save_checkpoint`` writes a known
layout (``CheckpointConnector.dump_checkpoint``): ``state_dict`` is the LightningModule's
state dict, ``optimizer_states`` one optimizer state dict each, and ``loops``, ``callbacks``,
``lr_schedulers``, the precision plugin's and the datamodule's states are training
bookkeeping (a ModelCheckpoint callback keeps its best score as a tensor): none of their
tensors is the model's. Its ``epoch``, ``global_step``, ``pytorch-lightning_version`` and
``hyper_parameters`` (often OmegaConf objects) become the report's metadata, as plain data;
so do the settings other scripts save (``args``, ``config``) and any checkpoint's top-level
scalars, and a tensor among the settings is not the model's either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paramscope.sources.budget import ReadBudget
from paramscope.sources.pickle_plain import plain
from paramscope.sources.torch_pickled import Held, Sighting

LIGHTNING_VERSION = "pytorch-lightning_version"
LIGHTNING_MODEL = "state_dict"
# Entries of a checkpoint dict that describe the run rather than hold tensors: converted to
# plain data whatever they hold. Other top-level entries join the metadata when they are scalars.
DESCRIBING_KEYS = frozenset(
    {
        "hyper_parameters",
        "hparams_name",
        "hparams_type",
        "datamodule_hyper_parameters",
        "datamodule_hparams_name",
        "hparams",
        "args",
        "config",
        "cfg",
    }
)
SCALARS = (bool, int, float, str)
MAX_METADATA_KEYS = 100
MAX_KEY_CHARS = 200
ASIDE = (
    "{count} tensor(s) under the checkpoint's {keys} are training state or settings, not the "
    "model's: not counted."
)


@dataclass
class Layout:
    """A checkpoint's sightings sorted into the model's, the optimizer's and the rest."""

    model: list[Sighting] = field(default_factory=list)
    optimizer: list[Held] = field(default_factory=list)
    aside: dict[str, int] = field(default_factory=dict)  # top-level key -> tensors not counted

    def warnings(self) -> list[str]:
        if not self.aside:
            return []
        keys = ", ".join(sorted(self.aside)[:5])
        return [ASIDE.format(count=sum(self.aside.values()), keys=keys)]


def is_lightning(obj: object) -> bool:
    return isinstance(obj, dict) and LIGHTNING_VERSION in obj and LIGHTNING_MODEL in obj


def _aside(obj: object, path: tuple[str, ...]) -> bool:
    """Whether a path leads into a checkpoint's describing entries or, in a Lightning
    checkpoint, anywhere but its ``state_dict``."""
    if not (isinstance(obj, dict) and path):
        return False
    return path[0] in DESCRIBING_KEYS or (is_lightning(obj) and path[0] != LIGHTNING_MODEL)


def layout(obj: object, found: list[Sighting]) -> Layout:
    """The model's tensors and modules, the optimizer's tensors, and the rest."""
    result = Layout()
    for sighting in found:
        if isinstance(sighting, Held) and sighting.in_optimizer:
            result.optimizer.append(sighting)
        elif _aside(obj, sighting.path):
            if isinstance(sighting, Held):
                result.aside[sighting.path[0]] = result.aside.get(sighting.path[0], 0) + 1
        else:
            result.model.append(sighting)
    return result


def checkpoint_metadata(obj: object, budget: ReadBudget) -> dict[str, object]:
    """The describing entries and top-level scalars of a checkpoint dict, as plain data."""
    if not isinstance(obj, dict):
        return {}
    metadata: dict[str, object] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or (key not in DESCRIBING_KEYS and not isinstance(value, SCALARS)):
            continue
        if len(metadata) >= MAX_METADATA_KEYS:
            break
        metadata[key[:MAX_KEY_CHARS]] = plain(value, budget)
    return metadata


__all__ = ["Layout", "checkpoint_metadata", "is_lightning", "layout"]
