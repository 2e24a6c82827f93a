"""pSp's GradualStyleEncoder: IR-SE-50 feature pyramid -> 18 W+ style codes (Richardson et al., 2021).

Layout = the ``encoder.`` part of the published ``psp_ffhq_encode.pt`` (621 keys, 267M parameters).
:class:`GradualStyleEncoder` is the raw network: ``(B, 3, 256, 256)`` in ``[-1, 1]`` -> style
*offsets* ``(B, 18, 512)`` (pSp adds ``latent_avg`` afterwards). :class:`PSPEncoder` is the wrapper
the rest of blendfix uses: ``(B, 3, H, W)`` in ``[0, 1]`` -> W+ codes ``(B, 18, 512)`` ready for the
StyleGAN2 generator. :func:`load_psp_encoder` builds it from the checkpoint's own ``opts``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import load_checkpoint, strip_prefix
from ..errors import BlendfixError
from ..registry import CheckpointEntry, ModelEntry, checkpoint_path, register_checkpoint, register_model
from .irse import IR_SE_50_UNITS, IR_SE_50_WIDTHS, ir_se_body, stage_ends
from .irse import input_layer as make_input_layer

_COARSE, _MIDDLE = 3, 7  # styles [0, 3) read the 1/16 map, [3, 7) the 1/8 map, the rest the 1/4 map


class EqualLinear(nn.Module):
    """Equalised-learning-rate linear: ``x @ (W / sqrt(in)).T + b``; ``(B, in) -> (B, out)``."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.scale = 1.0 / math.sqrt(in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class StyleHead(nn.Module):
    """pSp's map2style: stride-2 conv3x3 + LeakyReLU(0.01) down to 1x1, then :class:`EqualLinear`.

    ``(B, in_ch, S, S) -> (B, out_ch)`` with ``S`` a power of two (``log2(S)`` convs).
    """

    def __init__(self, in_ch: int, out_ch: int, spatial: int) -> None:
        super().__init__()
        n = int(round(math.log2(spatial)))
        if n < 1 or 2**n != spatial:
            raise ValueError(f"style head input size must be a power of two >= 2, got {spatial}")
        layers: list[nn.Module] = []
        for i in range(n):
            layers += [nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, 2, 1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_ch, out_ch)
        self.out_ch = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).reshape(-1, self.out_ch))


class GradualStyleEncoder(nn.Module):
    """The pSp encoder. Defaults = the published FFHQ model (18 styles, IR-SE-50, 512-d, 256 px input).

    ``forward(x)``: ``x (B, in_channels, input_size, input_size)`` in ``[-1, 1]`` -> raw style offsets
    ``(B, n_styles, style_dim)`` (``latent_avg`` not added). Smaller ``widths``/``units``/
    ``input_size``/``n_styles`` give tiny random encoders for tests; the three pyramid taps are the
    ends of the last three stages (1/4, 1/8, 1/16 of the input).
    """

    def __init__(self, n_styles: int = 18, in_channels: int = 3, widths: tuple[int, ...] = IR_SE_50_WIDTHS,
                 units: tuple[int, ...] = IR_SE_50_UNITS, style_dim: int = 512, input_size: int = 256) -> None:
        super().__init__()
        if len(widths) != 4 or len(units) != 4:
            raise ValueError(f"the encoder has 4 stages; got widths {widths}, units {units}")
        if n_styles < 1 or input_size < 32 or 2 ** int(round(math.log2(input_size))) != input_size:
            raise ValueError(f"need n_styles >= 1 and a power-of-two input_size >= 32, got {n_styles}, {input_size}")
        self.n_styles, self.in_channels, self.input_size = n_styles, in_channels, input_size
        self.input_layer = make_input_layer(in_channels, widths[0])
        self.body = ir_se_body(widths, units)
        top = widths[3]
        sizes = (input_size // 16, input_size // 8, input_size // 4)
        self.styles = nn.ModuleList(
            StyleHead(top, style_dim, sizes[0] if i < _COARSE else sizes[1] if i < _MIDDLE else sizes[2])
            for i in range(n_styles)
        )
        self.latlayer1 = nn.Conv2d(widths[2], top, 1)
        self.latlayer2 = nn.Conv2d(widths[1], top, 1)
        self._taps = stage_ends(units)[1:]  # c1, c2, c3

    def pyramid(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Body features ``c1`` (1/4), ``c2`` (1/8), ``c3`` (1/16) of a checked input."""
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2:] != (self.input_size, self.input_size):
            raise ValueError(f"GradualStyleEncoder expects (B, {self.in_channels}, {self.input_size}, "
                             f"{self.input_size}) in [-1, 1], got {tuple(x.shape)}")
        x = self.input_layer(x)
        feats = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self._taps:
                feats.append(x)
        return feats[0], feats[1], feats[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1, c2, c3 = self.pyramid(x)
        codes = [self.styles[i](c3) for i in range(min(_COARSE, self.n_styles))]
        if self.n_styles > _COARSE:
            p2 = _upsample_add(c3, self.latlayer1(c2))
            codes += [self.styles[i](p2) for i in range(_COARSE, min(_MIDDLE, self.n_styles))]
        if self.n_styles > _MIDDLE:
            p1 = _upsample_add(p2, self.latlayer2(c1))
            codes += [self.styles[i](p1) for i in range(_MIDDLE, self.n_styles)]
        return torch.stack(codes, dim=1)


def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=y.shape[2:], mode="bilinear", align_corners=True) + y


class PSPEncoder(nn.Module):
    """Image -> W+: ``(B, 3, H, W)`` RGB in ``[0, 1]`` -> ``(B, n_styles, 512)`` codes for the generator.

    The image is resized to the encoder's input size (bilinear with antialiasing, close to pSp's PIL
    resize), mapped to ``[-1, 1]``, encoded, and ``latent_avg`` ``(n_styles, 512)`` is added when given
    (pSp's ``start_from_latent_avg``).
    """

    def __init__(self, encoder: GradualStyleEncoder, latent_avg: torch.Tensor | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("latent_avg", None if latent_avg is None else latent_avg.detach().float().clone(),
                             persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.encoder.in_channels:
            raise ValueError(f"PSPEncoder expects (B, {self.encoder.in_channels}, H, W) in [0, 1], "
                             f"got {tuple(images.shape)}")
        size = self.encoder.input_size
        x = images.float()
        if x.shape[2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        codes = self.encoder(x * 2.0 - 1.0)
        if self.latent_avg is not None:
            codes = codes + self.latent_avg.to(codes)
        return codes


# ----------------------------------------------------------------------------------------- loading


@dataclass
class PSPCheckpoint:
    """The parts of a pSp training checkpoint: full state_dict (``encoder.*``, ``decoder.*``), opts, latent_avg."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    opts: dict[str, Any]
    latent_avg: torch.Tensor | None


def read_psp_checkpoint(name_or_path: str | os.PathLike = "psp_ffhq_encode") -> PSPCheckpoint:
    """Load a pSp checkpoint safely (weights only); offline error naming what to place where if missing."""
    path = checkpoint_path(name_or_path)
    ckpt = load_checkpoint(name_or_path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise BlendfixError(f"{path}: not a pSp checkpoint (expected a dict with 'state_dict', 'opts', "
                            f"'latent_avg' as written by pixel2style2pixel's training code)")
    opts = ckpt.get("opts") or {}
    opts = dict(vars(opts)) if not isinstance(opts, dict) else dict(opts)
    latent = ckpt.get("latent_avg")
    return PSPCheckpoint(path, ckpt["state_dict"], opts, latent if isinstance(latent, torch.Tensor) else None)


def n_styles_from_opts(opts: dict[str, Any]) -> int:
    """``2 * log2(output_size) - 2`` (18 for 1024); pSp fills in ``output_size=1024`` when absent."""
    size = int(opts.get("output_size", 1024))
    if size < 4 or 2 ** int(round(math.log2(size))) != size:
        raise ValueError(f"pSp opts: output_size must be a power of two, got {size}")
    return 2 * int(round(math.log2(size))) - 2


def encoder_arch(enc_state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Constructor widths/units/style_dim/input_size read off an encoder state_dict's shapes.

    Stages are found where the unit width changes, so stage widths must increase (they do in IR-SE-50).
    """
    try:
        depths = []
        i = 0
        while f"body.{i}.res_layer.1.weight" in enc_state:
            depths.append(int(enc_state[f"body.{i}.res_layer.1.weight"].shape[0]))
            i += 1
        widths, units = [], []
        for d in depths:
            if widths and widths[-1] == d:
                units[-1] += 1
            else:
                widths.append(d)
                units.append(1)
        n_convs = len({m.group(1) for k in enc_state if (m := re.match(r"styles\.0\.convs\.(\d+)\.weight$", k))})
        return {"widths": tuple(widths), "units": tuple(units),
                "style_dim": int(enc_state["styles.0.linear.weight"].shape[0]), "input_size": 16 * 2**n_convs}
    except KeyError as e:
        raise BlendfixError(f"not a GradualStyleEncoder state_dict: key {e} is missing") from e


def build_encoder(opts: dict[str, Any], enc_state: dict[str, torch.Tensor]) -> GradualStyleEncoder:
    """The encoder pSp's ``opts`` describe, loaded strictly from ``enc_state`` (``encoder.`` prefix removed)."""
    enc_type = opts.get("encoder_type", "GradualStyleEncoder")
    if enc_type != "GradualStyleEncoder":
        raise BlendfixError(f"pSp encoder_type {enc_type!r} is not supported; blendfix implements "
                            f"GradualStyleEncoder (the FFHQ inversion model psp_ffhq_encode.pt)")
    if opts.get("learn_in_w", False):
        raise BlendfixError("pSp checkpoints trained with learn_in_w=True are not supported")
    arch = encoder_arch(enc_state)
    with torch.device("meta"):
        enc = GradualStyleEncoder(n_styles_from_opts(opts), int(opts.get("input_nc", 3)), **arch)
    load_strict(enc, enc_state, "pSp encoder")
    return enc.eval()


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``load_state_dict(strict=True, assign=True)`` with a short user-facing error on mismatch."""
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as e:
        lines = str(e).splitlines()
        raise BlendfixError(f"{what}: the checkpoint does not match the architecture: {' '.join(lines[:3])[:500]}") \
            from e


def load_psp_encoder(name_or_path: str | os.PathLike = "psp_ffhq_encode",
                     device: str | torch.device = "cpu") -> PSPEncoder:
    """Registered name or file -> :class:`PSPEncoder` in eval mode on ``device`` (with ``latent_avg``).

    Reads the checkpoint's ``opts`` (``encoder_type``, ``input_nc``, ``output_size``,
    ``start_from_latent_avg``, ``learn_in_w``); raises :class:`~blendfix.errors.MissingWeightsError`
    with the offline instruction when the file is absent.
    """
    ck = read_psp_checkpoint(name_or_path)
    enc = build_encoder(ck.opts, strip_prefix(ck.state_dict, "encoder."))
    latent = None
    if ck.opts.get("start_from_latent_avg", True):
        if ck.latent_avg is None:
            raise BlendfixError(f"{ck.path}: opts ask for start_from_latent_avg but the file has no 'latent_avg'")
        latent = ck.latent_avg.reshape(-1, ck.latent_avg.shape[-1]).expand(enc.n_styles, -1)
    return PSPEncoder(enc, latent).to(device).eval()


register_model(ModelEntry(
    name="psp_encoder",
    builder="blendfix.nets.psp:load_psp_encoder",
    description="pSp GradualStyleEncoder (IR-SE-50 pyramid): aligned face (B,3,H,W) [0,1] -> W+ (B,18,512)",
    checkpoints=("psp_ffhq_encode",),
))

register_checkpoint(CheckpointEntry(
    name="psp_ffhq_encode",
    filename="psp_ffhq_encode.pt",
    url="https://drive.google.com/file/d/1bMTNWkh5LArlaWSc_wa8VKyq2V42T2z0/view?usp=sharing",
    layout="torch.save dict: 'state_dict' (792 keys: 621 'encoder.' GradualStyleEncoder(50,'ir_se') + 171 "
           "'decoder.' StyleGAN2 Generator(1024,512,8)), 'opts' (dict of training args), 'latent_avg' (18,512)",
    licence="MIT (eladrich/pixel2style2pixel); trained on FFHQ (CC BY-NC-SA 4.0)",
    model="psp_encoder",
    sha256="f786ac5cf18fcdbc5c57c9f3f12cbedca69381fbdf5694dd132294e3133749d7",
    notes="pSp FFHQ inversion model (github.com/eladrich/pixel2style2pixel, README 'Pretrained Models'; also "
          "linked from HaoruiSong622/Editing-Out-of-Domain). sha256 and size 1,201,515,631 bytes as recorded by "
          "the Hugging Face mirror trysem/pixel2style2pixel; pass the file path instead of the name to skip the "
          "check for a differently re-saved copy. The decoder part is the StyleGAN2 FFHQ generator.",
))
