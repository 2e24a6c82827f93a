"""What a training run is built from: the generator, the perceptual loss, the discriminator."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

from ..errors import MissingWeightsError
from ..nets.maresunet import MAResUNet
from .config import TrainConfig, effective_weights
from .losses import PerceptualLoss

DiscFactory = Callable[[int, TrainConfig], nn.Module]


def default_discriminator(size: int, cfg: TrainConfig) -> nn.Module:
    """StyleGAN2 discriminator for ``size`` x ``size`` images in ``[-1, 1]`` -> ``(B, 1)`` logits."""
    try:
        mod = importlib.import_module("blendfix.nets.stylegan2")
    except ModuleNotFoundError as e:
        raise RuntimeError("the adversarial loss needs blendfix.nets.stylegan2.Discriminator, which this build "
                           "lacks; set loss.adversarial: 0 to train without it") from e
    return mod.Discriminator(size, channel_multiplier=cfg.disc.channel_multiplier, **cfg.disc.options)


def build_model(cfg: TrainConfig) -> tuple[MAResUNet, list[str]]:
    """The generator, ImageNet-initialised per ``model.imagenet_init``; returns it and any warnings."""
    from ..nets.resnet34 import load_imagenet_encoder

    m = cfg.model
    model = MAResUNet(6, 3, widths=m.widths, blocks=m.blocks, head_width=m.head_width, residual=m.residual,
                      input_skip=m.input_skip)
    notes: list[str] = []
    if m.imagenet_init == "off":
        return model, notes
    if m.imagenet_init == "auto":
        try:
            load_imagenet_encoder(model)
        except MissingWeightsError:
            notes.append("ImageNet ResNet-34 checkpoint not found: encoder initialised randomly")
        except ValueError as e:
            notes.append(f"ImageNet initialisation skipped: {e}")
        return model, notes
    load_imagenet_encoder(model, m.imagenet_init)
    return model, notes


def build_perceptual(cfg: TrainConfig) -> tuple[PerceptualLoss | None, list[str]]:
    """VGG16 perceptual loss, or ``None`` with a loud warning when the default weights are absent."""
    from ..nets.vgg16 import load_vgg16

    if effective_weights(cfg.loss)["perceptual"] == 0:
        return None, []
    try:
        vgg = load_vgg16(cfg.loss.vgg_weights)
    except MissingWeightsError:
        if cfg.loss.vgg_weights is not None:
            raise
        from ..nets.vgg16 import VGG16_CHECKPOINT as ck
        from ..registry import weights_dir

        msg = (f"PERCEPTUAL LOSS DISABLED: VGG16 weights {ck.filename} not found in {weights_dir()}; training "
               f"WITHOUT the perceptual term (no substitute is used). Place the file from {ck.url} there "
               f"(or set BLENDFIX_WEIGHTS / loss.vgg_weights) to train with it.")
        return None, [msg]
    return PerceptualLoss(vgg, inner_weight=cfg.loss.perceptual_inner), []
