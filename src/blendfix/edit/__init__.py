"""Editors that produce (I', T, M): the StyleGAN2/pSp/Diff-CAM front end and an offline synthetic one."""

from __future__ import annotations

import importlib
from typing import Any

from .base import Editor, EditResult

#: editor name -> "module:class"; the class is constructed with keyword options.
EDITORS = {
    "synthetic": "blendfix.edit.synthetic:SyntheticEditor",
    "gan": "blendfix.edit.gan:GanEditor",
    "paste": "blendfix.edit.paste:PasteEditor",
}


def get_editor(name: str, **options: Any) -> Editor:
    """Build an editor by name (``synthetic`` needs no weights; ``gan`` needs the checkpoints)."""
    if name not in EDITORS:
        raise ValueError(f"unknown editor {name!r}; choose one of {', '.join(EDITORS)}")
    module, cls = EDITORS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)


__all__ = ["EDITORS", "EditResult", "Editor", "get_editor"]
