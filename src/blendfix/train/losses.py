"""Training losses of the artifact-suppression network.

All image arguments are ``(B, 3, H, W)`` RGB in ``[-1, 1]`` (the network's own range, as in the
released training code), so the pixel MSE and the loss weights have the released meaning.

* :class:`PerceptualLoss`: VGG16 features at conv2_2, conv3_2, conv4_3 (pre-ReLU) and pool5 with
  weights 1/16, 1/8, 1/4, 1; MSE per layer; times an inner weight (released code: 0.01).
* :class:`GANLoss`: 'vanilla' BCE on logits; the weight applies to the generator call only.
* :func:`gradient_loss`: L1 between finite-difference image gradients (the target is a Poisson
  solution, i.e. it is defined by its gradients).
* :class:`GeneratorLoss`: ``mse * MSE + perceptual * P + adversarial * GAN_g + gradient * G``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as nnf
from torch import nn

from ..nets.vgg16 import VGG16Features, normalize_imagenet

#: torchvision VGG16 ``features`` index -> weight: conv2_2, conv3_2, conv4_3, pool5 (the paper's layers).
PERCEPTUAL_LAYERS: dict[int, float] = {7: 1 / 16, 12: 1 / 8, 21: 1 / 4, 30: 1.0}


class PerceptualLoss(nn.Module):
    """``inner * sum_l w_l * MSE(phi_l(x), phi_l(gt))`` with ``phi`` the frozen VGG16 features.

    Inputs in ``[-1, 1]`` are mapped to ``[0, 1]`` and ImageNet-normalised; ``gt`` is detached.
    """

    def __init__(self, vgg: VGG16Features, layer_weights: dict[int, float] | None = None,
                 inner_weight: float = 1.0) -> None:
        super().__init__()
        self.vgg = vgg.eval().requires_grad_(False)
        self.layer_weights = dict(layer_weights or PERCEPTUAL_LAYERS)
        self.inner_weight = inner_weight

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()  # the feature extractor is always in eval mode
        return self

    def layer_mse(self, x: torch.Tensor, gt: torch.Tensor) -> dict[int, torch.Tensor]:
        """Raw MSE per VGG layer index (mean over all elements, batch included)."""
        if x.shape != gt.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"perceptual loss needs two (B, 3, H, W) tensors, got {tuple(x.shape)}, {tuple(gt.shape)}")
        layers = tuple(sorted(self.layer_weights))
        fx = self.vgg(normalize_imagenet((x + 1) / 2), layers)
        fg = self.vgg(normalize_imagenet((gt.detach() + 1) / 2), layers)
        return {i: nnf.mse_loss(fx[i], fg[i]) for i in layers}

    def forward(self, x: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        mse = self.layer_mse(x, gt)
        total = x.new_zeros(())
        for i in sorted(self.layer_weights):
            total = total + self.layer_weights[i] * mse[i]
        return self.inner_weight * total


def bce_with_logits(logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Mean binary cross-entropy of ``logits`` against a constant 1 (real) or 0 (fake) target."""
    target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
    return nnf.binary_cross_entropy_with_logits(logits, target)


class GANLoss:
    """'vanilla' adversarial loss; ``weight`` scales the generator call only (as in the released code)."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def __call__(self, logits: torch.Tensor, target_is_real: bool, is_disc: bool = False) -> torch.Tensor:
        loss = bce_with_logits(logits, target_is_real)
        return loss if is_disc else self.weight * loss

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """The generator's term: the fake images should be judged real."""
        return self(fake_logits, True, is_disc=False)

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """``BCE(D(real), 1) + BCE(D(fake), 0)`` (sum, no gradient penalty)."""
        return self(real_logits, True, is_disc=True) + self(fake_logits, False, is_disc=True)


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences ``(B, C, H, W-1)`` along x and ``(B, C, H-1, W)`` along y."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def gradient_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 difference of the image gradients of ``pred`` and ``target`` (both ``(B, C, H, W)``)."""
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"gradient loss needs two equal (B, C, H, W) tensors, got {tuple(pred.shape)}, "
                         f"{tuple(target.shape)}")
    px, py = image_gradients(pred)
    tx, ty = image_gradients(target)
    return ((px - tx).abs().mean() + (py - ty).abs().mean()) / 2


class GeneratorLoss:
    """The weighted generator objective; terms with weight 0 (or no module) are skipped.

    ``__call__(pred, target, disc)`` -> ``(total, terms)`` where ``terms`` maps ``mse``,
    ``perceptual``, ``adversarial``, ``gradient`` to the *weighted* detached values.
    ``disc`` maps ``(B, 3, S, S)`` in ``[-1, 1]`` to logits; it is only called when the
    adversarial weight is non-zero.
    """

    def __init__(self, mse: float, perceptual: float, adversarial: float, gradient: float = 0.0,
                 perceptual_loss: PerceptualLoss | None = None, gan: GANLoss | None = None) -> None:
        self.weights = {"mse": mse, "perceptual": perceptual if perceptual_loss is not None else 0.0,
                        "adversarial": adversarial, "gradient": gradient}
        self.perceptual_loss = perceptual_loss
        self.gan = gan or GANLoss(1.0)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor,
                 disc: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        parts: dict[str, torch.Tensor] = {}
        w = self.weights
        if w["mse"]:
            parts["mse"] = w["mse"] * nnf.mse_loss(pred, target)
        if w["perceptual"]:
            parts["perceptual"] = w["perceptual"] * self.perceptual_loss(pred.float(), target.float())
        if w["adversarial"]:
            if disc is None:
                raise ValueError("the adversarial weight is non-zero but no discriminator was given")
            parts["adversarial"] = w["adversarial"] * self.gan.generator(disc(pred).float())
        if w["gradient"]:
            parts["gradient"] = w["gradient"] * gradient_loss(pred, target)
        if not parts:
            raise ValueError("every loss weight is zero; nothing to train on")
        total = sum(parts.values())
        return total, {k: float(v.detach()) for k, v in parts.items()}
