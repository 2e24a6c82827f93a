"""Run folders, checkpoint files and RNG state for training.

::

    OUT/                      the folder given as ``blendfix train --out``
      run-001/                one numbered folder per training run
        config.yaml           the resolved config (+ a ``run:`` section: warnings, data, world size)
        metrics.jsonl         one JSON line per logged step / validation
        checkpoints/step_00005000.pt
        tb/                   TensorBoard events
        val/step_00005000.png validation image grids (fused | original | output | target)

Checkpoints hold plain tensors and containers only and are read back with
``weights_only=True`` (:func:`blendfix.checkpoints.load_file`).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..runlayout import (  # noqa: F401  (the run layout, re-exported for training code)
    _RUN_RE,
    CKPT_DIR,
    RUN_PREFIX,
    checkpoints,
    is_run_dir,
    latest_checkpoint,
    load_training_checkpoint,
    numbered_runs,
    resolve_run,
)


def new_run_dir(out: str | os.PathLike) -> Path:
    """Create and return the next numbered run folder ``out/run-NNN``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = numbered_runs(out)
    n = int(_RUN_RE.match(runs[-1].name).group(1)) + 1 if runs else 1
    while True:
        path = out / f"{RUN_PREFIX}{n:03d}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


def save_checkpoint(run_dir: str | os.PathLike, step: int, state: dict[str, Any], keep: int = 0) -> Path:
    """Write ``checkpoints/step_NNNNNNNN.pt`` atomically; keep only the newest ``keep`` (0 = all)."""
    folder = Path(run_dir) / CKPT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:08d}.pt"
    tmp = folder / f".{path.name}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)
    if keep > 0:
        for old in checkpoints(run_dir)[:-keep]:
            old.unlink()
    return path


def rng_state() -> dict[str, Any]:
    """All RNG states a training step can touch, as plain tensors and tuples."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    np_state = np.random.get_state()
    state["numpy"] = {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "gauss": float(np_state[4])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only where CUDA is available)."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state(("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def metrics_history(run_dir: str | os.PathLike, split: str = "val") -> list[dict[str, Any]]:
    """The logged records of one split from ``metrics.jsonl`` (e.g. the validation PSNR curve)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("split") == split]
