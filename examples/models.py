"""Small models for trying paramscope, and the ones the README's examples run.

Each function is a *factory*: paramscope calls it with the ``--arg key=value`` pairs you give,
e.g. ``paramscope summary examples/models.py:keras_classifier --arg width=64``. Run the
commands from the repository root. The classifiers are transfer learning in miniature: a
pre-trained backbone (here small and random) frozen under a new trainable head.
"""

from __future__ import annotations

import torch
from torch import nn

IMAGE_SIZE = 32
CLASSES = 10


def keras_classifier(width: int = 16, classes: int = CLASSES, freeze_base: bool = True):
    """A Keras 3 image classifier: a convolutional ``base`` (frozen by default) and a Dense head."""
    import keras

    base = keras.Sequential(
        [
            keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3)),
            keras.layers.Conv2D(width, 3, name="conv1"),
            keras.layers.BatchNormalization(name="bn1"),
            keras.layers.ReLU(name="relu1"),
            keras.layers.Conv2D(width, 3, name="conv2"),
            keras.layers.BatchNormalization(name="bn2"),
            keras.layers.ReLU(name="relu2"),
        ],
        name="base",
    )
    base.trainable = not freeze_base
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    features = base(inputs, training=False)  # BatchNorm in inference mode, as fine-tuning needs
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    outputs = keras.layers.Dense(classes, name="head")(pooled)
    return keras.Model(inputs, outputs, name="classifier")


def keras_sentiment(vocabulary: int = 5000, units: int = 32):
    """A Keras 3 text classifier: Embedding, LSTM, and one sigmoid unit."""
    import keras

    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32", name="tokens"),
            keras.layers.Embedding(vocabulary, 64, name="embedding"),
            keras.layers.LSTM(units, name="lstm"),
            keras.layers.Dense(1, activation="sigmoid", name="score"),
        ],
        name="sentiment",
    )


class Classifier(nn.Module):
    """The same classifier in PyTorch: a convolutional ``backbone`` and a Linear ``head``."""

    def __init__(self, width: int = 16, classes: int = CLASSES) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, width, 3),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(width, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


def torch_classifier(width: int = 16, classes: int = CLASSES, freeze_backbone: bool = True) -> Classifier:
    """A :class:`Classifier` whose backbone is frozen by default (``requires_grad_(False)``)."""
    torch.manual_seed(0)
    model = Classifier(width, classes)
    model.backbone.requires_grad_(not freeze_backbone)
    return model


def finetune(batchnorm_eval: bool = False):
    """A torch fine-tuning set-up as a factory dict: the model, its optimizer, a batch and a loss.

    The classic mistake by default: the backbone's parameters are frozen, but the model is in
    ``train()`` mode, so its BatchNorm statistics still drift (``paramscope audit`` proves it and
    exits 1). ``--arg batchnorm_eval=True`` puts the frozen backbone in ``eval()``: the audit passes.
    """
    model = torch_classifier()
    model.train()
    if batchnorm_eval:
        model.backbone.eval()
    trainable = [p for p in model.parameters() if p.requires_grad]
    images = torch.randn(8, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(8) % CLASSES

    def cross_entropy(logits: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, labels)

    return {
        "model": model,
        "optimizer": torch.optim.AdamW(trainable, lr=1e-3),
        "inputs": images,
        "loss": cross_entropy,
    }


def build_for_finetuning():
    """The right way round: (model, optimizer) with the frozen backbone in ``eval()``."""
    setup = finetune(batchnorm_eval=True)
    return setup["model"], setup["optimizer"]
