"""torchvision AlexNet (and VGG16) ``features`` trunks, cut into the five LPIPS slices.

The module reproduces ``torchvision.models.alexnet().features`` / ``vgg16().features`` layer by
layer and groups them the way LPIPS does, so the state_dict keys are ``slice{s}.{i}.weight|bias``
with ``i`` the index inside torchvision's ``features`` sequence. A torchvision ImageNet checkpoint
(``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``: keys ``features.{i}.*`` plus unused
``classifier.*``) maps onto it with :func:`from_torchvision` (same ``i``, slice fixed by index).

Forward: ``(B, 3, H, W)`` float, already normalised by the caller (LPIPS's scaling layer) ->
list of five feature maps, each taken right after a ReLU:

* AlexNet: relu1 (64 ch, stride 4), relu2 (192), relu3 (384), relu4 (256), relu5 (256).
* VGG16: relu1_2 (64), relu2_2 (128), relu3_3 (256), relu4_3 (512), relu5_3 (512).
"""

from __future__ import annotations

import re

import torch
from torch import nn

# torchvision `features` layer specs: ("conv", in, out, kernel, stride, padding) | ("relu",) | ("pool", k, s)
_ALEX = [
    ("conv", 3, 64, 11, 4, 2), ("relu",), ("pool", 3, 2),
    ("conv", 64, 192, 5, 1, 2), ("relu",), ("pool", 3, 2),
    ("conv", 192, 384, 3, 1, 1), ("relu",),
    ("conv", 384, 256, 3, 1, 1), ("relu",),
    ("conv", 256, 256, 3, 1, 1), ("relu",),
]
# LPIPS slice boundaries over those indices: slice s holds [bounds[s-1], bounds[s]).
_ALEX_BOUNDS = (0, 2, 5, 8, 10, 12)


def _vgg16_layers() -> list[tuple]:
    layers: list[tuple] = []
    c_in = 3
    for stage, (c_out, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
        if stage:
            layers.append(("pool", 2, 2))
        for _ in range(n):
            layers += [("conv", c_in, c_out, 3, 1, 1), ("relu",)]
            c_in = c_out
    return layers


_VGG = _vgg16_layers()
_VGG_BOUNDS = (0, 4, 9, 16, 23, 30)

TRUNKS = {"alex": (_ALEX, _ALEX_BOUNDS), "vgg": (_VGG, _VGG_BOUNDS)}
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}


def _layer(spec: tuple) -> nn.Module:
    if spec[0] == "conv":
        _, c_in, c_out, k, s, p = spec
        return nn.Conv2d(c_in, c_out, k, stride=s, padding=p)
    if spec[0] == "relu":
        return nn.ReLU(inplace=False)
    return nn.MaxPool2d(kernel_size=spec[1], stride=spec[2])


class SlicedFeatures(nn.Module):
    """A torchvision ``features`` trunk as five slices ``slice1..slice5`` (keys keep torchvision indices).

    ``net`` is ``'alex'`` or ``'vgg'``. ``forward(x)``: ``(B, 3, H, W)`` -> list of 5 tensors
    ``(B, C_k, H_k, W_k)`` with ``C_k = CHANNELS[net][k]``.
    """

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in TRUNKS:
            raise ValueError(f"unknown LPIPS trunk {net!r}; choose one of {sorted(TRUNKS)}")
        self.net = net
        layers, bounds = TRUNKS[net]
        for s in range(1, 6):
            seq = nn.Sequential()
            for i in range(bounds[s - 1], bounds[s]):
                seq.add_module(str(i), _layer(layers[i]))
            self.add_module(f"slice{s}", seq)
        self.channels = CHANNELS[net]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) input, got {tuple(x.shape)}")
        feats = []
        for s in range(1, 6):
            x = getattr(self, f"slice{s}")(x)
            feats.append(x)
        return feats


def from_torchvision(state: dict[str, torch.Tensor], net: str = "alex") -> dict[str, torch.Tensor]:
    """torchvision ``features.{i}.weight|bias`` keys -> ``slice{s}.{i}.*``; ``classifier.*`` dropped.

    Raises ``ValueError`` when the file holds no ``features.*`` keys (not a torchvision trunk).
    """
    _, bounds = TRUNKS[net]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = re.fullmatch(r"features\.(\d+)\.(weight|bias)", key)
        if not m:
            continue
        i = int(m.group(1))
        s = next((s for s in range(1, 6) if bounds[s - 1] <= i < bounds[s]), None)
        if s is None:
            continue  # layers after the last tap (e.g. the final pool) carry no weights anyway
        out[f"slice{s}.{i}.{m.group(2)}"] = value
    if not out:
        raise ValueError(f"no torchvision 'features.N.weight' keys found; is this a torchvision {net} checkpoint?")
    return out
