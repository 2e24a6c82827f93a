"""BiSeNet face parser (zllrunning/face-parsing.PyTorch) in the state_dict layout of ``79999_iter.pth``.

19 CelebAMask-HQ classes in the order of :data:`BISENET_CLASSES`. Structure: a ResNet-18 context
path (``cp.resnet``) with attention refinement modules at 1/16 and 1/32 and a global-context
branch, a feature fusion module (``ffm``) over the 1/8 backbone features and the refined context,
and three heads (``conv_out`` main, ``conv_out16`` and ``conv_out32`` auxiliary). There is no
spatial path and no ``fc`` in the checkpoint.

Quirks reproduced: the inner upsampling is *nearest* to explicit sizes (legacy
``src = floor(dst * in / out)``); the head outputs are upsampled *bilinear, align_corners=True*;
the head called ``conv_out16`` runs at 1/8 and ``conv_out32`` at 1/16; attention vectors come from
global means, so outputs depend on the input size.

Input: ``(B, 3, H, W)`` ImageNet-normalised RGB (see :func:`imagenet_normalize`); the published model
was trained and is used at 512x512. Output: logits ``(B, 19, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..parsing.labels import BISENET_CLASSES
from ..registry import CheckpointEntry, ModelEntry, register_checkpoint, register_model
from .resnet import resnet18_backbone

__all__ = ["BISENET_CLASSES", "BiSeNet", "imagenet_normalize"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 512

register_model(ModelEntry(
    name="bisenet",
    builder="blendfix.nets.bisenet:BiSeNet",
    description="BiSeNet (ResNet-18 context path) face parser, 19 CelebAMask-HQ classes, 512x512 input",
    checkpoints=("bisenet-face-parsing",),
))
CHECKPOINT = register_checkpoint(CheckpointEntry(
    name="bisenet-face-parsing",
    filename="79999_iter.pth",
    url="https://drive.google.com/open?id=154JgKpzCPW82qINcVieuPH3fZ2e0P812",
    layout="raw state_dict (no 'module.' prefix, no wrapper): cp.resnet.*, cp.arm16.*, cp.arm32.*, "
           "cp.conv_head32.*, cp.conv_head16.*, cp.conv_avg.*, ffm.*, conv_out.*, conv_out16.*, conv_out32.* "
           "(191 entries)",
    licence="MIT (zllrunning/face-parsing.PyTorch); trained on CelebAMask-HQ (non-commercial research use)",
    model="bisenet",
    notes="The 'pre-trained model' link of the face-parsing.PyTorch README (Google Drive); a mirror of the "
          "same file is attached to the releases of clibdev/face-parsing.PyTorch. sha256 not recorded.",
))


class ConvBNReLU(nn.Module):
    """conv (no bias) -> BN -> ReLU: ``(B, in_ch, H, W) -> (B, out_ch, H', W')``."""

    def __init__(self, in_ch: int, out_ch: int, k: int = 3, stride: int = 1, pad: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=pad, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BiSeNetOutput(nn.Module):
    """Head: 3x3 ConvBNReLU to ``mid`` channels, then a 1x1 conv (no bias) to ``n_classes``."""

    def __init__(self, in_ch: int, mid: int, n_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_ch, mid, 3, 1, 1)
        self.conv_out = nn.Conv2d(mid, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class AttentionRefinementModule(nn.Module):
    """f = ConvBNReLU(x); f * sigmoid(BN(conv1x1(mean_hw(f))))."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_ch, out_ch, 3, 1, 1)
        self.conv_atten = nn.Conv2d(out_ch, out_ch, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        atten = torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean(dim=(2, 3), keepdim=True))))
        return feat * atten


class ContextPath(nn.Module):
    """ResNet-18 + ARMs + global context: ``x -> (feat8, feat_cp8, feat_cp16)`` at 1/8, 1/8, 1/16."""

    def __init__(self) -> None:
        super().__init__()
        self.resnet = resnet18_backbone()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128, 3, 1, 1)
        self.conv_head16 = ConvBNReLU(128, 128, 3, 1, 1)
        self.conv_avg = ConvBNReLU(512, 128, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        context = self.conv_avg(feat32.mean(dim=(2, 3), keepdim=True))
        feat32_sum = self.arm32(feat32) + context  # broadcast == nearest upsampling of a 1x1 map
        feat_cp16 = self.conv_head32(F.interpolate(feat32_sum, size=feat16.shape[2:], mode="nearest"))
        feat16_sum = self.arm16(feat16) + feat_cp16
        feat_cp8 = self.conv_head16(F.interpolate(feat16_sum, size=feat8.shape[2:], mode="nearest"))
        return feat8, feat_cp8, feat_cp16


class FeatureFusionModule(nn.Module):
    """x = ConvBNReLU(cat[a, b]); x * sigmoid(conv2(relu(conv1(mean_hw(x))))) + x."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_ch, out_ch, 1, 1, 0)
        self.conv1 = nn.Conv2d(out_ch, out_ch // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_ch // 4, out_ch, 1, bias=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = self.convblk(torch.cat([a, b], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * atten + x


class BiSeNet(nn.Module):
    """The face-parsing BiSeNet; ``forward(x) -> (logits, aux16, aux32)`` each ``(B, n_classes, H, W)``.

    ``x``: ``(B, 3, H, W)`` float, ImageNet-normalised RGB. Only the first output is used at
    inference (argmax over classes gives the label map). :meth:`heads` returns the three head
    maps before their final upsampling (at 1/8, 1/8 and 1/16).
    """

    def __init__(self, n_classes: int = 19) -> None:
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes must be positive, got {n_classes}")
        self.n_classes = n_classes
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, n_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, n_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, n_classes)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Head maps before upsampling: main (1/8), ``conv_out16`` (1/8), ``conv_out32`` (1/16)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) ImageNet-normalised RGB, got {tuple(x.shape)}")
        if min(x.shape[2:]) < 32:
            raise ValueError(f"input must be at least 32x32, got {tuple(x.shape[2:])}")
        feat8, feat_cp8, feat_cp16 = self.cp(x)
        fused = self.ffm(feat8, feat_cp8)
        return self.conv_out(fused), self.conv_out16(feat_cp8), self.conv_out32(feat_cp16)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        size = x.shape[2:]
        return tuple(F.interpolate(h, size=size, mode="bilinear", align_corners=True) for h in self.heads(x))


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> ImageNet-normalised (mean/std per channel)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
