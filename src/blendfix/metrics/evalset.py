"""Where ``blendfix evaluate`` finds each stem's original, truth, edit mask and fused image.

Files are found by :mod:`blendfix.data.imageset`. Two sources:

* **an image set** (``manifest.jsonl`` + ``items/``: ``blendfix synth`` or ``blendfix edit``): the
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
from ..data.imageset import MANIFEST, collect, is_image_set, read_records
from ..errors import BlendfixError
from ..io import read_image, read_mask


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


def stems_of(folder: Path, what: str) -> dict[str, Path]:
    """Image files of ``folder`` by name stem; ``ValueError`` for an empty folder or a repeated stem."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"{folder}: {what} folder not found.")
    return {i.id: i["original"] for i in collect(folder)}


def kind_of(record: dict) -> str:
    """The artifact kind of a manifest record: its ``kind`` field (e.g. ``paste:rect``), else its attribute."""
    kind = record.get("kind")
    return str(kind) if kind else canonical(str(record["attribute"]))


def _from_image_set(folder: Path) -> EvalSources:
    src = EvalSources(originals={}, attributes={}, kinds={}, dataset=folder)
    for item in collect(folder, optional=("truth", "mask", "fused")):
        src.originals[item.id] = item["original"]
        for role, store in (("truth", src.truth), ("mask", src.mask), ("fused", src.fused)):
            if role in item.files:
                store[item.id] = item[role]
        record = item.record.to_dict() if item.record is not None else {"id": item.id}
        try:
            src.attributes[item.id] = canonical(str(record["attribute"]))
        except (KeyError, ValueError) as e:
            raise ValueError(f"{folder / MANIFEST}: record {item.id!r} has no known 'attribute' ({e}).") from e
        src.kinds[item.id] = kind_of(record)
    return src


def read_sources(originals: str | Path, truth: str | Path | None = None,
                 mask: str | Path | None = None) -> EvalSources:
    """Find every stem's files (see the module docstring); ``truth`` / ``mask`` folders override a set's own."""
    folder = Path(originals)
    src = _from_image_set(folder) if is_image_set(folder) else EvalSources(stems_of(folder, "originals"))
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
        path = path / MANIFEST
    by_key: dict[str, str] = {}
    for rec in read_records(path):
        if not rec.get("kind"):
            continue
        by_key[str(rec["id"])] = str(rec["kind"])
        if rec.get("source"):
            by_key.setdefault(Path(str(rec["source"])).stem, str(rec["kind"]))
    return {s: by_key.get(s, attributes[s]) for s in stems}


def read_matching(path: Path, original: np.ndarray, role: str, failures: list[dict[str, str]],
                  mask: bool = False) -> np.ndarray | None:
    """``path`` read as an image (``mask``: a mask) at the original's size, or ``None`` with the reason
    appended to ``failures`` (unreadable, or another size than ``original``)."""
    try:
        arr = read_mask(path) if mask else read_image(path)
    except (BlendfixError, ValueError) as e:
        failures.append({"file": str(path), "reason": str(e)})
        return None
    if arr.shape[:2] != original.shape[:2]:
        h, w = original.shape[:2]
        failures.append({"file": str(path), "reason": f"{role} is {arr.shape[1]}x{arr.shape[0]}, which differs from "
                         f"the original's {w}x{h}; save it at the original's size"})
        return None
    return arr


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
            arr = read_matching(paths[s], origs[s], kind, failures, mask=kind == "mask")
            if arr is not None:
                store[s] = arr
    return aux
