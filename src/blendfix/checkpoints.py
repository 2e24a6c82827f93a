"""Safe loading of untrusted checkpoint files.

Files are loaded with ``torch.load(..., weights_only=True)`` (tensors, containers, numbers and a
short allow-list such as ``argparse.Namespace``) or as safetensors; pickled code is never executed.
When the registry records a sha256 the file is verified before it is read.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from .errors import BlendfixError, ChecksumError
from .registry import CHECKPOINTS, checkpoint_path

_SAFE_GLOBALS = [argparse.Namespace]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str | None) -> None:
    if not expected:
        return
    got = sha256_file(path)
    if got != expected.lower():
        raise ChecksumError(
            f"{path}: sha256 {got} does not match the registry's {expected}; the file is corrupt "
            f"or a different release. Re-download it."
        )


_NAME_HASH = re.compile(r"-([0-9a-f]{8,})\.(?:pth|pt)$")


def verify_name_hash(path: Path, filename: str, url: str = "") -> None:
    """torchvision / pytorch-fid name files ``<name>-<first hex digits of the sha256>.pth``: when the
    registry records no full sha256, check that prefix (as torch.hub does). No-op for other names."""
    m = _NAME_HASH.search(filename)
    if m is None:
        return
    digest = sha256_file(path)
    if not digest.startswith(m.group(1)):
        raise ChecksumError(
            f"{path}: sha256 {digest} does not start with {m.group(1)} as the published file name {filename} says; "
            f"the file is corrupt or a different release. Re-download it{f' from {url}' if url else ''}."
        )


def load_file(path: str | os.PathLike, expected_sha256: str | None = None) -> Any:
    """Load a ``.pt/.pth/.ckpt`` (weights only) or ``.safetensors`` file onto the CPU."""
    path = Path(path)
    verify_sha256(path, expected_sha256)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file as st_load

        try:
            return st_load(str(path), device="cpu")
        except Exception as e:  # SafetensorError (truncated, not safetensors), OSError: one clear error
            raise BlendfixError(f"{path}: not a readable safetensors file ({e}); re-download or re-export it.") from e
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise BlendfixError(
            f"{path}: refused to load: the file holds pickled objects beyond plain tensors and "
            f"containers ({str(e).splitlines()[0]}). blendfix never executes code from checkpoint "
            f"files; re-save it as a plain state_dict or safetensors."
        ) from e
    except Exception as e:  # a text file or random bytes raise KeyError/IndexError/...: all mean "not a checkpoint"
        if isinstance(e, IsADirectoryError | PermissionError):
            raise
        raise BlendfixError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e}); re-download it.") from e


def load_checkpoint(name_or_path: str | os.PathLike) -> Any:
    """Resolve a registered name or path (offline error if missing), verify, and load it."""
    path = checkpoint_path(name_or_path)
    entry = CHECKPOINTS.get(str(name_or_path))
    return load_file(path, entry.sha256 if entry else None)


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix`` with the prefix removed (e.g. ``'encoder.'`` of a pSp file)."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
