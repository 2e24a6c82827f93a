"""Diff-CAM (Song et al., "Editing Out-of-domain GAN Inversion via Differential Activations").

A ResNet-101 split in two: ``shared`` (stem, layer1, layer2, layer3 blocks 0-9) embeds the inverted
image I' and the edited image T separately; ``classifier`` (layer3 blocks 10-22, layer4, global
average pool) and ``fc`` classify the feature difference ``delta = shared(T) - shared(I')`` into the
edit direction that produced T (17 classes). Grad-CAM on layer4's output for the attribute's class
locates the edit: that map is the fusion mask M.

State_dict layout = EOGI's ``diff_cam_weight.pt`` (a raw state_dict, 626 keys): ``shared.{0,1,4,5,6..15}``,
``classifier.{0..12,13}``, ``fc``. Network tensors are RGB in ``[-1, 1]``; :func:`diffcam_mask` takes
``[0, 1]`` images and converts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..attributes import canonical
from ..checkpoints import load_checkpoint
from ..errors import BlendfixError
from ..registry import CheckpointEntry, ModelEntry, register_checkpoint, register_model
from .resnet_bottleneck import EXPANSION, RESNET101_LAYERS, make_layer, stem

#: EOGI's class index of each direction (``image_process.py``); the other classes are unused there.
DIRECTION_CLASSES: dict[str, int] = {"Bushy_Eyebrows": 6, "Eyeglasses": 7, "Mouth_Open": 10, "Narrow_Eyes": 11,
                                     "Beard": 12, "Smiling": 15, "Old": 16}
#: blendfix attribute -> Diff-CAM class.
ATTRIBUTE_CLASSES: dict[str, int] = {"eyebrows": 6, "beard": 12, "aging": 16, "smile": 15}
INPUT_SIZE = 256  # EOGI runs Diff-CAM on 256x256 images


class DiffCAM(nn.Module):
    """Difference classifier. Defaults = EOGI's ``DiffCam(num_class=17)`` on ResNet-101.

    ``layers``/``width``/``split`` shrink it for tests: ``split`` = how many layer3 blocks are in
    ``shared`` (10 in the published model). Always in eval mode unless trained explicitly.
    """

    def __init__(self, num_classes: int = 17, layers: tuple[int, ...] = RESNET101_LAYERS, width: int = 64,
                 split: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if len(layers) != 4 or not 0 < split < layers[2]:
            raise ValueError(f"need 4 stage depths and 0 < split < layers[2]; got layers {layers}, split {split}")
        self.in_channels, self.num_classes = in_channels, num_classes
        c = width * EXPANSION
        l1 = make_layer(width, width, layers[0], 1)
        l2 = make_layer(c, width * 2, layers[1], 2)
        l3 = make_layer(2 * c, width * 4, layers[2], 2)
        l4 = make_layer(4 * c, width * 8, layers[3], 2)
        self.shared = nn.Sequential(*stem(in_channels, width), nn.Sequential(*l1), nn.Sequential(*l2), *l3[:split])
        self.classifier = nn.Sequential(*l3[split:], nn.Sequential(*l4), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(8 * c, num_classes)
        self.eval()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in ``[-1, 1]`` -> shared features ``(B, 16*width, H/16, W/16)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels or min(x.shape[2:]) < 32:
            raise ValueError(f"Diff-CAM features expect (B, {self.in_channels}, H, W) in [-1, 1] with H, W >= 32, "
                             f"got {tuple(x.shape)}")
        return self.shared(x)

    def layer4(self, delta: torch.Tensor) -> torch.Tensor:
        """Feature difference -> layer4 output ``A`` ``(B, 32*width, H/32, W/32)`` (the Grad-CAM layer)."""
        return self.classifier[:-1](delta)

    def head(self, activations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """layer4 output -> (pooled ``(B, 32*width)``, logits ``(B, num_classes)``)."""
        pooled = self.classifier[-1](activations).flatten(1)
        return pooled, self.fc(pooled)

    def classify(self, delta: torch.Tensor) -> torch.Tensor:
        """``delta = features(T) - features(I')`` -> logits ``(B, num_classes)``."""
        return self.head(self.layer4(delta))[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 6, H, W)`` = concat(I', T) in ``[-1, 1]`` -> logits ``(B, num_classes)``."""
        c = self.in_channels
        if x.ndim != 4 or x.shape[1] != 2 * c:
            raise ValueError(f"Diff-CAM expects (B, {2 * c}, H, W) = [inverted, edited], got {tuple(x.shape)}")
        return self.classify(self.features(x[:, c:]) - self.features(x[:, :c]))


@dataclass
class GradCAM:
    """Grad-CAM of one call. ``heatmap`` ``(B, H, W)`` in ``[0, 1]`` at the input size."""

    logits: torch.Tensor  # (B, classes)
    pooled: torch.Tensor  # (B, C4)
    activations: torch.Tensor  # layer4 output A, (B, C4, h, w)
    weights: torch.Tensor  # alpha = mean_hw dL/dA, (B, C4)
    raw: torch.Tensor  # sum_c alpha_c A_c before ReLU, (B, h, w)
    heatmap: torch.Tensor  # ReLU, bilinear to the input size, per-image min-max, (B, H, W)


def class_index(target: str | int, num_classes: int = 17) -> int:
    """An attribute (or alias), an EOGI direction name (``Bushy_Eyebrows`` ...) or a class number -> class."""
    if isinstance(target, int):
        idx = target
    elif target in DIRECTION_CLASSES:
        idx = DIRECTION_CLASSES[target]
    else:
        idx = ATTRIBUTE_CLASSES[canonical(target)]
    if not 0 <= idx < num_classes:
        raise ValueError(f"class {idx} is outside this Diff-CAM's {num_classes} classes")
    return idx


def eigen_modulate(weighted: torch.Tensor) -> torch.Tensor:
    """``eigen_smooth`` as the 2025 method's released code defines it: ``(B, C, h, w)`` weighted
    activations ``alpha_c A_c`` -> ``(B, h, w)`` map ``ReLU(u1 * sum_c alpha_c A_c)``.

    ``u1``: the first left singular vector of the ``(h*w, C)`` matrix of weighted activations with
    each channel's mean removed, its sign chosen so it correlates positively with the plain CAM,
    min-max normalised to ``[0, 1]`` (``+1e-8`` in the denominator). It keeps the CAM where the main
    spatial mode of the activations is strong. (pytorch-grad-cam's own ``eigen_smooth`` differs:
    it projects the activations on their first principal component.)
    """
    b, c, h, w = weighted.shape
    cam = weighted.sum(dim=1)
    x = weighted.permute(0, 2, 3, 1).reshape(b, h * w, c).double()
    x = x - x.mean(dim=1, keepdim=True)
    u1 = torch.linalg.svd(x, full_matrices=False).U[:, :, 0]
    flat = cam.reshape(b, h * w).double()
    u1 = torch.where((u1 * flat).sum(dim=1, keepdim=True) < 0, -u1, u1)
    lo, hi = u1.min(dim=1, keepdim=True).values, u1.max(dim=1, keepdim=True).values
    u1 = (u1 - lo) / (hi - lo + 1e-8)
    return (u1.reshape(b, h, w).to(cam.dtype) * cam).clamp(min=0)


def grad_cam(model: DiffCAM, x: torch.Tensor, target: str | int, *, eigen_smooth: bool = False) -> GradCAM:
    """Grad-CAM of ``model`` on ``x`` ``(B, 6, H, W)`` in ``[-1, 1]`` for one class (every batch item).

    Gradients of ``sum_i logits[i, t]`` w.r.t. layer4's output, averaged over positions, weight the
    channels; the weighted sum is ReLU'd, bilinearly resized (align_corners False) to ``(H, W)`` and
    min-max normalised per image. A map that is identically zero after the ReLU (the class is not
    seen anywhere) is returned as zeros, where the original would produce NaN. ``eigen_smooth``:
    the weighted sum is replaced by :func:`eigen_modulate` (the released code's option).
    """
    t = class_index(target, model.num_classes)
    c = model.in_channels
    if x.ndim != 4 or x.shape[1] != 2 * c:
        raise ValueError(f"grad_cam expects (B, {2 * c}, H, W) = [inverted, edited], got {tuple(x.shape)}")
    with torch.no_grad():
        acts = model.layer4(model.features(x[:, c:]) - model.features(x[:, :c]))
    acts = acts.detach().requires_grad_(True)
    with torch.enable_grad():
        pooled, logits = model.head(acts)
        (grads,) = torch.autograd.grad(logits[:, t].sum(), acts)
    weights = grads.mean(dim=(2, 3))
    weighted = weights[:, :, None, None] * acts.detach()
    raw = eigen_modulate(weighted) if eigen_smooth else weighted.sum(dim=1)
    heat = F.interpolate(raw.clamp(min=0)[:, None], size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    lo = heat.flatten(1).min(dim=1).values[:, None, None]
    heat = heat - lo
    hi = heat.flatten(1).max(dim=1).values[:, None, None]
    heat = torch.where(hi > 0, heat / hi.clamp(min=torch.finfo(heat.dtype).tiny), torch.zeros_like(heat))
    return GradCAM(logits.detach(), pooled.detach(), acts.detach(), weights, raw, heat)


def _to_model_input(img: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, 3, H, W)`` in ``[0, 1]`` -> ``[-1, 1]`` at ``size`` (area when shrinking, like EOGI's pooling)."""
    if img.shape[2:] != (size, size):
        shrink = img.shape[2] >= size and img.shape[3] >= size
        img = F.interpolate(img, size=(size, size), mode="area") if shrink else \
            F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return img * 2.0 - 1.0


#: the released code's test-time augmentations for ``aug_smooth``: horizontal flip x brightness factor.
AUG_FLIPS = (False, True)
AUG_FACTORS = (0.9, 1.0, 1.1)


def smoothed_heatmap(model: DiffCAM, x: torch.Tensor, target: str | int, *, aug_smooth: bool = False,
                     eigen_smooth: bool = False) -> torch.Tensor:
    """Grad-CAM heatmap ``(B, H, W)`` in ``[0, 1]``, optionally with the released code's smoothing.

    ``aug_smooth``: the mean of the heatmaps of 6 versions of ``x`` (``(B, 6, H, W)`` in ``[-1, 1]``):
    mirrored or not (both I' and T), times 0.9, 1 or 1.1 (on the ``[-1, 1]`` values, as ttach's
    ``Multiply`` does there), each heatmap min-max normalised and mirrored back before averaging.
    ``eigen_smooth``: see :func:`eigen_modulate`.
    """
    if not aug_smooth:
        return grad_cam(model, x, target, eigen_smooth=eigen_smooth).heatmap
    maps = []
    for flip in AUG_FLIPS:
        for factor in AUG_FACTORS:
            xa = x.flip(-1) if flip else x
            heat = grad_cam(model, xa * factor, target, eigen_smooth=eigen_smooth).heatmap
            maps.append(heat.flip(-1) if flip else heat)
    return torch.stack(maps).mean(dim=0)


def released_cam_options(attribute: str | int) -> dict[str, bool]:
    """The smoothing the released code's data generation uses: ``aug_smooth`` always, ``eigen_smooth``
    except for aging (its class 16, Old)."""
    return {"aug_smooth": True, "eigen_smooth": class_index(attribute) != ATTRIBUTE_CLASSES["aging"]}


def diffcam_mask(model: DiffCAM, inverted: torch.Tensor, edited: torch.Tensor, attribute: str | int,
                 out_size: int | tuple[int, int] | None = None, input_size: int = INPUT_SIZE, *,
                 aug_smooth: bool = False, eigen_smooth: bool = False) -> torch.Tensor:
    """The fusion mask M: ``(B, 1, H, W)`` in ``[0, 1]`` where the edit changed the image.

    ``inverted`` (I') and ``edited`` (T): ``(B, 3, H, W)`` RGB in ``[0, 1]``, same shape. Both are
    brought to ``input_size`` (256, EOGI's Diff-CAM size), the Grad-CAM heatmap for the attribute's
    class is taken there and resized to ``out_size`` (default: the inputs' size) with *nearest*, as
    EOGI does (a 1024 output is an exact 4x4 block replication of the 256 map). ``aug_smooth`` /
    ``eigen_smooth``: :func:`smoothed_heatmap` (off = EOGI and the paper; the released code's data
    generation turns both on, eigen_smooth not for aging: :func:`released_cam_options`).
    """
    if inverted.shape != edited.shape or inverted.ndim != 4 or inverted.shape[1] != model.in_channels:
        raise ValueError(f"inverted and edited must both be (B, {model.in_channels}, H, W); "
                         f"got {tuple(inverted.shape)} and {tuple(edited.shape)}")
    p = next(model.parameters())
    x = torch.cat([_to_model_input(inverted.to(p), input_size), _to_model_input(edited.to(p), input_size)], dim=1)
    heat = smoothed_heatmap(model, x, attribute, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)[:, None]
    size = inverted.shape[2:] if out_size is None else (out_size, out_size) if isinstance(out_size, int) else out_size
    return F.interpolate(heat, size=tuple(size), mode="nearest").clamp(0, 1)


def diffcam_arch(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Constructor arguments read off a Diff-CAM state_dict's keys and shapes."""
    try:
        def count(pattern: str) -> int:
            return len({m.group(1) for k in state if (m := re.fullmatch(pattern, k))})
        l3_shared, l3_cls = count(r"shared\.(\d+)\.conv1\.weight"), count(r"classifier\.(\d+)\.conv1\.weight")
        last = f"classifier\\.{l3_cls}\\.(\\d+)\\.conv1\\.weight"
        layers = (count(r"shared\.4\.(\d+)\.conv1\.weight"), count(r"shared\.5\.(\d+)\.conv1\.weight"),
                  l3_shared + l3_cls, count(last))
        return {"num_classes": int(state["fc.weight"].shape[0]), "layers": layers,
                "width": int(state["shared.0.weight"].shape[0]), "split": l3_shared,
                "in_channels": int(state["shared.0.weight"].shape[1])}
    except KeyError as e:
        raise BlendfixError(f"not a Diff-CAM state_dict: key {e} is missing") from e


def diffcam_from_state(state: dict[str, torch.Tensor]) -> DiffCAM:
    """A :class:`DiffCAM` of the state's architecture with the state loaded strictly (eval mode)."""
    arch = diffcam_arch(state)
    try:
        with torch.device("meta"):
            model = DiffCAM(**arch)
        model.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, ValueError) as e:
        raise BlendfixError(f"Diff-CAM checkpoint does not match the architecture {arch}: "
                            f"{' '.join(str(e).splitlines()[:3])[:500]}") from e
    return model.eval()


def resnet_to_diffcam(state: dict[str, torch.Tensor], split: int = 10,
                      layers: tuple[int, ...] = RESNET101_LAYERS) -> dict[str, torch.Tensor]:
    """A torchvision ResNet state_dict (``conv1``, ``bn1``, ``layer1..4``) renamed to the Diff-CAM layout.

    ``fc`` is dropped (Diff-CAM has its own head). This is how EOGI starts training (ImageNet weights).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head in ("conv1", "bn1"):
            out[f"shared.{0 if head == 'conv1' else 1}.{rest}"] = value
        elif head in ("layer1", "layer2"):
            out[f"shared.{4 if head == 'layer1' else 5}.{rest}"] = value
        elif head == "layer3":
            idx, _, tail = rest.partition(".")
            i = int(idx)
            out[f"shared.{6 + i}.{tail}" if i < split else f"classifier.{i - split}.{tail}"] = value
        elif head == "layer4":
            out[f"classifier.{layers[2] - split}.{rest}"] = value
    if not out:
        raise BlendfixError("not a torchvision ResNet state_dict (no conv1/bn1/layer1..4 keys)")
    return out


def load_diffcam(name_or_path: str | os.PathLike = "diff_cam_weight", device: str | torch.device = "cpu") -> DiffCAM:
    """Registered name or file (EOGI's raw state_dict, or one written by ``blendfix train-diffcam``)."""
    state = load_checkpoint(name_or_path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BlendfixError(f"{name_or_path}: expected a Diff-CAM state_dict (name -> tensor)")
    return diffcam_from_state(state).to(device)


register_model(ModelEntry(
    name="diffcam", builder="blendfix.nets.diffcam:load_diffcam",
    description="Diff-CAM: ResNet-101 difference classifier (17 edit classes) + Grad-CAM edit mask",
    checkpoints=("diff_cam_weight",),
))

register_checkpoint(CheckpointEntry(
    name="diff_cam_weight",
    filename="diff_cam_weight.pt",
    url="https://drive.google.com/file/d/10d4QL4BRNvY-AyxMQhHsnoQ7vZz0Q_Zh/view?usp=sharing",
    layout="raw state_dict of EOGI DiffCam(num_class=17) (626 keys): shared.{0,1,4,5,6..15} = ResNet-101 stem, "
           "layer1, layer2, layer3[0:10]; classifier.{0..12} = layer3[10:23], classifier.13 = layer4; fc (17, 2048)",
    licence="no licence file (HaoruiSong622/Editing-Out-of-Domain); research use",
    model="diffcam",
    notes="Linked from the README of github.com/HaoruiSong622/Editing-Out-of-Domain ('diff_cam_weight.pt'); "
          "no public sha256 found. Class indices: Bushy_Eyebrows 6, Eyeglasses 7, Mouth_Open 10, Narrow_Eyes 11, "
          "Beard 12, Smiling 15, Old 16.",
))

register_checkpoint(CheckpointEntry(
    name="resnet101_imagenet",
    filename="resnet101-63fe2227.pth",
    url="https://download.pytorch.org/models/resnet101-63fe2227.pth",
    layout="torchvision resnet101 state_dict (conv1, bn1, layer1..layer4, fc); renamed by resnet_to_diffcam",
    licence="BSD-3-Clause (pytorch/vision); trained on ImageNet (non-commercial research terms)",
    model="diffcam",
    notes="Optional start for `blendfix train-diffcam --set init=resnet101_imagenet` (EOGI starts from torchvision "
          "ImageNet weights; the older resnet101-5d3b4d8f.pth has the same keys). torchvision checks only the "
          "sha256 prefix 63fe2227 in the file name; no full sha256 recorded.",
))
