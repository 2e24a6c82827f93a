"""ResNet with BasicBlocks (ResNet-18 / ResNet-34) in torchvision's state_dict layout, without ``fc``.

Keys: ``conv1`` (7x7, stride 2), ``bn1``, then ``layer1..layer4``; inside a stage, block ``K`` has
``K.conv1``, ``K.bn1``, ``K.conv2``, ``K.bn2`` and, when it changes width or stride,
``K.downsample.0`` (1x1 conv) / ``K.downsample.1`` (BN). No conv has a bias; BN eps is 1e-5.
The stage stride sits on the first 3x3 conv of its first block.

:class:`ResNetBackbone` returns the outputs of ``layer2``, ``layer3`` and ``layer4`` (strides 8, 16
and 32), which is what BiSeNet's context path consumes. Other depths share the same blocks via
``blocks=`` (ResNet-34: ``(3, 4, 6, 3)``).
"""

from __future__ import annotations

import torch
from torch import nn

RESNET18_BLOCKS: tuple[int, int, int, int] = (2, 2, 2, 2)
RESNET34_BLOCKS: tuple[int, int, int, int] = (3, 4, 6, 3)
STAGE_WIDTHS: tuple[int, int, int, int] = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """relu(shortcut(x) + bn2(conv2(relu(bn1(conv1(x)))))).

    ``(B, in_ch, H, W)`` -> ``(B, out_ch, ceil(H / stride), ceil(W / stride))``.
    """

    CONV_BN = (("conv1", "bn1"), ("conv2", "bn2"))  # foldable pairs (blendfix.nets.fold)

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(shortcut + self.bn2(self.conv2(y)))


def make_stage(in_ch: int, out_ch: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` BasicBlocks; the first one changes the width and applies ``stride``."""
    if blocks < 1:
        raise ValueError(f"a ResNet stage needs at least one block, got {blocks}")
    layers = [BasicBlock(in_ch, out_ch, stride)] + [BasicBlock(out_ch, out_ch) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNetBackbone(nn.Module):
    """Stem + four BasicBlock stages; ``forward`` returns ``(feat8, feat16, feat32)``.

    Input ``(B, 3, H, W)`` (already normalised as the checkpoint expects, e.g. ImageNet mean/std).
    Outputs: ``(B, 128, H/8, W/8)``, ``(B, 256, H/16, W/16)``, ``(B, 512, H/32, W/32)`` (rounded up)
    for the default widths.
    """

    def __init__(self, blocks: tuple[int, int, int, int] = RESNET18_BLOCKS,
                 widths: tuple[int, int, int, int] = STAGE_WIDTHS) -> None:
        super().__init__()
        if len(blocks) != 4 or len(widths) != 4:
            raise ValueError(f"need four stages, got blocks={blocks} widths={widths}")
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = make_stage(widths[0], widths[0], blocks[0], 1)
        self.layer2 = make_stage(widths[0], widths[1], blocks[1], 2)
        self.layer3 = make_stage(widths[1], widths[2], blocks[2], 2)
        self.layer4 = make_stage(widths[2], widths[3], blocks[3], 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W), got {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        feat32 = self.layer4(feat16)
        return feat8, feat16, feat32


def resnet18_backbone() -> ResNetBackbone:
    """ResNet-18 without ``fc`` (the backbone of BiSeNet's context path)."""
    return ResNetBackbone(RESNET18_BLOCKS)
