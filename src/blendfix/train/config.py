"""Typed training configuration of the artifact-suppression network (``blendfix train --config``).

Defaults are the paper's: Adam (0.9, 0.999), lr 1e-4 cosine-annealed to 1e-7 over 200,000
iterations, batch 4, loss ``0.1 * MSE + 1 * perceptual + 0.1 * adversarial``.

Loss presets (``loss.preset``) fill every loss weight left unset (``null``):

* ``paper``: the weights the paper states (mse 0.1, perceptual 1, adversarial 0.1, inner weights 1).
* ``released``: the effective weights of the released training code: ``2.0 * MSE +
  1.0 * (0.01 * perceptual sum) + 0.5 * (0.01 * BCE)``, i.e. mse 2.0, perceptual 1.0 with inner
  0.01, adversarial 0.5 with inner 0.01. (That code also used Adam betas (0.9, 0.99); set
  ``optim.betas`` to match it fully.)

The effective factor of a term is ``weight * inner``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..nets.resnet34 import RESNET34_BLOCKS, RESNET34_WIDTHS

LOSS_PRESETS: dict[str, dict[str, float]] = {
    "paper": {"mse": 0.1, "perceptual": 1.0, "perceptual_inner": 1.0, "adversarial": 0.1, "adversarial_inner": 1.0},
    "released": {"mse": 2.0, "perceptual": 1.0, "perceptual_inner": 0.01, "adversarial": 0.5,
                 "adversarial_inner": 0.01},
}


@dataclass
class ModelConfig:
    widths: tuple[int, int, int, int] = RESNET34_WIDTHS
    blocks: tuple[int, int, int, int] = RESNET34_BLOCKS
    head_width: int = 32
    #: blendfix's choice for training from scratch (on): predict F + a correction with a zero-initialised
    #: head, so training starts at the identity and cannot make a photo worse than its input. Off =
    #: the paper's network (its released checkpoint loads with it off).
    residual: bool = True
    #: blendfix option (off = the paper's network): the full-resolution input enters the head, so the
    #: network can copy the photo's fine texture instead of re-synthesising it from stride-4 features.
    input_skip: bool = False
    #: ``auto``: ImageNet ResNet-34 encoder when the registered checkpoint is present (else random);
    #: ``off``: random; or a path to a torchvision ResNet-34 file (required then).
    imagenet_init: str = "auto"


@dataclass
class DiscConfig:
    #: ``stylegan2`` (blendfix.nets.stylegan2.Discriminator).
    kind: str = "stylegan2"
    channel_multiplier: int = 2
    #: Extra keyword arguments for the discriminator (e.g. a narrower width for tests).
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossConfig:
    preset: str = "paper"
    mse: float | None = None
    perceptual: float | None = None
    perceptual_inner: float | None = None
    adversarial: float | None = None
    adversarial_inner: float | None = None
    #: Gradient-domain L1 term (target = Poisson solution); 0 = off.
    gradient: float = 0.0
    #: VGG16 checkpoint path; null = the registered torchvision file ``vgg16-397923af.pth``.
    vgg_weights: str | None = None


@dataclass
class DataConfig:
    #: Side of the random square training crop (multiple of 32); null = whole images.
    crop: int | None = None
    flip: bool = True
    val_fraction: float = 0.1
    split_seed: int = 0
    #: Training target: ``poisson`` (the paper: seamless clone of F into I over M_face), ``truth``
    #: (the editor's known artifact-free result, ``truth.png``) or ``mix`` (``truth_share`` of samples).
    target: str = "poisson"
    truth_share: float = 0.5
    #: At most this many validation items per evaluation (0 = all).
    val_max: int = 16
    workers: int = 2


@dataclass
class OptimConfig:
    lr: float = 1e-4
    lr_min: float = 1e-7
    betas: tuple[float, float] = (0.9, 0.999)
    iterations: int = 200_000
    batch_size: int = 4


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    disc: DiscConfig = field(default_factory=DiscConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    seed: int = 0
    device: str = "auto"
    #: ``auto``: mixed precision (fp16 autocast + grad scaling) on CUDA only; ``on`` / ``off``.
    amp: str = "auto"
    #: torch CPU threads (0 = torch's default).
    threads: int = 0
    log_every: int = 50
    val_every: int = 1000
    ckpt_every: int = 5000
    #: Checkpoints kept on disk (the newest ones); 0 = all.
    keep_checkpoints: int = 3
    #: Validation images shown in the TensorBoard grid.
    grid_images: int = 4


def resolve_loss(cfg: LossConfig) -> LossConfig:
    """A copy with every unset weight filled from the preset; ``ValueError`` for an unknown preset."""
    if cfg.preset not in LOSS_PRESETS:
        raise ValueError(f"loss.preset must be one of {sorted(LOSS_PRESETS)}, got {cfg.preset!r}")
    preset = LOSS_PRESETS[cfg.preset]
    filled = {k: (getattr(cfg, k) if getattr(cfg, k) is not None else v) for k, v in preset.items()}
    out = dataclasses.replace(cfg, **filled)
    for k in (*preset, "gradient"):
        if getattr(out, k) < 0:
            raise ValueError(f"loss.{k} must not be negative, got {getattr(out, k)}")
    return out


def effective_weights(cfg: LossConfig) -> dict[str, float]:
    """The factor each raw term enters the generator objective with (``weight * inner``)."""
    r = resolve_loss(cfg)
    return {"mse": r.mse, "perceptual": r.perceptual * r.perceptual_inner,
            "adversarial": r.adversarial * r.adversarial_inner, "gradient": r.gradient}


def check(cfg: TrainConfig) -> TrainConfig:
    """Validate a config (loss resolved); ``ValueError`` naming the bad field."""
    cfg.loss = resolve_loss(cfg.loss)
    if cfg.data.crop is not None and (cfg.data.crop < 32 or cfg.data.crop % 32):
        raise ValueError(f"data.crop must be a multiple of 32 (MAResU-Net input), got {cfg.data.crop}")
    if cfg.data.target not in ("poisson", "truth", "mix"):
        raise ValueError(f"data.target must be poisson, truth or mix, got {cfg.data.target!r}")
    if not 0 <= cfg.data.truth_share <= 1:
        raise ValueError(f"data.truth_share must be in [0, 1], got {cfg.data.truth_share}")
    if cfg.optim.iterations < 1 or cfg.optim.batch_size < 1:
        raise ValueError("optim.iterations and optim.batch_size must be positive")
    if cfg.amp not in ("auto", "on", "off"):
        raise ValueError(f"amp must be auto, on or off, got {cfg.amp!r}")
    if min(cfg.log_every, cfg.val_every, cfg.ckpt_every) < 1:
        raise ValueError("log_every, val_every and ckpt_every must be positive")
    if cfg.disc.kind != "stylegan2":
        raise ValueError(f"disc.kind must be stylegan2, got {cfg.disc.kind!r}")
    return cfg
