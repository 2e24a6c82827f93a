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

import errno
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from ..checkpoints import load_file
from ..errors import BlendfixError
from ..io import atomic_write
from ..locks import LOCK, try_lock

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


def claim_run_dir(out: str | os.PathLike) -> tuple[Path, IO[str]]:
    """The folder for a fresh run, locked for this process (:mod:`blendfix.locks`): the newest run when
    it never reached a checkpoint and no live run holds it (a run killed early; emptied and reused),
    else a new ``out/run-NNN``. Returns the folder and the lock handle (close it when done)."""
    runs = numbered_runs(out)
    if runs and not checkpoints(runs[-1]):
        lock = try_lock(runs[-1])
        if lock is not None:
            for p in runs[-1].iterdir():
                if p.name != LOCK:
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            return runs[-1], lock
    while True:
        path = new_run_dir(out)
        lock = try_lock(path)
        if lock is not None:
            return path, lock


def lock_run(run_dir: Path) -> IO[str]:
    """Lock a run folder for training it; refused when another process trains it."""
    lock = try_lock(run_dir)
    if lock is None:
        raise BlendfixError(f"{run_dir}: another blendfix train process is training this run; wait for it to "
                            f"finish (or stop it), or start a new run without --resume.")
    return lock


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


def remove_partial_checkpoints(run_dir: str | os.PathLike) -> None:
    """Delete ``checkpoints/.step_*.pt.tmp`` files a killed process left half-written."""
    folder = Path(run_dir) / CKPT_DIR
    if folder.is_dir():
        for p in folder.glob(".step_*.pt.tmp"):
            p.unlink(missing_ok=True)


def save_checkpoint(run_dir: str | os.PathLike, step: int, state: dict[str, Any], keep: int = 0) -> Path:
    """Write ``checkpoints/step_NNNNNNNN.pt`` atomically; keep only the newest ``keep`` (0 = all).

    A failed write (e.g. disk full) removes its partial file and raises :class:`BlendfixError`
    naming the file, the free space and how to resume; earlier checkpoints are kept.
    """
    folder = Path(run_dir) / CKPT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:08d}.pt"
    tmp = folder / f".{path.name}.tmp"
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except Exception as e:  # torch reports a full disk as a RuntimeError from its stream writer
        tmp.unlink(missing_ok=True)
        free = shutil.disk_usage(folder).free
        full = isinstance(e, OSError) and e.errno == errno.ENOSPC or free < (64 << 20)
        last = latest_checkpoint(run_dir)
        resume = f"rerun the same command with --resume auto to continue from {last.name}" if last else \
            "rerun the command"
        raise BlendfixError(f"{path}: could not write the checkpoint ({type(e).__name__}: {str(e).strip()[:200]})"
                            f"{'; the disk is full' if full else ''} ({free / 2**20:.0f} MB free there); nothing "
                            f"partial was left: free space, then {resume}.") from e
    if keep > 0:
        for old in checkpoints(run_dir)[:-keep]:
            old.unlink()
    return path


def truncate_log(run_dir: str | os.PathLike, step: int) -> None:
    """On resume at ``step``: drop ``metrics.jsonl`` lines and validation images of later steps, which a
    killed process logged after its last checkpoint and the resumed run logs again."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        keep = []
        for line in path.read_text().splitlines():
            try:
                ok = int(json.loads(line)["step"]) <= step
            except (ValueError, KeyError, TypeError):
                ok = False  # a line cut short by the kill
            if ok:
                keep.append(line + "\n")
        atomic_write(path, "".join(keep).encode)
    for png in (run_dir / "val").glob("step_*.png"):
        m = re.match(r"^step_(\d+)\.png$", png.name)
        if m and int(m.group(1)) > step:
            png.unlink()


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (weights only: no pickled code runs) and check it is a training checkpoint."""
    state = load_file(path)
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise ValueError(f"{path}: not a blendfix training checkpoint (no 'model' / 'step' entries)")
    return state


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
