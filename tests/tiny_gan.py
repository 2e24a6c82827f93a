"""Tiny random GAN-editor checkpoints in the published file layouts (pSp, Diff-CAM, an EOGI direction)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from blendfix.nets.diffcam import DiffCAM
from blendfix.nets.psp import GradualStyleEncoder
from blendfix.nets.stylegan2 import Generator


def write_tiny_gan(root: Path, weights: Path | None = None) -> tuple[Path, Path, Path]:
    """(pSp file, Diff-CAM file, weights folder holding directions/eogi/Smiling.npy).

    The pSp file has psp_ffhq_encode.pt's layout (its decoder is a 32x32 generator), the Diff-CAM file
    diff_cam_weight.pt's; both are written into ``root``, the direction into ``weights`` (default
    ``root/weights``). Pass ``weights=root`` to get every file where the registry looks for it.
    """
    torch.manual_seed(0)
    g = Generator(32, style_dim=16, n_mlp=2, channel_multiplier=1, max_channels=16)
    for name, p in g.named_parameters():
        if name.endswith("noise.weight"):
            p.data.fill_(0.3)
    enc = GradualStyleEncoder(n_styles=g.n_latent, widths=(8, 16, 24, 32), units=(1, 1, 1, 1), style_dim=16,
                              input_size=32)
    state = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    state.update({f"decoder.{k}": v for k, v in g.state_dict().items()})
    psp = root / "psp_ffhq_encode.pt"
    torch.save({"state_dict": state, "latent_avg": torch.randn(g.n_latent, 16) * 0.5,
                "opts": {"encoder_type": "GradualStyleEncoder", "output_size": 32, "start_from_latent_avg": True}},
               psp)
    cam = root / "diff_cam_weight.pt"
    torch.save(DiffCAM(num_classes=17, layers=(1, 1, 2, 1), width=4, split=1).state_dict(), cam)
    weights = weights or root / "weights"
    (weights / "directions" / "eogi").mkdir(parents=True, exist_ok=True)
    np.save(weights / "directions" / "eogi" / "Smiling.npy", np.random.default_rng(1).normal(size=(g.n_latent, 16)))
    return psp, cam, weights
