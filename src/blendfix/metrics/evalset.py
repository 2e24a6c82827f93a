"""Where ``blendfix evaluate`` finds each stem's original, truth, edit mask and fused image.

Kept small and on its own so one shared image-set reader can replace it. Two sources:

* **a synth dataset folder** (``manifest.jsonl`` + ``items/``, :mod:`blendfix.data.layout`): the
  stems are the item ids of the manifest; per item ``original.png``, ``truth.png`` (when the set has
  it), ``mask.png`` (the edit mask M) and ``fused.png`` are read from ``items/<id>/``; attribute and
  artifact kind come from the manifest record (``kind``, else the attribute).
* **a photo folder**: originals matched by name stem, with ``--truth DIR`` and ``--mask DIR``
  matched by stem the same way (a stem without a file there has no truth / no mask). The fused
  image, needed by edit-kept when there is no truth, is the output of the method named ``fused``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..attributes import canonical
from ..data import layout
from ..errors import BlendfixError
from ..io import list_images, read_image, read_mask
from ..synth import manifest as jsonl

TRUTH = layout.TRUTH


@dataclass
class EvalSources:
    """Per stem: ``originals`` (always), ``truth`` / ``mask`` / ``fused`` (those that exist) as file paths;
    ``attributes`` / ``kinds`` (stem -> name) when a manifest gave them; ``dataset`` = the synth set, if any."""

    originals: dict[str, Path]
    truth: dict[str, Path] = field(default_factory=dict)
    mask: dict[str, Path] = field(default_factory=dict)
    fused: dict[str, Path] = field(default_factory=dict)
    attributes: dict[str, str] | None = None
    kinds: dict[str, str] | None = None
    dataset: Path | None = None


def is_synth_set(folder: str | Path) -> bool:
    """True for a ``blendfix synth`` dataset folder (it holds ``manifest.jsonl`` and ``items/``)."""
    p = Path(folder)
    return (p / layout.MANIFEST).is_file() and (p / layout.ITEMS).is_dir()


def stems_of(folder: Path, what: str) -> dict[str, Path]:
    """Image files of ``folder`` by name stem; ``ValueError`` for an empty folder or a repeated stem."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: {what} folder not found.")
    files = list_images(folder)
    if not files:
        raise ValueError(f"{folder}: no image files in the {what} folder.")
    by_stem: dict[str, Path] = {}
    for f in files:
        if f.stem in by_stem:
            raise ValueError(f"{folder}: two files share the name stem {f.stem!r} ({by_stem[f.stem].name}, {f.name});"
                             " keep one per stem.")
        by_stem[f.stem] = f
    return by_stem


def kind_of(record: dict) -> str:
    """The artifact kind of a manifest record: its ``kind`` field (e.g. ``paste:rect``), else its attribute."""
    kind = record.get("kind")
    return str(kind) if kind else canonical(str(record["attribute"]))


def _from_synth_set(folder: Path) -> EvalSources:
    records = jsonl.latest_by_id(jsonl.read(folder / layout.MANIFEST))
    items = folder / layout.ITEMS
    src = EvalSources(originals={}, attributes={}, kinds={}, dataset=folder)
    for item_id in sorted(records):
        d = items / item_id
        if not (d / layout.ORIGINAL).is_file():
            continue  # recorded but removed: nothing to score
        rec = records[item_id]
        src.originals[item_id] = d / layout.ORIGINAL
        for name, store in ((TRUTH, src.truth), (layout.MASK, src.mask), (layout.FUSED, src.fused)):
            if (d / name).is_file():
                store[item_id] = d / name
        try:
            src.attributes[item_id] = canonical(str(rec["attribute"]))
        except (KeyError, ValueError) as e:
            raise ValueError(f"{folder / layout.MANIFEST}: record {item_id!r} has no known 'attribute' ({e}).") from e
        src.kinds[item_id] = kind_of(rec)
    if not src.originals:
        raise ValueError(f"{folder}: the manifest lists no item with an {layout.ORIGINAL}; run `blendfix synth` "
                         "into it first.")
    return src


def read_sources(originals: str | Path, truth: str | Path | None = None,
                 mask: str | Path | None = None) -> EvalSources:
    """Find every stem's files (see the module docstring); ``truth`` / ``mask`` folders override a set's own."""
    folder = Path(originals)
    src = _from_synth_set(folder) if is_synth_set(folder) else EvalSources(stems_of(folder, "originals"))
    for extra, attr, what in ((truth, "truth", "truth"), (mask, "mask", "mask")):
        if extra is None:
            continue
        found = stems_of(Path(extra), what)
        unknown = sorted(set(found) - set(src.originals))
        if unknown:
            raise ValueError(f"--{what} {extra}: file(s) with no original of the same stem: "
                             f"{', '.join(found[s].name for s in unknown[:10])}; files are matched by name stem.")
        setattr(src, attr, found)
    return src


def read_kinds(manifest: str | Path, stems: list[str], attributes: dict[str, str]) -> dict[str, str]:
    """Stem -> artifact kind from a manifest (record ``kind``; matched by ``id`` or source stem), else the
    stem's attribute."""
    path = Path(manifest)
    if path.is_dir():
        path = path / layout.MANIFEST
    by_key: dict[str, str] = {}
    for rec in jsonl.read(path):
        if not rec.get("kind"):
            continue
        by_key[str(rec["id"])] = str(rec["kind"])
        if rec.get("source"):
            by_key.setdefault(Path(str(rec["source"])).stem, str(rec["kind"]))
    return {s: by_key.get(s, attributes[s]) for s in stems}


def read_aux(sources: EvalSources, origs: dict[str, np.ndarray], stems: list[str],
             failures: list[dict[str, str]]) -> dict[str, dict[str, np.ndarray]]:
    """``{"truth"|"mask"|"fused": {stem: array}}`` for ``stems`` (images ``(H, W, 3)``, masks ``(H, W)``,
    in ``[0, 1]``); unreadable files and files not at the original's size go to ``failures``."""
    aux: dict[str, dict[str, np.ndarray]] = {"truth": {}, "mask": {}, "fused": {}}
    for kind, store in aux.items():
        paths = getattr(sources, kind)
        for s in stems:
            if s not in paths or s not in origs:
                continue
            try:
                arr = read_mask(paths[s]) if kind == "mask" else read_image(paths[s])
            except (BlendfixError, ValueError) as e:
                failures.append({"file": str(paths[s]), "reason": str(e)})
                continue
            if arr.shape[:2] != origs[s].shape[:2]:
                h, w = origs[s].shape[:2]
                failures.append({"file": str(paths[s]), "reason": f"{kind} is {arr.shape[1]}x{arr.shape[0]}, the "
                                 f"original {w}x{h}; save it at the original's size"})
                continue
            store[s] = arr
    return aux
