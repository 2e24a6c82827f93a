"""Training loop of the artifact-suppression network (generator MAResU-Net + StyleGAN2 discriminator).

One step (the released code's order): generator forward on ``[F, I]``; generator loss and Adam
step; discriminator loss ``BCE(D(target), 1) + BCE(D(G(x).detach()), 0)`` and its Adam step; both
cosine schedules step. Images enter the networks in ``[-1, 1]``.

* AMP (fp16 autocast + gradient scaling) on CUDA.
* DDP when started by ``torchrun`` (``WORLD_SIZE`` > 1); rank 0 logs, validates and saves.
* Resume continues bit-exactly on one CPU process: checkpoints hold model, discriminator,
  optimisers, schedulers, scalers, step and RNG states, and the data order is a pure function of
  the step (:class:`~blendfix.data.dataset.InfiniteSampler`).
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from .. import __version__
from ..config import save_config
from ..data.dataset import BlendDataset, InfiniteSampler, collate
from ..device import resolve_device
from ..nets.maresunet import count_parameters
from .builders import DiscFactory, build_model, build_perceptual, default_discriminator
from .config import TrainConfig, check, effective_weights
from .losses import GANLoss, GeneratorLoss
from .runs import (
    load_training_checkpoint,
    remove_partial_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
    truncate_log,
)
from .validate import Logger, validate


class Trainer:
    """Builds everything from a config and runs steps; see the module docstring."""

    def __init__(self, cfg: TrainConfig, data_dir: str | os.PathLike, run_dir: str | os.PathLike,
                 resume: str | os.PathLike | None = None, disc_factory: DiscFactory = default_discriminator) -> None:
        self.cfg = check(cfg)
        self.run_dir = Path(run_dir)
        self.rank, self.world = _dist_info()
        self.device = _rank_device(resolve_device(cfg.device), self.rank)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed + self.rank)
        random.seed(cfg.seed + self.rank)  # Python and numpy RNGs too: checkpoints save all three states
        np.random.seed(cfg.seed + self.rank)
        if cfg.amp == "on" and self.device.type != "cuda":
            raise ValueError(f"amp: on needs a CUDA device (this run uses {self.device}); use amp: auto or off")
        self.amp = cfg.amp == "on" or (cfg.amp == "auto" and self.device.type == "cuda")
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self._build_data(data_dir)
        self._build_nets(disc_factory)
        self.step = 0
        #: the latest validation metrics (saved in checkpoints; ``export`` and ``clean`` read them)
        self.last_val: dict[str, float] = {}
        if resume is not None:
            self._load(load_training_checkpoint(resume))
        if self.rank == 0:
            remove_partial_checkpoints(self.run_dir)
            if resume is not None:  # what a killed run logged after its last checkpoint is logged again
                truncate_log(self.run_dir, self.step)
        self.logger = Logger(self.run_dir, purge_step=self.step + 1 if resume is not None else None) \
            if self.rank == 0 else None

    # ----------------------------------------------------------------- set-up
    def _build_data(self, data_dir: str | os.PathLike) -> None:
        d = self.cfg.data
        self.data_dir = Path(data_dir)
        self.train_set = BlendDataset(data_dir, "train", crop=d.crop, flip=d.flip, val_fraction=d.val_fraction,
                                      split_seed=d.split_seed, target=d.target, truth_share=d.truth_share)
        self.val_set = None
        if d.val_fraction > 0:
            try:
                self.val_set = BlendDataset(data_dir, "val", val_fraction=d.val_fraction, split_seed=d.split_seed,
                                            target=d.target)
            except ValueError as e:
                self.notes.append(f"no validation: {e}")
        h, w = self.train_set[0]["target"].shape[-2:]
        if d.crop is None and (h != w or h % 32):
            raise ValueError(f"{data_dir}: images are {h}x{w}; training on whole images needs a square side that is "
                             f"a multiple of 32, so set data.crop (e.g. {max(32, min(h, w) // 32 * 32)})")
        self.size = d.crop or int(h)

    def _build_nets(self, disc_factory: DiscFactory) -> None:
        cfg, dev = self.cfg, self.device
        model, notes = build_model(cfg)
        self.notes += notes
        perceptual, notes = build_perceptual(cfg)
        self.warnings += notes
        for w in self.warnings:
            if self.rank == 0:
                print(f"\n{'!' * 78}\nWARNING: {w}\n{'!' * 78}\n", file=sys.stderr)
            warnings.warn(w, stacklevel=2)
        weights = effective_weights(cfg.loss)
        if weights["adversarial"] and self.size & (self.size - 1):
            raise ValueError(f"the StyleGAN2 discriminator needs a power-of-two training size, got {self.size}; "
                             f"set data.crop to 64, 128, 256, ... or loss.adversarial to 0")
        self.model = model.to(dev)
        self.disc: nn.Module | None = disc_factory(self.size, cfg).to(dev) if weights["adversarial"] else None
        self.gen_loss = GeneratorLoss(cfg.loss.mse, cfg.loss.perceptual, cfg.loss.adversarial, cfg.loss.gradient,
                                      perceptual.to(dev) if perceptual else None, GANLoss(cfg.loss.adversarial_inner))
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=o.lr, betas=o.betas)
        self.sched_g = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt_g, o.iterations, eta_min=o.lr_min)
        self.scaler_g = torch.amp.GradScaler(dev.type, enabled=self.amp)
        if self.disc is not None:
            self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=o.lr, betas=o.betas)
            self.sched_d = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt_d, o.iterations, eta_min=o.lr_min)
            self.scaler_d = torch.amp.GradScaler(dev.type, enabled=self.amp)
        self.g_ddp, self.d_ddp = self.model, self.disc
        if self.world > 1:
            ids = [dev.index] if dev.type == "cuda" else None
            self.g_ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            if self.disc is not None:
                self.d_ddp = nn.parallel.DistributedDataParallel(self.disc, device_ids=ids)

    # ------------------------------------------------------------ state I/O
    def state_dict(self) -> dict[str, Any]:
        state = {"step": self.step, "model": self.model.state_dict(), "model_config": self.model.config,
                 "opt_g": self.opt_g.state_dict(), "sched_g": self.sched_g.state_dict(),
                 "scaler_g": self.scaler_g.state_dict(), "rng": rng_state(), "blendfix_version": __version__,
                 "val": dict(self.last_val)}
        if self.disc is not None:
            state.update(disc=self.disc.state_dict(), opt_d=self.opt_d.state_dict(),
                         sched_d=self.sched_d.state_dict(), scaler_d=self.scaler_d.state_dict())
        return state

    def _load(self, state: dict[str, Any]) -> None:
        self.last_val = dict(state.get("val") or {})
        self.model.load_state_dict(state["model"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        if self.disc is not None:
            if "disc" not in state:
                raise ValueError("the checkpoint has no discriminator but this config trains one")
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.sched_d.load_state_dict(state["sched_d"])
            self.scaler_d.load_state_dict(state["scaler_d"])
        self.step = int(state["step"])
        set_rng_state(state["rng"])
        if self.rank:
            torch.manual_seed(self.cfg.seed * 7919 + self.step * 31 + self.rank)

    def save(self) -> Path | None:
        if self.rank != 0:
            return None
        return save_checkpoint(self.run_dir, self.step, self.state_dict(), self.cfg.keep_checkpoints)

    def save_run_config(self, extra: dict[str, Any] | None = None) -> None:
        """``config.yaml``: the resolved config plus a ``run`` section (warnings, data, weights)."""
        if self.rank != 0:
            return
        run = {"blendfix_version": __version__, "data": str(self.data_dir), "world_size": self.world,
               "device": str(self.device), "amp": self.amp, "train_size": self.size,
               "train_items": len(self.train_set), "val_items": len(self.val_set or []),
               "parameters": count_parameters(self.model),
               "effective_loss_weights": {k: (v if k != "perceptual" or self.gen_loss.perceptual_loss else 0.0)
                                          for k, v in effective_weights(self.cfg.loss).items()},
               "warnings": list(self.warnings),
               "notes": list(self.notes), **(extra or {})}
        save_config(self.cfg, self.run_dir / "config.yaml", extra={"run": run})

    # --------------------------------------------------------------- training
    def loader(self) -> DataLoader:
        d = self.cfg.data
        sampler = InfiniteSampler(len(self.train_set), self.cfg.optim.batch_size, seed=self.cfg.seed,
                                  start_step=self.step, rank=self.rank, world=self.world)
        # own generator: creating an iterator must not draw from the global RNG (resume exactness)
        return DataLoader(self.train_set, batch_size=self.cfg.optim.batch_size, sampler=sampler,
                          num_workers=d.workers, collate_fn=collate, pin_memory=self.device.type == "cuda",
                          generator=torch.Generator().manual_seed(self.cfg.seed + self.step))

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.float16)

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One generator + discriminator update on a collated batch (images in ``[0, 1]``)."""
        dev = self.device
        x = torch.cat([batch["fused"], batch["original"]], 1).to(dev, non_blocking=True) * 2 - 1
        target = batch["target"].to(dev, non_blocking=True) * 2 - 1
        self.model.train()
        disc_fn = None
        if self.disc is not None:
            self.disc.requires_grad_(False)
            disc_fn = self.disc  # unwrapped: no DDP gradient sync for the generator's pass through D
        with self._autocast():
            pred = self.g_ddp(x)
            loss_g, terms = self.gen_loss(pred.float(), target, disc_fn)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.sched_g.step()
        terms["loss_g"] = float(loss_g.detach())
        if self.disc is not None:
            self.disc.requires_grad_(True)
            with self._autocast():
                real, fake = self.d_ddp(target), self.d_ddp(pred.detach())
                loss_d = self.gen_loss.gan.discriminator(real.float(), fake.float())
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(loss_d).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            self.sched_d.step()
            terms["loss_d"] = float(loss_d.detach())
        self.step += 1
        return terms

    def fit(self, max_steps: int | None = None) -> int:
        """Train until ``optim.iterations`` (or ``max_steps`` more steps); checkpoint at the end. Returns the step."""
        cfg = self.cfg
        end = cfg.optim.iterations if max_steps is None else min(cfg.optim.iterations, self.step + max_steps)
        if self.step >= end:
            return self.step
        t0, start = time.time(), self.step
        if self.step == 0:
            self.run_validation()  # the untrained network: the start of the validation curve
        for batch in self.loader():
            terms = self.train_step(batch)
            if self.logger and (self.step % cfg.log_every == 0 or self.step == end):
                terms["lr"] = self.sched_g.get_last_lr()[0]
                terms["steps_per_s"] = (self.step - start) / max(time.time() - t0, 1e-9)
                self.logger.scalars(self.step, "train", terms)
            if self.step % cfg.val_every == 0 or self.step == end:
                self.run_validation()
            if self.step % cfg.ckpt_every == 0 or self.step == end:
                self.save()
            if self.step >= end:
                break
        if self.logger:
            self.logger.flush()
        return self.step

    def run_validation(self) -> dict[str, float] | None:
        """Validation PSNR (and the fused input's PSNR as the baseline) on rank 0; RNG untouched."""
        if self.rank != 0 or self.val_set is None:
            return None
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            result = validate(self.model, self.val_set, self.device, self.cfg.data.val_max,
                              self.cfg.grid_images, self._autocast)
        self.logger.scalars(self.step, "val", result.metrics)
        self.logger.image(self.step, result.grid)
        self.last_val = dict(result.metrics)
        if below_identity(result.metrics) and self.step > 0:
            msg = (f"step {self.step}: validation PSNR {result.metrics['psnr']:.2f} dB is BELOW the identity "
                   f"(the fused input scores {result.metrics['psnr_input']:.2f} dB against the target): this network "
                   f"makes photos worse. Train longer, lower optim.lr, or use model.residual=true.")
            print(f"\n{'!' * 78}\nWARNING: {msg}\n{'!' * 78}\n", file=sys.stderr)
            self.logger.scalars(self.step, "health", {"below_identity": 1.0})
        return result.metrics


def below_identity(val: dict[str, float], margin: float = 0.0) -> bool:
    """Whether validation metrics say the output is worse than its input (PSNR vs the target)."""
    return bool(val) and "psnr" in val and "psnr_input" in val and val["psnr"] < val["psnr_input"] - margin


def _dist_info() -> tuple[int, int]:
    """(rank, world size); initialises the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def _rank_device(device: torch.device, rank: int) -> torch.device:
    if device.type == "cuda" and device.index is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device
