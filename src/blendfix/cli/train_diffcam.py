"""`blendfix train-diffcam -o RUN_DIR`: train Diff-CAM on generator-made (I', T) pairs."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import load_config
from ..train.diffcam import DiffCAMTrainConfig, train_diffcam
from .common import option


@click.command("train-diffcam")
@option("-o", "--output", "out_dir", aliases=("--out",), required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Run folder to create (config.yaml, metrics.jsonl, checkpoints/, diffcam.pt).")
@option("--directions", "directions", aliases=("-i",), default=None,
              help="Folder of .npy/.pt latent directions (one class each; EOGI names keep EOGI's class index). "
                   "Default: the registered EOGI files for eyebrows, beard, aging, smile.")
@click.option("--generator", default=None, help="StyleGAN2 checkpoint name or file (default stylegan2-ffhq-config-f).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Training steps (default: the config's).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="(I', T) pairs per step.")
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(["fp32"]),
              help="Diff-CAM trains in float32 (no mixed precision).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="YAML file with DiffCAMTrainConfig fields.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
def cmd(out_dir: Path, directions: str | None, generator: str | None, steps: int | None, batch_size: int | None,
        device: str | None, precision: str, config_file: Path | None, overrides: tuple[str, ...]) -> int:
    """Train the Diff-CAM difference classifier: random z -> w, random direction k, I' = G(w),
    T = G(w + alpha * n_k); cross-entropy on k; Adam 1e-4 cosine-annealed to 1e-7."""
    extra = [f"{k}={v}" for k, v in (("directions", directions), ("generator", generator), ("steps", steps),
                                     ("batch_size", batch_size), ("device", device)) if v is not None]
    cfg = load_config(DiffCAMTrainConfig, config_file, [*overrides, *extra])

    def show(rec: dict) -> None:
        click.echo(f"step {rec['step']:>7d}  loss {rec['loss']:.4f}  acc {rec['acc']:.3f}  lr {rec['lr']:.2e}  "
                   f"{rec['sec_per_step']:.2f}s/step", err=True)

    final = train_diffcam(cfg, out_dir, log=show)
    click.echo(f"Diff-CAM weights written to {final}", err=True)
    return 0
