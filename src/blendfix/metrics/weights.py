"""Loading the metric networks' published checkpoints: registry names or paths, offline errors.

torchvision and pytorch-fid name their files ``<name>-<first hex digits of the sha256>.pth``; where
the registry has no full sha256 the file name's prefix is checked instead (as torch.hub does).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..checkpoints import load_file, verify_name_hash
from ..errors import MissingWeightsError
from ..registry import CHECKPOINTS, CheckpointEntry, checkpoint_path, load_all, missing_message


def resolve(sources: list[str | os.PathLike]) -> list[Path]:
    """Registered names or paths -> existing paths; one :class:`MissingWeightsError` naming every missing file."""
    load_all()
    found: list[Path] = []
    missing: list[CheckpointEntry] = []
    other: list[str] = []
    for src in sources:
        try:
            found.append(checkpoint_path(src))
        except MissingWeightsError as e:
            entry = CHECKPOINTS.get(str(src))
            if entry is not None:
                missing.append(entry)
            else:
                other.append(str(e))
    if missing or other:
        parts = ([missing_message(missing)] if missing else []) + other
        raise MissingWeightsError("\n".join(parts))
    return found


def load_state(source: str | os.PathLike, path: Path) -> dict[str, torch.Tensor]:
    """Load a raw state_dict (weights only), verifying the registry's sha256 or file-name hash prefix."""
    entry = CHECKPOINTS.get(str(source))
    if entry is not None and not entry.sha256:
        verify_name_hash(path, entry.filename, entry.url)
    state = load_file(path, entry.sha256 if entry else None)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict (a dict of tensors), got {type(state).__name__}")
    return state
