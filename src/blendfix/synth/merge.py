"""Merge synth output folders (shards of one set, or runs on several machines) into one dataset.

Sources are only read. Each must have been built with the same defining settings (seed, editor,
attributes, resolution, ..., checkpoint hashes); items are hard-linked into the output (copied when
the output is on another file system), each through a ``.tmp`` folder and a rename, so a killed merge
can simply be rerun. The merged manifest and skip list are sorted by id, so merging the shards of a
set gives the same files as building the set in one run.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data import layout
from ..errors import BlendfixError
from ..folders import refuse_output_inside_inputs
from ..io import atomic_write
from . import manifest
from .config import DEFINING_FIELDS
from .folder import SKIPPED, dataset_lock, item_complete, reconcile
from .items import TMP_SUFFIX


@dataclass
class MergeSummary:
    sources: int = 0
    items: int = 0          # items in the merged dataset
    added: int = 0          # items linked or copied by this merge
    duplicates: int = 0     # identical items found in more than one source
    skipped: int = 0        # photos listed as skipped in the merged dataset
    incomplete: list[str] = field(default_factory=list)  # source item folders left out (incomplete)


def _settings(folder: Path) -> dict[str, Any]:
    path = folder / layout.CONFIG
    if not path.is_file():
        raise BlendfixError(f"{folder}: not a blendfix synth folder (no {layout.CONFIG}); give the -o "
                            f"folders of the synth runs.")
    data = yaml.safe_load(path.read_text()) or {}
    return data


def _defining(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data.get(k) for k in (*DEFINING_FIELDS, "checkpoints")}


def collect(folder: Path) -> tuple[dict[str, tuple[dict[str, Any], Path]], list[str]]:
    """Read-only view of one synth folder: ``id -> (record, item folder)`` for every complete item
    (recorded ones, and complete folders a killed run did not record), and incomplete folder names."""
    items = folder / layout.ITEMS
    found: dict[str, tuple[dict[str, Any], Path]] = {}
    recorded = manifest.latest_by_id(manifest.read(folder / layout.MANIFEST))
    incomplete = []
    if items.is_dir():
        for d in sorted(items.iterdir()):
            if d.name.startswith(".") or not d.is_dir():
                continue
            rec = recorded[d.name] if d.name in recorded else item_complete(d)
            if rec is None:
                incomplete.append(str(d))
                continue
            found[d.name] = (rec, d)
    return found, incomplete


def _link_item(src: Path, dst_items: Path, item: str) -> None:
    tmp = dst_items / f".{item}{TMP_SUFFIX}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for f in (*layout.ITEM_FILES, *(o for o in layout.OPTIONAL_FILES if (src / o).is_file())):
        try:
            os.link(src / f, tmp / f)
        except OSError:
            shutil.copy2(src / f, tmp / f)
    os.rename(tmp, dst_items / item)


def merge_datasets(sources: list[str | os.PathLike], out: str | os.PathLike) -> MergeSummary:
    """Merge the synth folders ``sources`` into ``out`` (which may already hold a merged set)."""
    if not sources:
        raise ValueError("merge: give at least one synth folder to merge")
    out = Path(out)
    srcs = [Path(s) for s in sources]
    if any(s.resolve() == out.resolve() for s in srcs):
        raise ValueError(f"merge: the output {out} must not be one of the sources")
    refuse_output_inside_inputs(out, {f"source {s}": s for s in srcs})
    settings = [_settings(s) for s in srcs]
    ref = _defining(settings[0])
    for s, data in zip(srcs[1:], settings[1:], strict=True):
        diffs = [k for k, v in _defining(data).items() if v != ref[k]]
        if diffs:
            raise BlendfixError(f"{s} was built with other settings than {srcs[0]} "
                                f"({', '.join(f'{k}: {data.get(k)!r} vs {ref[k]!r}' for k in diffs)}); "
                                f"only shards of one set can be merged.")
    summary = MergeSummary(sources=len(srcs))
    with dataset_lock(out):
        if (out / layout.CONFIG).is_file() and _defining(_settings(out)) != ref:
            raise BlendfixError(f"{out} holds a set built with other settings; merge into a new folder.")
        config = {k: v for k, v in settings[0].items() if k != "shard"}
        out.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(config, sort_keys=False)
        atomic_write(out / layout.CONFIG, lambda: text.encode())
        records, _ = reconcile(out)
        skipped = manifest.latest_by_id(manifest.read(out / SKIPPED))
        for src in srcs:
            found, incomplete = collect(src)
            summary.incomplete += incomplete
            for item, (rec, folder) in found.items():
                if item in records:
                    if manifest.dumps(records[item]) != manifest.dumps(rec):
                        raise BlendfixError(f"item {item} differs between {folder} and the merge so far; "
                                            f"the sources are not shards of one set.")
                    summary.duplicates += 1
                    continue
                _link_item(folder, out / layout.ITEMS, item)
                records[item] = rec
                summary.added += 1
            skipped.update(manifest.latest_by_id(manifest.read(src / SKIPPED)))
        manifest.rewrite_sorted(out / layout.MANIFEST, records.values())
        kept = [r for k, r in skipped.items() if k not in records]
        manifest.rewrite_sorted(out / SKIPPED, kept)
    summary.items, summary.skipped = len(records), len(kept)
    return summary
