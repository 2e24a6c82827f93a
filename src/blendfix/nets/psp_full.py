"""The whole pSp inversion network: GradualStyleEncoder + StyleGAN2 decoder (+ 4x face pooling).

State_dict layout = ``psp_ffhq_encode.pt['state_dict']``: ``encoder.*`` (GradualStyleEncoder, see
:mod:`blendfix.nets.psp`) and ``decoder.*`` (``Generator(1024, 512, 8)``, see
:mod:`blendfix.nets.stylegan2`). ``latent_avg`` ``(n_styles, 512)`` is held as a non-persistent buffer,
as in the checkpoint, where it sits beside the state_dict.

Ranges: :meth:`PSPInversion.forward` takes pSp's own input, ``(B, 3, 256, 256)`` in ``[-1, 1]``, and
returns decoder images nominally in ``[-1, 1]`` (unclamped). :meth:`PSPInversion.invert` takes the
package convention, ``(B, 3, H, W)`` in ``[0, 1]``, and returns W+ codes.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import strip_prefix
from ..errors import BlendfixError
from .psp import GradualStyleEncoder, PSPEncoder, build_encoder, read_psp_checkpoint
from .stylegan2 import Generator, infer_config


class PSPInversion(nn.Module):
    """pSp for StyleGAN inversion (``start_from_latent_avg=True``, ``learn_in_w=False``).

    ``encoder`` must produce ``decoder.n_latent`` styles of ``decoder.style_dim`` features.
    """

    def __init__(self, encoder: GradualStyleEncoder, decoder: Generator, latent_avg: torch.Tensor | None) -> None:
        super().__init__()
        if encoder.n_styles != decoder.n_latent:
            raise ValueError(f"encoder gives {encoder.n_styles} styles but the decoder takes {decoder.n_latent}")
        self.encoder, self.decoder = encoder, decoder
        if latent_avg is not None:
            latent_avg = latent_avg.detach().float().reshape(-1, decoder.style_dim).expand(decoder.n_latent, -1)
            latent_avg = latent_avg.clone()
        self.register_buffer("latent_avg", latent_avg, persistent=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """pSp input ``(B, 3, 256, 256)`` in ``[-1, 1]`` -> W+ codes ``(B, n_styles, 512)`` (+ latent_avg)."""
        codes = self.encoder(x)
        return codes if self.latent_avg is None else codes + self.latent_avg.to(codes)

    def invert(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in ``[0, 1]`` (aligned faces) -> W+ codes; resized to the encoder's input size."""
        return PSPEncoder(self.encoder, self.latent_avg)(images)

    def decode(self, codes: torch.Tensor, randomize_noise: bool = False) -> torch.Tensor:
        """W+ ``(B, n_styles, 512)`` -> decoder images ``(B, 3, S, S)``, about ``[-1, 1]``, unclamped."""
        return self.decoder([codes], input_is_latent=True, randomize_noise=randomize_noise)[0]

    def forward(self, x: torch.Tensor, resize: bool = True, randomize_noise: bool = False,
                return_latents: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """pSp's forward: ``x`` as in :meth:`encode` -> ``(images, codes or None)``.

        ``resize=True`` averages the decoder output down to 256x256 (pSp's ``face_pool``, a 4x4 box
        average for 1024). ``randomize_noise=False`` (pSp's inference setting) uses the stored noise maps.
        """
        codes = self.encode(x)
        images = self.decode(codes, randomize_noise)
        if resize:
            images = F.adaptive_avg_pool2d(images, (256, 256))
        return images, (codes if return_latents else None)


def load_psp_full(name_or_path: str | os.PathLike = "psp_ffhq_encode", device: str | torch.device = "cpu",
                  ) -> PSPInversion:
    """Registered name or file of a pSp checkpoint -> :class:`PSPInversion` (eval mode on ``device``).

    Reads the file once; encoder options come from its ``opts``, the decoder size from its weights.
    Raises MissingWeightsError (saying what to place where) when the file is absent.
    """
    ck = read_psp_checkpoint(name_or_path)
    encoder = build_encoder(ck.opts, strip_prefix(ck.state_dict, "encoder."))
    dec_state = strip_prefix(ck.state_dict, "decoder.")
    if not dec_state:
        raise BlendfixError(f"{ck.path}: the pSp checkpoint has no 'decoder.' weights")
    with torch.device("meta"):
        decoder = Generator(**infer_config(dec_state))
    try:
        decoder.load_state_dict(dec_state, strict=True, assign=True)
    except RuntimeError as e:
        raise BlendfixError(f"{ck.path}: decoder weights do not match StyleGAN2 "
                            f"({' '.join(str(e).splitlines()[:2])[:400]})") from e
    latent = None
    if ck.opts.get("start_from_latent_avg", True):
        if ck.latent_avg is None:
            raise BlendfixError(f"{ck.path}: opts ask for start_from_latent_avg but the file has no 'latent_avg'")
        latent = ck.latent_avg
    return PSPInversion(encoder, decoder, latent).to(device).eval()
