"""`blendfix train --data DATASET_DIR --out RUN_DIR [--config YAML] [--resume auto]`.

Each fresh run gets a numbered folder ``RUN_DIR/run-NNN`` with its resolved ``config.yaml`` (a newest
run killed before its first checkpoint is emptied and reused instead of left behind).
``--resume auto`` continues the newest run under RUN_DIR that has a checkpoint (or starts a new
run when there is none); ``--resume PATH`` continues a given run folder or checkpoint file. A
resumed run keeps its settings: the same ``--config`` (or none) resumes, and only the fields in
:data:`RESUME_SETTABLE` may change; anything else (``optim.lr``, ``optim.iterations``, ...) is refused.
One process trains a run at a time (``run-NNN/.lock``); a second is refused.
Multi-GPU: ``torchrun --nproc_per_node=N -m blendfix.cli train ...`` (same options).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import click
import yaml

from ..config import apply_overrides, from_dict, load_config, to_dict
from ..data.dataset import list_items
from ..train.config import TrainConfig, check
from ..train.runs import claim_run_dir, latest_checkpoint, lock_run, numbered_runs, resolve_run


def find_resume(out: Path, resume: str | None) -> tuple[Path, Path] | None:
    """``(run_dir, checkpoint)`` to continue, or ``None`` for a fresh run."""
    if resume is None:
        return None
    if resume == "auto":
        runs = [out] if (out / "checkpoints").is_dir() else numbered_runs(out)
        runs = [r for r in runs if latest_checkpoint(r)]
        return (runs[-1], latest_checkpoint(runs[-1])) if runs else None
    path = Path(resume)
    if path.is_file():
        return path.parent.parent, path
    run = resolve_run(path)
    ckpt = latest_checkpoint(run)
    if ckpt is None:
        raise FileNotFoundError(f"{run}: this run has no checkpoint to resume from")
    return run, ckpt


#: Settings a resumed run may change (``--set``, ``--device`` or an edited ``--config``): they do not touch
#: what the checkpoint holds. Every other field (optimiser, schedule, model, loss, data, seed) is fixed by
#: the checkpoint, and a change is refused rather than recorded but ignored.
RESUME_SETTABLE = ("device", "threads", "log_every", "val_every", "ckpt_every", "keep_checkpoints", "grid_images",
                   "data.workers", "data.val_max")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and k != "options" else {f"{prefix}{k}": v})
    return out


def run_config(run_dir: Path, overrides: list[str], config_path: Path | None = None) -> TrainConfig:
    """The config to resume ``run_dir`` with: its ``config.yaml`` (without the ``run`` facts) with
    ``overrides`` applied, or ``config_path`` + ``overrides`` when the command names a config file.

    Only :data:`RESUME_SETTABLE` fields may differ from the run's; any other difference raises a
    ``click.UsageError`` listing each field, so an identical command simply resumes.
    """
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; cannot resume a run without its config")
    data = yaml.safe_load(path.read_text()) or {}
    data.pop("run", None)
    old = check(from_dict(TrainConfig, data, where=str(path)))
    if config_path is None:
        new = from_dict(TrainConfig, apply_overrides(data, overrides), where=str(path))
    else:
        new = load_config(TrainConfig, config_path, overrides)
    new = check(new)
    a, b = _flat(to_dict(old)), _flat(to_dict(new))
    diffs = [f"{k}: {a.get(k)!r} in the run, {b.get(k)!r} now" for k in sorted(set(a) | set(b))
             if a.get(k) != b.get(k) and k not in RESUME_SETTABLE]
    if diffs:
        raise click.UsageError(f"{run_dir} is resumed with the settings its checkpoint was trained with, and these "
                               f"differ: {'; '.join(diffs)}. Start a new run (without --resume) to change them; a "
                               f"resumed run may change only {', '.join(RESUME_SETTABLE)}.")
    return new


def _shared_run_dir(out: Path, chosen: tuple[Path, Path] | None) -> tuple[Path, IO[str] | None]:
    """Rank 0 picks (or claims) the run folder and locks it; other ranks receive the folder."""
    import torch.distributed as dist

    from ..train.trainer import _dist_info

    rank, world = _dist_info()
    lock = None
    if rank == 0:
        if chosen:
            lock = lock_run(chosen[0])
            run = chosen[0]
        else:
            run, lock = claim_run_dir(out)
    name = [str(run) if rank == 0 else ""]
    if world > 1:
        dist.broadcast_object_list(name, src=0)
    return Path(name[0]), lock


@click.command("train")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Training set folder (written by `blendfix synth`).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for numbered run folders (run-001, ...).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML config (see configs/); defaults are the paper's settings.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set optim.iterations=1000 (repeatable).")
@click.option("--resume", default=None, metavar="auto|PATH",
              help="auto: continue the newest run under --out; PATH: a run folder or checkpoint.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Stop (with a checkpoint) after this many steps in this invocation.")
@click.option("--device", default=None, help="Overrides the config's device (auto, cpu, cuda, cuda:N).")
def cmd(data_dir: Path, out: Path, config_path: Path | None, overrides: tuple[str, ...], resume: str | None,
        steps: int | None, device: str | None) -> int:
    """Train the artifact-suppression network (MAResU-Net) on a synthesised training set."""
    from ..train.trainer import Trainer

    sets = list(overrides) + ([f"device={device}"] if device else [])
    chosen = find_resume(out, resume)
    cfg = run_config(chosen[0], sets, config_path) if chosen else load_config(TrainConfig, config_path, sets)
    if not list_items(data_dir):  # before a run folder is created
        raise ValueError(f"{data_dir}: the training set has no complete items")
    run_dir, lock = _shared_run_dir(out, chosen)
    try:
        if chosen:  # the newest checkpoint now that the run is ours (another process may have added one)
            chosen = (run_dir, latest_checkpoint(run_dir) or chosen[1])
        trainer = Trainer(cfg, data_dir, run_dir, resume=chosen[1] if chosen else None)
        trainer.save_run_config({"resumed_from": str(chosen[1])} if chosen else None)
        if trainer.rank == 0:
            start = f"resuming {chosen[1].name} at step {trainer.step}" if chosen else "new run"
            click.echo(f"{run_dir}: {start}; training to step {cfg.optim.iterations}", err=True)
        step = trainer.fit(steps)
        if trainer.rank == 0:
            click.echo(f"{run_dir}: stopped at step {step}; checkpoint {latest_checkpoint(run_dir)}", err=True)
    finally:
        if lock is not None:
            lock.close()
    return 0
