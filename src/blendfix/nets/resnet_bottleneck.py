"""ResNet bottleneck blocks in torchvision's layout (ResNet-50/101/152, "v1.5": stride on the 3x3 conv).

Keys per block: ``conv1, bn1, conv2, bn2, conv3, bn3`` and, where the shape changes,
``downsample.0`` (1x1 conv) / ``downsample.1`` (BN). No conv biases, BN eps 1e-5. Used by Diff-CAM
(ResNet-101) without torchvision, which blendfix does not depend on.
"""

from __future__ import annotations

import torch
from torch import nn

EXPANSION = 4
RESNET101_LAYERS: tuple[int, int, int, int] = (3, 4, 23, 3)


class Bottleneck(nn.Module):
    """``(B, in_ch, H, W) -> (B, 4*width, H/stride, W/stride)``: 1x1, 3x3 (stride), 1x1, + shortcut, ReLU."""

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * EXPANSION
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def make_layer(in_ch: int, width: int, blocks: int, stride: int) -> list[Bottleneck]:
    """One ResNet stage as a list of ``blocks`` bottlenecks; the first one carries the stride."""
    if blocks < 1:
        raise ValueError(f"a ResNet stage needs at least one block, got {blocks}")
    layer = [Bottleneck(in_ch, width, stride)]
    layer += [Bottleneck(width * EXPANSION, width, 1) for _ in range(blocks - 1)]
    return layer


def stem(in_channels: int = 3, width: int = 64) -> list[nn.Module]:
    """conv 7x7 stride 2 (no bias), BN, ReLU, max-pool 3x3 stride 2: 1/4 resolution."""
    return [nn.Conv2d(in_channels, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1)]
