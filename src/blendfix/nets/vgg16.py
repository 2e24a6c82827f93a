"""VGG16 ``features`` stack in torchvision's layout, returning intermediate feature maps.

Keys ``features.N.weight`` / ``features.N.bias`` for the 13 convolutions (N = 0, 2, 5, 7, 10, 12,
14, 17, 19, 21, 24, 26, 28), as in torchvision's ImageNet checkpoint ``vgg16-397923af.pth``
(whose ``classifier.*`` entries are ignored). Indices follow torchvision: 7 = conv2_2,
12 = conv3_2, 21 = conv4_3 (pre-ReLU outputs), 30 = pool5.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..registry import CheckpointEntry, ModelEntry, register_checkpoint, register_model

#: Output channels of each conv block; "M" is a 2x2 max-pool.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

#: torchvision ``features`` index -> conventional layer name.
LAYER_NAMES: dict[int, str] = {
    0: "conv1_1", 2: "conv1_2", 4: "pool1", 5: "conv2_1", 7: "conv2_2", 9: "pool2", 10: "conv3_1",
    12: "conv3_2", 14: "conv3_3", 16: "pool3", 17: "conv4_1", 19: "conv4_2", 21: "conv4_3", 23: "pool4",
    24: "conv5_1", 26: "conv5_2", 28: "conv5_3", 30: "pool5",
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

register_model(ModelEntry(
    name="vgg16",
    builder="blendfix.nets.vgg16:VGG16Features",
    description="VGG16 features (ImageNet) for the perceptual loss: conv2_2, conv3_2, conv4_3, pool5",
    checkpoints=("vgg16-imagenet",),
))

VGG16_CHECKPOINT = register_checkpoint(CheckpointEntry(
    name="vgg16-imagenet",
    filename="vgg16-397923af.pth",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    layout="raw state_dict (torchvision VGG): features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.{weight,bias}, "
           "classifier.{0,3,6}.{weight,bias} (unused)",
    licence="BSD-3-Clause (torchvision); weights trained on ImageNet-1k, whose terms of use apply",
    model="vgg16",
    notes="torchvision VGG16_Weights.IMAGENET1K_V1 (528 MB); the file name carries the first 8 hex digits of "
          "its sha256 (397923af), checked when the file is loaded.",
))


class VGG16Features(nn.Module):
    """torchvision VGG16 ``features`` (ReLUs not in place so pre-ReLU outputs can be taken).

    ``forward(x, layers)``: ``x`` ``(B, 3, H, W)`` already ImageNet-normalised -> dict index ->
    feature map, for the requested ``features`` indices (computed up to the deepest one).
    """

    def __init__(self) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        in_ch = 3
        for v in _CFG:
            if v == "M":
                mods.append(nn.MaxPool2d(2, 2))
            else:
                mods += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.ReLU()]
                in_ch = int(v)
        self.features = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor, layers: tuple[int, ...] = (7, 12, 21, 30)) -> dict[int, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG16Features expects (B, 3, H, W), got {tuple(x.shape)}")
        bad = [i for i in layers if not 0 <= i < len(self.features)]
        if bad:
            raise ValueError(f"VGG16 feature indices must be in 0..{len(self.features) - 1}, got {bad}")
        wanted = set(layers)
        out: dict[int, torch.Tensor] = {}
        for i, mod in enumerate(self.features):
            x = mod(x)
            if i in wanted:
                out[i] = x
                if len(out) == len(wanted):
                    break
        return out


def normalize_imagenet(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def load_vgg16(path: str | os.PathLike | None = None) -> VGG16Features:
    """Frozen, eval-mode VGG16 features from torchvision's checkpoint (registry entry or ``path``).

    Raises :class:`~blendfix.errors.MissingWeightsError` (what to place where) when absent and
    :class:`~blendfix.errors.ChecksumError` when a file named ``vgg16-397923af.pth`` has another hash.
    """
    from ..checkpoints import load_checkpoint, load_file, verify_name_hash
    from ..errors import MissingWeightsError
    from ..registry import checkpoint_path

    if path is not None and not Path(path).is_file():
        raise MissingWeightsError(f"{path}: VGG16 weights file not found (torchvision's {VGG16_CHECKPOINT.filename} "
                                  f"from {VGG16_CHECKPOINT.url})")
    file = checkpoint_path(path if path is not None else VGG16_CHECKPOINT.name)
    if file.name == VGG16_CHECKPOINT.filename:
        verify_name_hash(file, file.name, VGG16_CHECKPOINT.url)
    state = load_file(file) if path is not None else load_checkpoint(VGG16_CHECKPOINT.name)
    net = VGG16Features()
    feats = {k: v for k, v in state.items() if k.startswith("features.")}
    net.load_state_dict(feats, strict=True)
    return net.eval().requires_grad_(False)
