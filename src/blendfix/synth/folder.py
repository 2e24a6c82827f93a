"""The dataset folder between runs: the lock, the settings check, and reconciling items with the manifest."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from ..config import to_dict
from ..data import layout
from ..errors import BlendfixError
from ..locks import LOCK, folder_lock  # noqa: F401 - LOCK: the lock file's name, as before
from . import manifest
from .config import DEFINING_FIELDS, SynthConfig
from .items import TMP_SUFFIX, file_sha256

SKIPPED = layout.SKIPPED


@contextmanager
def dataset_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` for the run; a second run on the same folder fails at once (:mod:`blendfix.locks`)."""
    with folder_lock(out, "blendfix synth run",
                     "wait for it, or give each shard its own -o folder and merge them."):
        yield


def check_config(out: Path, config: SynthConfig, checkpoints: dict[str, str | None]) -> None:
    """Refuse to add items to a folder built with other defining settings (seed, editor, ...)."""
    path = out / layout.CONFIG
    if not path.is_file():
        return
    old = yaml.safe_load(path.read_text()) or {}
    new = {**to_dict(config), "checkpoints": checkpoints}
    diffs = [f"{k}: {old.get(k)!r} there, {new[k]!r} now" for k in (*DEFINING_FIELDS, "checkpoints")
             if k in old and _norm(old.get(k)) != _norm(new[k])]
    if diffs:
        raise BlendfixError(f"{out} was built with other settings ({'; '.join(diffs)}); rerun with the "
                            f"same settings to resume, or choose a new output folder.")


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple | list) else v


def item_complete(folder: Path) -> dict[str, Any] | None:
    """The record of a complete item folder (every layout file, a readable ``meta.json`` naming it)."""
    if not all((folder / f).is_file() for f in layout.ITEM_FILES):
        return None
    try:
        rec = json.loads((folder / layout.META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("id") == folder.name else None


def _has_all_files(folder: Path) -> bool:
    try:
        names = set(os.listdir(folder))
    except OSError:
        return False
    return names.issuperset(layout.ITEM_FILES)


def reconcile(out: Path) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Bring manifest and ``items/`` into agreement after any earlier run, however it ended.

    Deletes stale ``.tmp`` folders; cuts a partial manifest line; drops records whose folder is gone
    or incomplete (they are redone); re-records complete folders missing from the manifest; deletes
    incomplete ones. Returns (records by id, ids re-recorded).
    """
    items = out / layout.ITEMS
    items.mkdir(parents=True, exist_ok=True)
    man = out / layout.MANIFEST
    manifest.repair(man)
    records = manifest.latest_by_id(manifest.read(man))
    present = {}
    for d in items.iterdir():
        if d.name.startswith(".") and d.name.endswith(TMP_SUFFIX):
            shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
        elif d.is_dir():
            present[d.name] = d
    # a recorded item must still be whole (all files there); otherwise it is redone
    gone = [k for k in records if k not in present or not _has_all_files(present[k])]
    for k in gone:
        del records[k]
    new = []
    for name, d in sorted(present.items()):
        if name in records:
            continue
        if name in gone:
            shutil.rmtree(d, ignore_errors=True)
            continue
        rec = item_complete(d)
        if rec is None:
            shutil.rmtree(d, ignore_errors=True)
        else:
            new.append(rec)
            records[name] = rec
    if gone:
        manifest.rewrite_sorted(man, records.values())
    else:
        manifest.append(man, new)
    return records, {r["id"] for r in new}


# --------------------------------------------------------------------------- the input folder's identity

#: ``config.yaml`` key recording the resolved input folder the set was built from
INPUT_RESOLVED = "input_resolved"


def recorded_input(out: Path) -> str | None:
    """The resolved input folder an earlier run recorded in ``config.yaml`` (``None``: none recorded)."""
    path = out / layout.CONFIG
    if not path.is_file():
        return None
    old = yaml.safe_load(path.read_text()) or {}
    value = old.get(INPUT_RESOLVED) if isinstance(old, dict) else None
    return str(value) if value else None


def check_inputs(out: Path, given: str, before: str | None, photos: dict[str, str],
                 records: dict[str, dict[str, Any]], skipped: dict[str, dict[str, Any]]) -> int:
    """Refuse to resume a set from photos other than those its finished items were made from.

    ``photos``: item id -> photo file of this run's selection; ``before``: the resolved input folder
    recorded by an earlier run (:func:`recorded_input`). A finished item whose photo now has another
    size, or (when the input folder is not the recorded one) other content (``source_sha256``), is a
    different photo under the same name: :class:`BlendfixError` naming both folders and the fix. When
    the input folder changed, photos an earlier run skipped are retried (the skip was about another
    file): they are removed from ``skipped``, and their count returned. Records made before these
    fields existed are accepted as they are.
    """
    moved = before is not None and before != str(Path(given).resolve())
    differ = []
    for item, photo in photos.items():
        rec = records.get(item)
        if rec is None or "source_sha256" not in rec:
            continue
        if os.path.getsize(photo) != rec.get("source_size") or (moved and file_sha256(photo) != rec["source_sha256"]):
            differ.append(photo)
    if differ:
        where = f"built from {before}" if moved else "built from other photos with these names"
        raise BlendfixError(
            f"{out} was {where}; {len(differ)} finished item(s) have other content in -i {given} now "
            f"(e.g. {', '.join(differ[:3])}). Give these photos their own -o folder, or rerun with the "
            f"photos the set was built from.")
    retried = 0
    if moved:
        for item in photos:
            if skipped.pop(item, None) is not None:
                retried += 1
    return retried
