"""IR-SE residual units (the ArcFace / InsightFace backbone that pSp's encoder is built on).

Key names follow the published layout (``input_layer.*``, ``body.N.res_layer.*``,
``body.N.shortcut_layer.*``) so that the pSp encoder and the ArcFace ``model_ir_se50.pth`` files
load without renaming.

A unit computes ``res_layer(x) + shortcut(x)`` with no activation after the sum ("improved
residual" design): ``res_layer`` = BN, conv3x3, PReLU, conv3x3 (stride s), BN, squeeze-excitation.
The shortcut is a 1x1 conv + BN when the width changes, else plain subsampling ``x[..., ::s, ::s]``.
"""

from __future__ import annotations

import torch
from torch import nn

#: Units per stage and stage widths of IR-SE-50 (24 units in all).
IR_SE_50_UNITS: tuple[int, ...] = (3, 4, 14, 3)
IR_SE_50_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)


class SqueezeExcite(nn.Module):
    """Channel gating without biases: ``x * sigmoid(fc2(relu(fc1(mean_hw(x)))))``.

    ``(B, C, H, W) -> (B, C, H, W)``; keys ``fc1.weight (C/r, C, 1, 1)``, ``fc2.weight (C, C/r, 1, 1)``.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s


class BottleneckIRSE(nn.Module):
    """One IR-SE unit ``(B, in_ch, H, W) -> (B, depth, H/stride, W/stride)``."""

    def __init__(self, in_ch: int, depth: int, stride: int) -> None:
        super().__init__()
        if in_ch == depth:
            # kernel-1 max pooling with a stride is exactly x[..., ::s, ::s]; it has no parameters.
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_ch, depth, 1, stride, bias=False),
                nn.BatchNorm2d(depth),
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SqueezeExcite(depth, 16),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def input_layer(in_channels: int = 3, width: int = 64) -> nn.Sequential:
    """The stem ``conv3x3 (no bias), BN, PReLU`` at stride 1: ``(B, in, H, W) -> (B, width, H, W)``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.PReLU(width),
    )


def ir_se_body(widths: tuple[int, ...] = IR_SE_50_WIDTHS,
               units: tuple[int, ...] = IR_SE_50_UNITS, stem_width: int | None = None) -> nn.Sequential:
    """The stages of IR-SE units, flattened into one ``nn.Sequential`` (keys ``body.0`` ... ``body.N``).

    Stage ``k`` has ``units[k]`` units of width ``widths[k]``; its first unit has stride 2 and takes
    the previous stage's width (the stem's, ``stem_width`` = ``widths[0]`` by default, for stage 0).
    IR-SE-50 is ``widths=(64, 128, 256, 512), units=(3, 4, 14, 3)``: 24 units, 1/16 resolution.
    """
    if len(widths) != len(units) or not widths:
        raise ValueError(f"widths {widths} and units {units} must be non-empty and of equal length")
    if any(u < 1 for u in units) or any(w < 1 for w in widths):
        raise ValueError(f"every stage needs at least one unit and a positive width: {widths}, {units}")
    layers: list[nn.Module] = []
    prev = widths[0] if stem_width is None else stem_width
    for width, n in zip(widths, units, strict=True):
        layers.append(BottleneckIRSE(prev, width, 2))
        layers.extend(BottleneckIRSE(width, width, 1) for _ in range(n - 1))
        prev = width
    return nn.Sequential(*layers)


def stage_ends(units: tuple[int, ...]) -> list[int]:
    """0-based index of the last unit of each stage, e.g. ``(3, 4, 14, 3) -> [2, 6, 20, 23]``."""
    ends, total = [], 0
    for n in units:
        total += n
        ends.append(total - 1)
    return ends
