"""A small ResNet-shaped torch model for the summary's default view (README, "summary: what
trains, at a glance"): a stem, a stage of three alike blocks, a head. Fine-tuned the usual
way: everything frozen but the last block and the head.
"""

from __future__ import annotations

from torch import nn


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with BatchNorm, as torchvision's ResNet names them."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)


class SmallResNet(nn.Module):
    def __init__(self, width: int, blocks: int, classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(*(BasicBlock(width) for _ in range(blocks)))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, classes)


def fine_tuned_resnet(width: int = 8, blocks: int = 3, classes: int = 10) -> SmallResNet:
    """Everything frozen but the last block and the head."""
    model = SmallResNet(width, blocks, classes)
    model.requires_grad_(False)
    model.layer1[-1].requires_grad_(True)
    model.fc.requires_grad_(True)
    return model
