"""The layout of training-run folders, read by training and by inference alike (no training code here).

::

    OUT/                      the folder given as ``blendfix train -o``
      run-001/                one numbered folder per training run
        config.yaml           the resolved config (+ a ``run:`` section: warnings, data, world size)
        metrics.jsonl         one JSON line per logged step / validation
        checkpoints/step_00005000.pt

Checkpoints hold plain tensors and containers only and are read back with
``weights_only=True`` (:func:`blendfix.checkpoints.load_file`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .checkpoints import load_file

RUN_PREFIX = "run-"
CKPT_DIR = "checkpoints"
_CKPT_RE = re.compile(r"^step_(\d+)\.pt$")
_RUN_RE = re.compile(rf"^{RUN_PREFIX}(\d+)$")


def numbered_runs(out: str | os.PathLike) -> list[Path]:
    """Run folders under ``out``, oldest (lowest number) first."""
    out = Path(out)
    if not out.is_dir():
        return []
    runs = [(int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := _RUN_RE.match(p.name))]
    return [p for _, p in sorted(runs)]


def checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint files of a run, by step (oldest first)."""
    folder = Path(run_dir) / CKPT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CKPT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def is_run_dir(path: Path) -> bool:
    return (path / "config.yaml").is_file() or (path / CKPT_DIR).is_dir()


def resolve_run(path: str | os.PathLike) -> Path:
    """A run folder, or a folder of numbered runs (-> its newest run with a checkpoint)."""
    path = Path(path)
    if is_run_dir(path):
        return path
    with_ckpt = [r for r in numbered_runs(path) if checkpoints(r)]
    if not with_ckpt:
        raise FileNotFoundError(f"{path}: no training run with a checkpoint here (expected {CKPT_DIR}/ or "
                                f"{RUN_PREFIX}NNN/ folders)")
    return with_ckpt[-1]


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (weights only: no pickled code runs) and check it is a training checkpoint."""
    state = load_file(path)
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise ValueError(f"{path}: not a blendfix training checkpoint (no 'model' / 'step' entries)")
    return state
