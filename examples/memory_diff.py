"""A small classifier for ``paramscope memory``, and checkpoints of it for ``paramscope diff``.

``classifier()`` is transfer learning in miniature: a convolutional ``backbone`` (frozen by
default) under a Linear ``head``. ``fine_tune("before.pt", "after.pt")`` saves it, trains only
the head a few real steps with the frozen backbone in ``eval()``, and saves it again: the diff
says the backbone is bit-identical. ``batchnorm_eval=False`` leaves the backbone in ``train()``
mode, the classic mistake: its BatchNorm statistics drift although none of its parameters
trains, and ``paramscope diff … --expect-frozen backbone`` exits 1.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

IMAGE_SIZE = 32
CLASSES = 10


def classifier(width: int = 16, classes: int = CLASSES, freeze_backbone: bool = True) -> nn.Sequential:
    torch.manual_seed(0)
    backbone = nn.Sequential(
        nn.Conv2d(3, width, 3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    backbone.requires_grad_(not freeze_backbone)
    return nn.Sequential(OrderedDict(backbone=backbone, head=nn.Linear(width, classes)))


def fine_tune(before: str, after: str, steps: int = 3, batchnorm_eval: bool = True) -> None:
    """Save the classifier's state dict to ``before``, train its head ``steps`` AdamW steps on
    random images, save it to ``after``."""
    model = classifier()
    torch.save(model.state_dict(), before)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        model.train()
        if batchnorm_eval:
            model.backbone.eval()
        images = torch.randn(8, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
        loss = nn.functional.cross_entropy(model(images), torch.arange(8) % CLASSES)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save(model.state_dict(), after)
