"""The one registry of models and the one registry of checkpoints.

A *model* entry says how to build a network (``module:callable``); a *checkpoint* entry says which
published file holds its weights: file name, source URL, sha256 (where known), state_dict layout
and licence. blendfix never downloads anything: :func:`checkpoint_path` finds the file in the
weights folder (``BLENDFIX_WEIGHTS``, default ``~/.cache/blendfix/weights``) or raises
:class:`~blendfix.errors.MissingWeightsError` saying exactly what to place where.

Modules add their entries with :func:`register_model` / :func:`register_checkpoint` at import
time; :func:`load_all` imports every module that registers something.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import MissingWeightsError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: str  # "package.module:callable"
    description: str
    checkpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckpointEntry:
    name: str
    filename: str
    url: str
    layout: str  # state_dict layout: top-level keys, prefixes, format
    licence: str
    model: str
    sha256: str | None = None
    notes: str = ""
    #: shipped inside the package (``blendfix/weights/``): found without any configuration
    bundled: bool = False


MODELS: dict[str, ModelEntry] = {}
CHECKPOINTS: dict[str, CheckpointEntry] = {}

# Modules that register entries; imported by load_all() (missing ones are skipped).
_REGISTERING_MODULES = (
    "blendfix.nets.maresunet",
    "blendfix.nets.bisenet",
    "blendfix.nets.stylegan2",
    "blendfix.nets.psp",
    "blendfix.nets.diffcam",
    "blendfix.nets.vgg16",
    "blendfix.nets.resnet",
    "blendfix.nets.resnet34",
    "blendfix.metrics.lpips",
    "blendfix.metrics.fid",
    "blendfix.edit.directions",
    "blendfix.weights",
)


def register_model(entry: ModelEntry) -> ModelEntry:
    MODELS[entry.name] = entry
    return entry


def register_checkpoint(entry: CheckpointEntry) -> CheckpointEntry:
    CHECKPOINTS[entry.name] = entry
    return entry


def load_all() -> None:
    """Import every registering module so the registries are complete."""
    for mod in _REGISTERING_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name is None or not mod.startswith(e.name):
                raise  # a real missing dependency, not an optional module absent from this build


def weights_dir() -> Path:
    """The folder where checkpoint files are looked up (``BLENDFIX_WEIGHTS`` overrides)."""
    env = os.environ.get("BLENDFIX_WEIGHTS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "blendfix" / "weights"


def bundled_dir() -> Path:
    """The package folder that holds the weights shipped with blendfix."""
    return Path(__file__).resolve().parent / "weights"


def entry_path(entry: CheckpointEntry) -> Path:
    """Where ``entry``'s file is looked up: the package for bundled weights, else :func:`weights_dir`.

    A file of the same name in ``BLENDFIX_WEIGHTS`` wins over a bundled one (to try a retrained cleaner)."""
    user = weights_dir() / entry.filename
    if entry.bundled and not user.is_file():
        return bundled_dir() / entry.filename
    return user


def missing_message(entries: list[CheckpointEntry]) -> str:
    """The offline instruction: for each missing checkpoint, where to get it and where to put it."""
    folder = weights_dir()
    lines = ["missing pretrained weights (blendfix never downloads; place these files yourself):"]
    for e in entries:
        lines.append(f"  - {e.name}: put {e.filename} at {folder / e.filename}")
        lines.append(f"      from {e.url}  (licence: {e.licence})")
        if e.sha256:
            lines.append(f"      sha256 {e.sha256}")
    lines.append(f"or set BLENDFIX_WEIGHTS to the folder that holds them (now {folder}).")
    return "\n".join(lines)


def checkpoint_path(name_or_path: str | os.PathLike) -> Path:
    """A registered checkpoint name or a file path -> an existing file path.

    Raises :class:`MissingWeightsError` with the offline instruction when the file is absent.
    """
    p = Path(name_or_path).expanduser()
    if p.suffix and p.is_file():
        return p
    name = str(name_or_path)
    if name not in CHECKPOINTS:
        load_all()
    if name in CHECKPOINTS:
        entry = CHECKPOINTS[name]
        path = entry_path(entry)
        if path.is_file():
            return path
        if entry.bundled:
            raise MissingWeightsError(f"{entry.name}: the bundled file {path} is missing: this blendfix install is "
                                      f"incomplete; reinstall it (pip install -e . from the project) or place "
                                      f"{entry.filename} in {weights_dir()}.")
        raise MissingWeightsError(missing_message([entry]))
    known = ", ".join(sorted(CHECKPOINTS)) or "none"
    raise MissingWeightsError(f"{name_or_path}: no such file, and not a registered checkpoint ({known}).")


def available(name: str) -> bool:
    """Whether a registered checkpoint's file is present (never raises)."""
    try:
        checkpoint_path(name)
        return True
    except MissingWeightsError:
        return False
