"""StyleGAN2 generator and residual discriminator in plain PyTorch.

The state_dict layout is that of the converted FFHQ config-f checkpoint
``stylegan2-ffhq-config-f.pt`` (rosinality/stylegan2-pytorch conversion of NVIDIA's TF pickle):
a dict with ``g_ema`` (``Generator(1024, 512, 8, channel_multiplier=2)``), ``latent_avg`` (512,)
and, when converted with the discriminator, ``d`` (``Discriminator(1024, channel_multiplier=2)``).
pSp checkpoints hold the same generator keys under the prefix ``decoder.``.

Value ranges: the generator's image is not clamped. A trained generator gives RGB roughly in
``[-1, 1]`` (clamp and map with ``(x + 1) / 2`` for display); random weights give much larger
values. The discriminator takes RGB in ``[-1, 1]`` and returns raw logits (B, 1).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from torch import nn

from ..checkpoints import load_checkpoint
from ..errors import BlendfixError
from ..registry import CheckpointEntry, ModelEntry, register_checkpoint, register_model
from .stylegan2_ops import ConstantInput, EqualLinear, PixelNorm, StyledConv, ToRGB, conv_layer

BLUR = (1, 3, 3, 1)


def channels_for(channel_multiplier: int = 2, max_channels: int = 512) -> dict[int, int]:
    """Feature channels per resolution: 512 up to 32x32, then 256*cm, 128*cm, 64*cm, 32*cm, 16*cm.

    ``max_channels`` caps every entry (512 = the published layout; smaller values give tiny test models).
    """
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
            256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    return {r: min(c, max_channels) for r, c in base.items()}


def _log2_size(size: int) -> int:
    log = int(math.log2(size)) if size > 0 else 0
    if size < 8 or 2 ** log != size or size > 1024:
        raise ValueError(f"size must be a power of two between 8 and 1024, got {size}")
    return log


class Generator(nn.Module):
    """StyleGAN2 synthesis + mapping network.

    ``forward(styles)`` takes a list of one or two tensors: z codes (B, style_dim) (mapped by the MLP),
    or with ``input_is_latent=True`` W codes (B, style_dim) or W+ codes (B, n_latent, style_dim).
    Returns ``(image (B, 3, size, size), latent (B, n_latent, style_dim) or None)``; the image is
    unclamped, about [-1, 1] for a trained model. ``n_latent = 2 * log2(size) - 2``.
    """

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 blur_kernel: Sequence[float] = BLUR, lr_mlp: float = 0.01, max_channels: int = 512) -> None:
        super().__init__()
        self.log_size = _log2_size(size)
        self.size, self.style_dim = size, style_dim
        self.channels = channels_for(channel_multiplier, max_channels)
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True)
                                                  for _ in range(n_mlp)])
        c4 = self.channels[4]
        self.input = ConstantInput(c4)
        self.conv1 = StyledConv(c4, c4, 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(c4, style_dim, upsample=False)
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.n_latent = self.log_size * 2 - 2
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        self.noises = nn.Module()
        for j in range(self.num_layers):
            r = 2 ** ((j + 5) // 2)
            self.noises.register_buffer(f"noise_{j}", torch.randn(1, 1, r, r))
        in_ch = c4
        for i in range(3, self.log_size + 1):
            out_ch = self.channels[2 ** i]
            self.convs.append(StyledConv(in_ch, out_ch, 3, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_ch, out_ch, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_ch, style_dim, blur_kernel=blur_kernel))
            in_ch = out_ch

    def get_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Mapping network: z (B, style_dim) -> W (B, style_dim)."""
        if z.ndim != 2 or z.shape[1] != self.style_dim:
            raise ValueError(f"z must be (B, {self.style_dim}), got {tuple(z.shape)}")
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean W (1, style_dim) over ``n`` z ~ N(0, I) drawn on the model's device."""
        dev = self.input.input.device
        z = torch.randn(n, self.style_dim, device=dev, generator=generator)
        return self.style(z).mean(0, keepdim=True)

    def _noise_list(self, noise: Sequence[torch.Tensor | None] | None, randomize: bool) -> list:
        if noise is not None:
            if len(noise) != self.num_layers:
                raise ValueError(f"noise must list {self.num_layers} maps, got {len(noise)}")
            return list(noise)
        if randomize:
            return [None] * self.num_layers
        return [getattr(self.noises, f"noise_{j}") for j in range(self.num_layers)]

    def _broadcast(self, styles: list[torch.Tensor], inject_index: int | None) -> torch.Tensor:
        if len(styles) == 1:
            s = styles[0]
            return s if s.ndim == 3 else s.unsqueeze(1).repeat(1, self.n_latent, 1)
        if inject_index is None:
            inject_index = int(torch.randint(1, self.n_latent, ()).item())
        if not 0 < inject_index < self.n_latent:
            raise ValueError(f"inject_index must be in 1..{self.n_latent - 1}, got {inject_index}")
        a = styles[0].unsqueeze(1).repeat(1, inject_index, 1)
        b = styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)
        return torch.cat([a, b], 1)

    def _check_styles(self, styles: Sequence[torch.Tensor], input_is_latent: bool) -> None:
        if not isinstance(styles, (list, tuple)) or len(styles) not in (1, 2):
            raise ValueError("styles must be a list of one tensor (or two for style mixing)")
        for s in styles:
            ok = s.ndim == 2 or (s.ndim == 3 and input_is_latent and s.shape[1] == self.n_latent)
            if not ok or s.shape[-1] != self.style_dim:
                raise ValueError(f"each style must be (B, {self.style_dim})"
                                 + (f" or (B, {self.n_latent}, {self.style_dim})" if input_is_latent else "")
                                 + f", got {tuple(s.shape)}")
        if len(styles) == 2 and any(s.ndim == 3 for s in styles):
            raise ValueError("style mixing takes two (B, style_dim) codes, not W+ codes")

    def forward(self, styles: Sequence[torch.Tensor], return_latents: bool = False, inject_index: int | None = None,
                truncation: float = 1.0, truncation_latent: torch.Tensor | None = None,
                input_is_latent: bool = False, noise: Sequence[torch.Tensor | None] | None = None,
                randomize_noise: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Synthesise images; see the class docstring. ``randomize_noise=False`` uses the stored noise maps.

        ``truncation < 1`` pulls every given style towards ``truncation_latent`` (1, style_dim):
        ``w_avg + truncation * (w - w_avg)``. With two styles, slots ``< inject_index`` use the first.
        """
        self._check_styles(styles, input_is_latent)
        styles = list(styles) if input_is_latent else [self.style(s) for s in styles]
        if truncation < 1:
            if truncation_latent is None:
                raise ValueError("truncation < 1 needs truncation_latent (e.g. mean_latent(4096) or latent_avg)")
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        latent = self._broadcast(styles, inject_index)
        noise = self._noise_list(noise, randomize_noise)
        out = self.conv1(self.input(latent.shape[0]), latent[:, 0], noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for k, to_rgb in enumerate(self.to_rgbs):
            out = self.convs[2 * k](out, latent[:, i], noise[2 * k + 1])
            out = self.convs[2 * k + 1](out, latent[:, i + 1], noise[2 * k + 2])
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip, (latent if return_latents else None)


class ResBlock(nn.Module):
    """(conv3x3 -> blur + conv3x3/2) + (blur + conv1x1/2 skip), divided by sqrt(2): halves the resolution."""

    def __init__(self, in_ch: int, out_ch: int, blur_kernel: Sequence[float] = BLUR) -> None:
        super().__init__()
        self.conv1 = conv_layer(in_ch, in_ch, 3)
        self.conv2 = conv_layer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = conv_layer(in_ch, out_ch, 1, downsample=True, blur_kernel=blur_kernel, bias=False,
                               activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator: RGB (B, 3, size, size) in [-1, 1] -> logits (B, 1).

    The minibatch-stddev feature uses groups of ``min(B, 4)`` samples (members b, b + B/G, ...), so
    logits depend on the batch composition. When B is not divisible by that (the original then fails),
    the largest group size that divides B is used (1 for a prime B > 4: a constant 1e-4 feature).
    """

    def __init__(self, size: int, channel_multiplier: int = 2, blur_kernel: Sequence[float] = BLUR,
                 max_channels: int = 512) -> None:
        super().__init__()
        log_size = _log2_size(size)
        self.size = size
        ch = channels_for(channel_multiplier, max_channels)
        blocks: list[nn.Module] = [conv_layer(3, ch[size], 1)]
        in_ch = ch[size]
        for i in range(log_size, 2, -1):
            blocks.append(ResBlock(in_ch, ch[2 ** (i - 1)], blur_kernel))
            in_ch = ch[2 ** (i - 1)]
        self.convs = nn.Sequential(*blocks)
        self.stddev_group = 4
        self.final_conv = conv_layer(in_ch + 1, ch[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 4 * 4, ch[4], activation=True), EqualLinear(ch[4], 1))

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """The residual trunk: (B, 3, size, size) -> (B, C4, 4, 4), before the minibatch stddev."""
        if img.ndim != 4 or img.shape[1] != 3 or img.shape[2] != self.size or img.shape[3] != self.size:
            raise ValueError(f"expected images (B, 3, {self.size}, {self.size}), got {tuple(img.shape)}")
        return self.convs(img)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """RGB (B, 3, size, size) in [-1, 1] -> raw logits (B, 1) (real > fake after training)."""
        return self.logits_from_features(self.features(img))

    def logits_from_features(self, out: torch.Tensor) -> torch.Tensor:
        """Minibatch stddev + final conv + linears on trunk features (B, C4, 4, 4) -> logits (B, 1)."""
        b, c, h, w = out.shape
        group = min(b, self.stddev_group)
        while b % group:  # the original requires divisibility; take the largest group that divides B
            group -= 1
        sd = out.view(group, -1, 1, c, h, w)
        sd = torch.sqrt(sd.var(0, unbiased=False) + 1e-8).mean(dim=(2, 3, 4), keepdim=True).squeeze(2)
        out = torch.cat([out, sd.repeat(group, 1, h, w)], 1)
        out = self.final_conv(out)
        return self.final_linear(out.reshape(b, -1))


FFHQ = register_checkpoint(CheckpointEntry(
    name="stylegan2-ffhq-config-f",
    filename="stylegan2-ffhq-config-f.pt",
    url="https://drive.google.com/file/d/1EM87UquaoQmk17Q8d5kYIAHqu0dkYqdT/view",
    layout="torch.save dict: 'g_ema' = Generator(1024, 512, 8, channel_multiplier=2) state_dict (171 keys), "
           "'latent_avg' (512,), optionally 'g' (same layout) and 'd' = Discriminator(1024, 2) state_dict (64 keys)",
    licence="Nvidia Source Code License-NC (StyleGAN2 networks: research/evaluation use only)",
    model="stylegan2-generator",
    notes="Link given in the pSp README ('FFHQ StyleGAN ... taken from rosinality', 1024x1024). Or convert "
          "NVIDIA's stylegan2-ffhq-config-f.pkl with rosinality/stylegan2-pytorch convert_weight.py. "
          "No published sha256.",
))

register_model(ModelEntry("stylegan2-generator", "blendfix.nets.stylegan2:Generator",
                          "StyleGAN2 generator (rosinality layout)", (FFHQ.name,)))
register_model(ModelEntry("stylegan2-discriminator", "blendfix.nets.stylegan2:Discriminator",
                          "StyleGAN2 residual discriminator (rosinality layout)", (FFHQ.name,)))


def infer_config(g_state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Generator constructor options (size, style_dim, n_mlp, channel_multiplier, max_channels) of a g_ema state."""
    try:
        style_dim = g_state["style.1.weight"].shape[0]
        n_mlp = sum(1 for k in g_state if k.startswith("style.") and k.endswith(".weight"))
        n_blocks = sum(1 for k in g_state if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
        max_ch = g_state["input.input"].shape[1]
        res_ch = {2 ** (i + 3): g_state[f"to_rgbs.{i}.conv.weight"].shape[2] for i in range(n_blocks)}
    except KeyError as e:
        raise BlendfixError(f"not a StyleGAN2 generator state_dict: key {e} is missing") from None
    base = channels_for(1, 10 ** 6)
    mult = [c // base[r] for r, c in sorted(res_ch.items()) if r >= 64 and c < max_ch]
    return {"size": 2 ** (n_blocks + 2), "style_dim": style_dim, "n_mlp": n_mlp,
            "channel_multiplier": max(mult[0], 1) if mult else 2, "max_channels": max_ch}


def load_stylegan2(name_or_path: str | os.PathLike = FFHQ.name, device: str | torch.device = "cpu",
                   ) -> tuple[Generator, Discriminator | None, torch.Tensor | None]:
    """Load a converted checkpoint -> ``(G, D or None, latent_avg (1, style_dim) or None)``, eval mode on ``device``.

    ``name_or_path``: the registered name ``stylegan2-ffhq-config-f`` or a file path. The model size and
    widths are read from the weights. Needs only ``g_ema`` (falls back to ``g``); ``d`` and ``latent_avg``
    are returned when present. Raises MissingWeightsError (saying what to place where) when the file is absent.
    """
    ckpt = load_checkpoint(name_or_path)
    if not isinstance(ckpt, dict) or not ({"g_ema", "g"} & set(ckpt)):
        keys = list(ckpt)[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise BlendfixError(f"{name_or_path}: not a converted StyleGAN2 checkpoint (no 'g_ema' entry; found {keys})")
    g_state = ckpt["g_ema"] if "g_ema" in ckpt else ckpt["g"]
    cfg = infer_config(g_state)
    g = Generator(**cfg)
    _load_strict(g, g_state, name_or_path, "g_ema")
    d = None
    if "d" in ckpt:
        d = Discriminator(cfg["size"], cfg["channel_multiplier"], max_channels=cfg["max_channels"])
        _load_strict(d, ckpt["d"], name_or_path, "d")
        d = d.to(device).eval()
    avg = ckpt.get("latent_avg")
    avg = avg.reshape(1, -1).float().to(device) if avg is not None else None
    return g.to(device).eval(), d, avg


def _load_strict(module: nn.Module, state: dict, source: object, entry: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise BlendfixError(f"{source}: '{entry}' does not match the expected StyleGAN2 layout "
                            f"({str(e).splitlines()[0]}); check size / channel_multiplier") from e
