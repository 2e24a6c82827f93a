"""ResNet-34 encoder stages in torchvision's state_dict layout, and the ImageNet checkpoint mapping.

The MAResU-Net encoder reuses ResNet-34's ``bn1`` and ``layer1..4`` under the names ``firstbn``
and ``encoder1..4``. Keys inside a stage follow torchvision's ``BasicBlock``: ``K.conv1``,
``K.bn1``, ``K.conv2``, ``K.bn2`` and, for a block that changes width or stride,
``K.downsample.0`` (1x1 conv, no bias) and ``K.downsample.1`` (BatchNorm); the blocks are
:mod:`blendfix.nets.resnet`'s, shared with BiSeNet's ResNet-18.

:func:`imagenet_encoder_state` turns torchvision's ImageNet ResNet-34 checkpoint
(``resnet34-b627a593.pth``) into MAResU-Net encoder entries, used only to initialise training.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..registry import CheckpointEntry, register_checkpoint
from .resnet import RESNET34_BLOCKS, STAGE_WIDTHS

#: Blocks per stage of ResNet-34 and its stage widths (the blocks themselves live in nets/resnet.py).
RESNET34_WIDTHS = STAGE_WIDTHS

IMAGENET_CHECKPOINT = register_checkpoint(CheckpointEntry(
    name="resnet34-imagenet",
    filename="resnet34-b627a593.pth",
    url="https://download.pytorch.org/models/resnet34-b627a593.pth",
    layout="raw state_dict (torchvision ResNet): conv1.weight, bn1.*, layer1..4.K.{conv1,bn1,conv2,bn2,"
           "downsample.0,downsample.1}.*, fc.{weight,bias}",
    licence="BSD-3-Clause (torchvision); weights trained on ImageNet-1k, whose terms of use apply",
    model="maresunet",
    notes="torchvision ResNet34_Weights.IMAGENET1K_V1; the file name carries the first 8 hex digits of its "
          "sha256 (b627a593). Older torchvision releases ship resnet34-333f7ec4.pth with the same layout. "
          "Used only to initialise the MAResU-Net encoder for training.",
))


def init_resnet_weights(module: nn.Module) -> None:
    """torchvision's ResNet initialisation: He-normal convs (fan_out), BN weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def imagenet_encoder_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision ResNet-34 entries -> MAResU-Net encoder entries.

    ``bn1.*`` -> ``firstbn.*`` and ``layerK.*`` -> ``encoderK.*``; ``conv1.weight`` (3 input
    channels, the network takes 6) and ``fc.*`` are not used. Raises ``ValueError`` when the
    file does not look like a ResNet-34 state_dict.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("bn1."):
            out["firstbn." + key[4:]] = value
        elif key.startswith("layer") and key[5:6] in "1234" and key[6:7] == ".":
            out[f"encoder{key[5]}." + key[7:]] = value
    blocks_seen = {k.split(".")[0] + "." + k.split(".")[1] for k in out if k.startswith("encoder")}
    if len(blocks_seen) != sum(RESNET34_BLOCKS):
        raise ValueError(f"not a ResNet-34 state_dict: found {len(blocks_seen)} residual blocks, "
                         f"expected {sum(RESNET34_BLOCKS)}")
    return out


def load_imagenet_encoder(model: nn.Module, path: str | os.PathLike | None = None) -> list[str]:
    """Copy ImageNet ResNet-34 weights into ``model``'s encoder; returns the keys set.

    ``path`` defaults to the registered checkpoint (offline error naming the file when absent).
    """
    from ..checkpoints import load_checkpoint, load_file

    state = load_file(path) if path is not None else load_checkpoint(IMAGENET_CHECKPOINT.name)
    mapped = imagenet_encoder_state(state)
    own = model.state_dict()
    for k, v in mapped.items():
        if k not in own or own[k].shape != v.shape:
            raise ValueError(f"ImageNet ResNet-34 entry {k} {tuple(v.shape)} does not fit the model "
                             f"({tuple(own[k].shape) if k in own else 'no such entry'}); "
                             f"ImageNet initialisation needs the default MAResU-Net widths")
    model.load_state_dict(mapped, strict=False)
    return sorted(mapped)
