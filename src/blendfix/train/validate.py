"""Validation (PSNR against the target) and run logging (metrics.jsonl + TensorBoard)."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.dataset import BlendDataset
from ..io import write_image
from ..nets.maresunet import MAResUNet
from ..tensors import tensor_to_image
from .losses import gradient_loss


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in ``[0, 1]`` (any equal shapes); ``inf`` when identical."""
    mse = float(torch.mean((a.double() - b.double()) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


@dataclass
class ValResult:
    metrics: dict[str, float]
    grid: torch.Tensor | None  # (3, n*H, 4*W) in [0, 1]: fused | original | output | target


@torch.no_grad()
def validate(model: MAResUNet, dataset: BlendDataset, device: torch.device, max_items: int = 0,
             grid_images: int = 4, autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
             ) -> ValResult:
    """Mean PSNR of the cleaned output and of the fused input against the target over the first items,
    and ``grad_l1`` (``grad_l1_input``): the mean L1 difference of the output's (the fused input's) and the
    target's image gradients, in [0, 1] units.

    The model is put in eval mode for the pass and returned to its previous mode.
    """
    was_training = model.training
    model.eval()
    n = len(dataset) if max_items <= 0 else min(max_items, len(dataset))
    out_psnr, in_psnr, grad_err, grad_in, rows = [], [], [], [], []
    try:
        for i in range(n):
            s = dataset[i]
            fused, original, target = (s[k][None].to(device) for k in ("fused", "original", "target"))
            with autocast():
                out = model.clean(fused, original).float()
            out_psnr.append(psnr(out, target))
            in_psnr.append(psnr(fused, target))
            grad_err.append(float(gradient_loss(out, target)))
            grad_in.append(float(gradient_loss(fused, target)))
            if len(rows) < grid_images:
                rows.append(torch.cat([fused[0], original[0], out[0], target[0]], -1).cpu())
    finally:
        model.train(was_training)
    sizes = {tuple(r.shape) for r in rows}
    grid = torch.cat(rows, -2) if rows and len(sizes) == 1 else None
    finite = [p for p in out_psnr if math.isfinite(p)]
    metrics = {"psnr": sum(finite) / max(len(finite), 1), "psnr_input": sum(in_psnr) / max(len(in_psnr), 1),
               "grad_l1": sum(grad_err) / max(len(grad_err), 1), "grad_l1_input": sum(grad_in) / max(len(grad_in), 1),
               "items": float(n)}
    return ValResult(metrics, grid)


class Logger:
    """Appends JSON lines to ``metrics.jsonl``, mirrors scalars and image grids to TensorBoard."""

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        """``purge_step``: on resume, TensorBoard hides events of this step and later that an earlier
        (killed) process wrote, so no step appears twice."""
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=purge_step)
        except ImportError:
            warnings.warn("tensorboard is not installed (extra 'train'): logging to metrics.jsonl only",
                          stacklevel=2)

    def scalars(self, step: int, split: str, values: dict[str, float]) -> None:
        rec: dict[str, Any] = {"step": step, "split": split, **{k: float(v) for k, v in values.items()}}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"{split}/{k}", v, step)
        shown = " ".join(f"{k}={v:.4g}" for k, v in values.items())
        print(f"[step {step}] {split}: {shown}", file=sys.stderr, flush=True)

    def image(self, step: int, grid: torch.Tensor | None) -> None:
        if grid is None:
            return
        write_image(self.run_dir / "val" / f"step_{step:08d}.png", tensor_to_image(grid.clamp(0, 1)))
        if self.tb is not None:
            self.tb.add_image("val/fused|original|output|target", grid.clamp(0, 1), step)

    def flush(self) -> None:
        if self.tb is not None:
            self.tb.flush()
