"""A fine-tuning mistake for the README's plain-PyTorch guard example.

The optimizer (AdamW with weight decay) is built over every parameter, a first step runs, and
only then is the backbone frozen: its parameters keep zero (not None) gradients under
``zero_grad(set_to_none=False)``, so AdamW's weight decay and moments keep moving them.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def finetune_after_warm_up():
    """(model, optimizer, batches): the backbone frozen after the optimizer took a step."""
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(backbone=nn.Sequential(nn.Linear(16, 32), nn.ReLU()), head=nn.Linear(32, 4))
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    batches = [(torch.randn(8, 16), torch.randint(0, 4, (8,))) for _ in range(3)]
    x, y = batches[0]
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()  # warm-up with everything trainable
    model.backbone.requires_grad_(False)  # then freeze, keeping the optimizer
    return model, optimizer, batches
