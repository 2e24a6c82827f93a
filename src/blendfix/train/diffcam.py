"""Training Diff-CAM on pairs made on the fly by a StyleGAN2 generator (EOGI's ``trainerDA.py`` recipe).

Each step draws ``z ~ N(0, I)``, maps it to ``w``, picks a random direction ``k`` among the available
ones and renders ``I' = G(w)`` and ``T = G(w + alpha * n_k / ||n_k||_F)``; Diff-CAM learns to name
``k`` from ``(I', T)`` with cross-entropy. Adam (betas 0.9, 0.99) at 1e-4, cosine-annealed to 1e-7 over
the run. Classes: a direction file whose stem is one of EOGI's names (``Bushy_Eyebrows``, ``Beard``,
``Old``, ``Smiling``, ...) gets EOGI's class index, so ``diffcam_mask(model, ..., "beard")`` means
the same for a model trained here as for the published one; other files take the free indices.

Run folder::

    OUT/config.yaml                the resolved config (+ classes, generator, directions)
    OUT/classes.json               class index -> direction file
    OUT/metrics.jsonl              one JSON line per logged step
    OUT/checkpoints/step_XXXXXXXX.pt   raw Diff-CAM state_dicts (the diff_cam_weight.pt layout)
    OUT/diffcam.pt                 the final state_dict
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import load_checkpoint
from ..config import save_config
from ..device import resolve_device
from ..edit.directions import ATTRIBUTE_DIRECTIONS, DEFAULT_ALPHA, direction_path, normalise_direction
from ..edit.directions import read_direction_file as read_direction
from ..errors import BlendfixError
from ..nets.diffcam import DIRECTION_CLASSES, DiffCAM, resnet_to_diffcam
from ..nets.resnet_bottleneck import RESNET101_LAYERS


@dataclass
class DiffCAMTrainConfig:
    """Settings of ``blendfix train-diffcam`` (saved as ``config.yaml`` in the run folder)."""

    generator: str = "stylegan2-ffhq-config-f"  # registered StyleGAN2 checkpoint name or file
    directions: str = ""  # folder of .npy/.pt directions; "" = the registered EOGI files for the 4 attributes
    steps: int = 100_000
    batch_size: int = 8
    lr: float = 1e-4
    lr_min: float = 1e-7
    alpha: float = DEFAULT_ALPHA
    image_size: int = 256  # Diff-CAM input size; generator images are area-pooled to it
    truncation: float = 1.0  # psi for the random w (1 = none)
    randomize_noise: bool = True  # fresh StyleGAN noise per image, as EOGI's decoder calls
    num_classes: int = 17
    layers: tuple[int, ...] = RESNET101_LAYERS
    width: int = 64
    split: int = 10
    init: str = ""  # start from a Diff-CAM state_dict (e.g. diff_cam_weight.pt) or a torchvision ResNet file
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    save_every: int = 5000

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type == "float" and isinstance(v, str):  # YAML reads "1e-3" as a string
                try:
                    setattr(self, f.name, float(v))
                except ValueError:
                    raise ValueError(f"config {f.name}: expected a number, got {v!r}") from None
        positive = ("steps", "batch_size", "image_size", "num_classes", "width", "log_every", "save_every")
        bad = [n for n in positive if not isinstance(getattr(self, n), int) or getattr(self, n) < 1]
        if bad or not 0 < self.truncation <= 1 or self.lr <= 0 or self.lr_min < 0:
            raise ValueError(f"config: invalid values for {bad or ['truncation/lr/lr_min']}")


@dataclass
class DirectionBank:
    """Normalised directions ``(K, n_latent, D)`` and the Diff-CAM class of each."""

    directions: torch.Tensor
    classes: torch.Tensor  # (K,) int64
    names: list[str]


def direction_files(folder: str) -> list[Path]:
    """The direction files to train on: every ``.npy``/``.pt`` in ``folder``, or the registered EOGI ones."""
    if folder:
        files = sorted(p for p in Path(folder).iterdir() if p.suffix in (".npy", ".pt", ".pth"))
        if not files:
            raise BlendfixError(f"{folder}: no .npy/.pt direction files here")
        return files
    return [direction_path(name) for name in sorted(ATTRIBUTE_DIRECTIONS.values())]


def assign_classes(stems: list[str], num_classes: int) -> list[int]:
    """EOGI's index for EOGI names; the other stems take the free indices in sorted order."""
    fixed = {s: DIRECTION_CLASSES[s] for s in stems if s in DIRECTION_CLASSES}
    free = iter(i for i in range(num_classes) if i not in fixed.values())
    out = []
    for s in stems:
        idx = fixed[s] if s in fixed else next(free, None)
        if idx is None or idx >= num_classes:
            raise BlendfixError(f"{len(stems)} directions do not fit in {num_classes} classes (or {s} needs "
                                f"class {idx}); raise num_classes")
        out.append(idx)
    return out


def load_bank(files: list[Path], n_latent: int, dim: int, num_classes: int) -> DirectionBank:
    """Read, check and normalise the direction files for a generator with ``n_latent`` x ``dim`` W+ codes."""
    dirs = []
    for f in files:
        d = read_direction(f, dim)
        if d.shape[0] not in (1, n_latent):
            raise BlendfixError(f"{f}: {d.shape[0]} style rows, the generator has {n_latent}")
        dirs.append(normalise_direction(d, n_latent).float())
    stems = [f.stem for f in files]
    return DirectionBank(torch.stack(dirs), torch.tensor(assign_classes(stems, num_classes)), stems)


class PairSampler:
    """Batches ``x (B, 6, S, S)`` = [I', T] in ``[-1, 1]`` with their class labels ``(B,)``."""

    def __init__(self, generator: nn.Module, bank: DirectionBank, cfg: DiffCAMTrainConfig,
                 w_avg: torch.Tensor | None = None) -> None:
        self.g, self.bank, self.cfg = generator, bank, cfg
        self.w_avg = w_avg
        if cfg.truncation < 1 and w_avg is None:
            self.w_avg = generator.mean_latent(4096)

    def _render(self, w: torch.Tensor) -> torch.Tensor:
        img, _ = self.g([w], input_is_latent=True, randomize_noise=self.cfg.randomize_noise)
        s = self.cfg.image_size
        if img.shape[-1] != s:
            img = F.adaptive_avg_pool2d(img, s) if img.shape[-1] > s else \
                F.interpolate(img, size=(s, s), mode="bilinear", align_corners=False)
        return img

    @torch.no_grad()
    def sample(self, batch: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        dev = self.bank.directions.device
        z = torch.randn(batch, self.g.style_dim, generator=rng).to(dev)
        w = self.g.get_latent(z)
        if self.cfg.truncation < 1:
            w = self.w_avg + self.cfg.truncation * (w - self.w_avg)
        w = w[:, None].expand(-1, self.g.n_latent, -1)
        k = torch.randint(len(self.bank.names), (batch,), generator=rng).to(dev)
        edited = w + self.cfg.alpha * self.bank.directions[k]
        return torch.cat([self._render(w), self._render(edited)], dim=1), self.bank.classes.to(dev)[k]


def cosine_lr(step: int, total: int, lr: float, lr_min: float) -> float:
    """Cosine annealing from ``lr`` at step 0 to ``lr_min`` at ``total`` (one cycle)."""
    t = min(step, total) / max(total, 1)
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * t))


@torch.no_grad()
def evaluate(model: DiffCAM, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (eval mode) on fixed ``(x, labels)`` batches."""
    was_training = model.training
    model.eval()
    losses, hits, n = 0.0, 0, 0
    for x, y in batches:
        logits = model(x)
        losses += float(F.cross_entropy(logits, y, reduction="sum"))
        hits += int((logits.argmax(1) == y).sum())
        n += len(y)
    model.train(was_training)
    return losses / n, hits / n


def build_model(cfg: DiffCAMTrainConfig) -> DiffCAM:
    """A fresh Diff-CAM of the config's size, optionally initialised from ``cfg.init``."""
    model = DiffCAM(cfg.num_classes, tuple(cfg.layers), cfg.width, cfg.split)
    if cfg.init:
        state = load_checkpoint(cfg.init)
        if isinstance(state, dict) and "fc.weight" in state and "shared.0.weight" in state:
            model.load_state_dict(state, strict=True)
        else:  # a torchvision ResNet (ImageNet) state_dict: backbone only, new fc
            res = model.load_state_dict(resnet_to_diffcam(state, cfg.split, tuple(cfg.layers)), strict=False)
            bad = [k for k in res.missing_keys if not k.startswith("fc.")] + list(res.unexpected_keys)
            if bad:
                raise BlendfixError(f"{cfg.init}: does not match a ResNet of layers {tuple(cfg.layers)}: {bad[:4]}")
    return model


def save_state(model: nn.Module, path: Path) -> Path:
    """Write the raw state_dict atomically (the diff_cam_weight.pt layout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    os.replace(tmp, path)
    return path


def train_diffcam(cfg: DiffCAMTrainConfig, out_dir: str | os.PathLike, generator: nn.Module | None = None,
                  model: DiffCAM | None = None, log: Callable[[dict], None] | None = None) -> Path:
    """Train Diff-CAM and write the run folder; returns the final checkpoint ``out_dir/diffcam.pt``.

    ``generator``: a StyleGAN2 ``Generator`` (else loaded from ``cfg.generator``); ``model``: a Diff-CAM
    to train (else built from the config). ``log`` receives each logged metrics dict.
    """
    out = Path(out_dir)
    if (out / "config.yaml").exists():
        raise BlendfixError(f"{out}: already holds a training run (config.yaml); choose another output folder")
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    w_avg = None
    if generator is None:
        from ..nets.stylegan2 import load_stylegan2
        generator, _, w_avg = load_stylegan2(cfg.generator, device)
    generator = generator.to(device).eval().requires_grad_(False)
    files = direction_files(cfg.directions)
    bank = load_bank(files, generator.n_latent, generator.style_dim, cfg.num_classes)
    bank.directions = bank.directions.to(device)
    model = (model if model is not None else build_model(cfg)).to(device)
    if model.num_classes != cfg.num_classes:
        raise BlendfixError(f"the model has {model.num_classes} classes, the config {cfg.num_classes}")
    sampler = PairSampler(generator, bank, cfg, w_avg)
    rng = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    classes = {int(c): str(f) for c, f in zip(bank.classes, files, strict=True)}
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml", extra={"run": {"classes": classes, "device": str(device)}})
    (out / "classes.json").write_text(json.dumps(classes, indent=2))
    model.train()
    with (out / "metrics.jsonl").open("a") as metrics:
        for step in range(1, cfg.steps + 1):
            t0 = time.perf_counter()
            x, y = sampler.sample(cfg.batch_size, rng)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for group in opt.param_groups:
                group["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.lr_min)
            if step % cfg.log_every == 0 or step == cfg.steps:
                rec = {"step": step, "loss": loss.item(), "acc": float((logits.argmax(1) == y).float().mean()),
                       "lr": opt.param_groups[0]["lr"], "sec_per_step": time.perf_counter() - t0}
                metrics.write(json.dumps(rec) + "\n")
                metrics.flush()
                if log:
                    log(rec)
            if step % cfg.save_every == 0:
                save_state(model, out / "checkpoints" / f"step_{step:08d}.pt")
    model.eval()
    return save_state(model, out / "diffcam.pt")
