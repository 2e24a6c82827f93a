"""LPIPS v0.1 (Zhang et al. 2018) with the AlexNet (default) or VGG16 trunk.

Layout = ``richzhang/PerceptualSimilarity`` ``LPIPS(net=..., version='0.1')`` state_dict keys:
``scaling_layer.shift|scale`` (constant buffers), ``net.slice{s}.{i}.weight|bias`` (torchvision
``features`` trunk, see :mod:`blendfix.nets.alexnet`) and ``lin{k}.model.1.weight`` ``(1, C_k, 1, 1)``
(the published ``v0.1/alex.pth`` / ``vgg.pth`` hold exactly these five keys).

Distance of two ``(B, 3, H, W)`` images: scale ``(x - shift) / scale``, take five trunk feature maps,
unit-normalise each over channels (``f / (||f|| + 1e-10)``), weight the squared differences per
channel with ``lin{k}``, average spatially per layer and sum the five terms. ``0`` for identical
images; larger = more different (typically 0..1 for photos).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..nets.alexnet import CHANNELS, SlicedFeatures, from_torchvision
from ..nets.vgg16 import VGG16_CHECKPOINT
from ..registry import CheckpointEntry, ModelEntry, register_checkpoint, register_model
from .weights import load_state, resolve

# The v0.1 scaling layer constants, exactly as float32 in the original (2 * ImageNet mean - 1, 2 * std).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10

# the VGG16 file is the one the perceptual loss uses: one registry entry, defined in nets/vgg16.py
TRUNK_CHECKPOINT = {"alex": "torchvision-alexnet", "vgg": VGG16_CHECKPOINT.name}
LIN_CHECKPOINT = {"alex": "lpips-alex-v0.1", "vgg": "lpips-vgg-v0.1"}

register_model(ModelEntry("lpips-alex", "blendfix.metrics.lpips:LPIPS",
                          "LPIPS v0.1 distance, AlexNet trunk (the paper's LPIPS)",
                          ("torchvision-alexnet", "lpips-alex-v0.1")))
register_model(ModelEntry("lpips-vgg", "blendfix.metrics.lpips:LPIPS",
                          "LPIPS v0.1 distance, VGG16 trunk", (VGG16_CHECKPOINT.name, "lpips-vgg-v0.1")))
register_checkpoint(CheckpointEntry(
    "torchvision-alexnet", "alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "raw state_dict, torchvision AlexNet: features.{0,3,6,8,10}.weight|bias (+ classifier.*, unused); "
    "features.{i} -> net.slice{s}.{i}",
    "BSD-3-Clause (torchvision); ImageNet-1k weights (AlexNet_Weights.IMAGENET1K_V1)",
    "lpips-alex", None, "sha256 starts with 7be5be79 (torchvision's file-name convention; checked on load)"))
register_checkpoint(CheckpointEntry(
    "lpips-alex-v0.1", "lpips_v0.1/alex.pth",
    "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
    "raw state_dict (legacy torch format, CUDA tensors): lin0..lin4.model.1.weight (1, C, 1, 1), "
    "C = 64,192,384,256,256",
    "BSD-2-Clause (richzhang/PerceptualSimilarity)", "lpips-alex",
    "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "also inside the PyPI lpips wheel at lpips/weights/v0.1/alex.pth"))
register_checkpoint(CheckpointEntry(
    "lpips-vgg-v0.1", "lpips_v0.1/vgg.pth",
    "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
    "raw state_dict: lin0..lin4.model.1.weight (1, C, 1, 1), C = 64,128,256,512,512",
    "BSD-2-Clause (richzhang/PerceptualSimilarity)", "lpips-vgg",
    "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"))


class ScalingLayer(nn.Module):
    """``(x - shift) / scale`` per channel on ``[-1, 1]`` input (the v0.1 normalisation)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class LinLayer(nn.Module):
    """Per-channel non-negative weights as a bias-free 1x1 conv to one channel (key ``model.1.weight``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Index 0 is the original's Dropout (identity at evaluation); kept so the keys read model.1.*.
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance network (``net`` = ``'alex'`` or ``'vgg'``); build weights with :func:`load_lpips`."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        self.scaling_layer = ScalingLayer()
        self.net = SlicedFeatures(net)
        for k, c in enumerate(CHANNELS[net]):
            self.add_module(f"lin{k}", LinLayer(c))
        self.eval()

    def layers(self, x0: torch.Tensor, x1: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """The five per-layer terms ``(B, 5)``; their sum is the distance.

        ``x0``, ``x1``: ``(B, 3, H, W)``; with ``normalize=True`` (blendfix convention) RGB in ``[0, 1]``,
        mapped by ``2x - 1``; with ``normalize=False`` already in ``[-1, 1]`` (the lpips library default).
        """
        if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[1] != 3:
            raise ValueError(f"LPIPS expects two (B, 3, H, W) tensors of one shape, got {tuple(x0.shape)}, "
                             f"{tuple(x1.shape)}")
        if min(x0.shape[-2:]) < 32:
            raise ValueError(f"LPIPS needs images of at least 32x32 pixels, got {tuple(x0.shape[-2:])}")
        if normalize:
            x0, x1 = 2 * x0 - 1, 2 * x1 - 1
        f0 = self.net(self.scaling_layer(x0))
        f1 = self.net(self.scaling_layer(x1))
        terms = []
        for k, (a, b) in enumerate(zip(f0, f1, strict=True)):
            d = (_unit(a) - _unit(b)).pow(2)
            terms.append(getattr(self, f"lin{k}")(d).mean(dim=(2, 3))[:, 0])
        return torch.stack(terms, dim=1)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """LPIPS distance per image pair, ``(B,)``; see :meth:`layers` for the input range."""
        return self.layers(x0, x1, normalize).sum(dim=1)


def lpips_state_dict(trunk: dict[str, torch.Tensor], lin: dict[str, torch.Tensor],
                     net: str = "alex") -> dict[str, torch.Tensor]:
    """Compose the module's state_dict from a torchvision trunk file and a published v0.1 lin file."""
    lin_keys = {f"lin{k}.model.1.weight" for k in range(5)}
    missing = lin_keys - set(lin)
    if missing:
        raise ValueError(f"LPIPS linear-layer file lacks {sorted(missing)}; expected the v0.1 {net}.pth")
    sd = {f"net.{k}": v for k, v in from_torchvision(trunk, net).items()}
    sd.update({k: lin[k] for k in lin_keys})
    ref = ScalingLayer()
    sd["scaling_layer.shift"], sd["scaling_layer.scale"] = ref.shift, ref.scale
    return sd


def load_lpips(net: str = "alex", trunk: str | os.PathLike | None = None, lin: str | os.PathLike | None = None,
               device: str | torch.device = "cpu") -> LPIPS:
    """The LPIPS network with published weights, in eval mode on ``device``.

    ``trunk`` / ``lin``: registered checkpoint names or file paths (default: the registry's torchvision
    trunk and v0.1 lin file for ``net``). Raises :class:`~blendfix.errors.MissingWeightsError` naming
    every missing file and where to put it.
    """
    if net not in TRUNK_CHECKPOINT:
        raise ValueError(f"unknown LPIPS net {net!r}; choose 'alex' or 'vgg'")
    sources = [trunk or TRUNK_CHECKPOINT[net], lin or LIN_CHECKPOINT[net]]
    trunk_path, lin_path = resolve(sources)
    model = LPIPS(net)
    sd = lpips_state_dict(load_state(sources[0], trunk_path), load_state(sources[1], lin_path), net)
    model.load_state_dict(sd, strict=True)
    return model.eval().to(device)
