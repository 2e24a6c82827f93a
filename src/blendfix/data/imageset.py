"""Image sets and pairing: the one layout every verb reads and writes, its manifest, and stem matching.

An image set is a folder (the ``blendfix synth`` training-set layout, see :mod:`blendfix.data.layout`)::

    SET/
      manifest.jsonl            one JSON line per item: id, source, attribute, kind, roles (+ the writer's facts)
      items/<id>/<role>.png     original, inverted, edited, mask, fused, face_mask, target, truth
      items/<id>/cleaned/<method>.png

``blendfix edit`` and ``blendfix synth`` write sets; ``mask``, ``blend`` and ``clean`` add roles to
their items (``face_mask``, ``target``, ``cleaned/<method>``) and append the updated record; ``evaluate``
and ``train`` read them. A later manifest line with the same id replaces an earlier one; a cut-off
last line (a killed append) is ignored by :func:`read_records` and cut by :func:`repair`.

A plain folder of photos works too: its images are the ``original`` role and other roles come from
folders (or one shared file) paired by name stem, where ``<stem>_<role>.png`` counts as ``<stem>``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..attributes import canonical
from ..io import IMAGE_SUFFIXES, atomic_write
from . import layout

MANIFEST = layout.MANIFEST
ITEMS = layout.ITEMS
#: The image roles of an item, each stored as ``items/<id>/<role>.png``.
ROLES = ("original", "inverted", "edited", "mask", "fused", "face_mask", "target", "truth")
#: Cleaned outputs are the roles ``cleaned/<method>``.
CLEANED = "cleaned"
_RECORD_KEYS = ("id", "source", "attribute", "kind", "roles")
#: Name endings that pair a file with a photo too: ``a_mask.png`` (what ``blendfix mask -o`` writes) for ``a.jpg``.
TAGS = {"face_mask": ("_face_mask", "_mask"), "mask": ("_mask",)}


def cleaned_role(method: str) -> str:
    """The role of ``method``'s cleaned output: ``cleaned/<method>``."""
    return f"{CLEANED}/{method}"


def role_file(role: str) -> str:
    """A role's file inside an item folder: ``fused`` -> ``fused.png``, ``cleaned/x`` -> ``cleaned/x.png``."""
    base = role.split("/", 1)[0]
    if base not in ROLES and not (base == CLEANED and role.count("/") == 1 and role[len(CLEANED) + 1:]):
        raise ValueError(f"unknown image role {role!r}; roles are {', '.join(ROLES)} and {CLEANED}/<method>")
    return f"{role}.png"


@dataclass(frozen=True)
class ItemRecord:
    """One manifest line. ``extra`` keeps every other field its writer recorded (seed, editor, ...)."""

    id: str
    source: str = ""
    attribute: str | None = None
    kind: str | None = None
    roles: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemRecord:
        roles = data.get("roles") or ()
        return cls(id=str(data["id"]), source=str(data.get("source") or ""), attribute=data.get("attribute"),
                   kind=data.get("kind"), roles=tuple(roles),
                   extra={k: v for k, v in data.items() if k not in _RECORD_KEYS})

    def to_dict(self) -> dict[str, Any]:
        out = {**self.extra, "id": self.id, "source": self.source, "attribute": self.attribute,
               "roles": list(self.roles)}
        if self.kind is not None:
            out["kind"] = self.kind
        return out

    def with_roles(self, roles: Iterable[str]) -> ItemRecord:
        """The record listing ``roles`` as well (sorted, images first, cleaned outputs last)."""
        merged = set(self.roles) | set(roles)
        return replace(self, roles=tuple(sorted(merged, key=lambda r: (r.startswith(CLEANED), r))))


def dumps(record: Mapping[str, Any]) -> str:
    """One record as a canonical JSON line (sorted keys, no spaces, unicode kept)."""
    return json.dumps(dict(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def repair(path: Path) -> int:
    """Cut a partial last line (a killed append) off ``path``; returns the bytes removed."""
    if not path.is_file():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as fh:
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return len(data) - keep


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a JSON-lines file, in file order (a cut-off last line is ignored).

    A missing file gives ``[]``; a corrupt line elsewhere raises ``ValueError`` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines):  # unterminated last line: a killed append
                break
            raise ValueError(f"{path}: line {n} is not valid JSON ({e}); fix or delete that line") from e
        if not isinstance(rec, dict) or "id" not in rec:
            raise ValueError(f"{path}: line {n} is not a record with an 'id'; fix or delete that line")
        records.append(rec)
    return records


def append_records(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Append whole lines in one ``O_APPEND`` write, flushed and fsynced: a reader sees all or none of them.

    A cut-off last line left by a killed writer is cut first, so the new lines start on a line of their own.
    """
    text = "".join(dumps(r) + "\n" for r in records)
    if not text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    repair(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def latest_by_id(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``id -> record``; a later record with the same id replaces an earlier one."""
    return {str(r["id"]): dict(r) for r in records}


def rewrite_sorted(path: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Atomically replace ``path`` with ``records`` sorted by id (one per id, the last given wins)."""
    by_id = latest_by_id(records)
    text = "".join(dumps(by_id[k]) + "\n" for k in sorted(by_id))
    return atomic_write(Path(path), lambda: text.encode("utf-8"))


def read_attributes(manifest: str | os.PathLike, stems: list[str]) -> dict[str, str]:
    """Stem -> canonical attribute from a ``manifest.jsonl`` (or a training-set folder holding one)."""
    path = Path(manifest)
    if path.is_dir():
        path = path / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such manifest (expected a {MANIFEST} in the training-set layout).")
    by_id: dict[str, str] = {}
    by_source: dict[str, set[str]] = {}
    for rec in map(ItemRecord.from_dict, read_records(path)):
        try:
            attr = canonical(str(rec.attribute))
        except ValueError as e:  # no attribute, unknown attribute name
            raise ValueError(f"{path}: item {rec.id!r} has no known 'attribute' ({e}).") from e
        by_id[rec.id] = attr
        if rec.source:
            by_source.setdefault(Path(rec.source).stem, set()).add(attr)
    out, unknown, ambiguous = {}, [], []
    for s in stems:
        if s in by_id:
            out[s] = by_id[s]
        elif len(by_source.get(s, ())) == 1:
            out[s] = next(iter(by_source[s]))
        elif s in by_source:
            ambiguous.append(f"{s} ({', '.join(sorted(by_source[s]))})")
        else:
            unknown.append(s)
    if unknown or ambiguous:
        msg = f"{path}: "
        if unknown:
            msg += f"no record (by id or source stem) for: {', '.join(unknown[:10])}" + \
                   (f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else "") + ". "
        if ambiguous:
            msg += ("source stems edited for several attributes, name the files by item id: "
                    f"{', '.join(ambiguous[:10])}.")
        raise ValueError(msg.strip())
    return out


def is_image_set(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an image-set folder (it holds ``manifest.jsonl`` or ``items/``)."""
    p = Path(path)
    return p.is_dir() and ((p / MANIFEST).is_file() or (p / ITEMS).is_dir())


class ImageSet:
    """An image-set folder: its records (latest line per id) and the file of each item's roles."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    def records(self) -> list[ItemRecord]:
        """The recorded items, sorted by id (an ``items/`` folder not yet recorded belongs to an unfinished run)."""
        by_id = latest_by_id(read_records(self.manifest))
        return [ItemRecord.from_dict(by_id[k]) for k in sorted(by_id)]

    def path(self, item_id: str, role: str) -> Path:
        return self.root / ITEMS / item_id / role_file(role)

    def methods(self, records: Iterable[ItemRecord] | None = None) -> list[str]:
        """The cleaning methods with an output for at least one item, sorted."""
        found = set()
        for rec in self.records() if records is None else records:
            d = self.root / ITEMS / rec.id / CLEANED
            if d.is_dir():
                found.update(f.stem for f in d.iterdir() if f.suffix == ".png" and not f.name.startswith("."))
        return sorted(found)

    def add(self, records: Iterable[ItemRecord]) -> None:
        """Append ``records`` (each listing the roles it now has) to the manifest."""
        append_records(self.manifest, [r.to_dict() for r in records])


def list_images(path: str | os.PathLike) -> list[Path]:
    """A file itself, or the image files (by suffix) directly inside a folder, sorted by name."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such file or folder.")
    return sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def match_by_stem(primary: Iterable[str], other: list[Path], what: str, tags: tuple[str, ...] = (),
                  exact: bool = False, shown: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Pair names with files of the same stem; ``<name><tag>`` counts too (``a_mask.png`` for ``a``).

    Raises ``ValueError`` listing the names without a file (as ``shown`` names them; and with ``exact``, the
    files without a name), or naming two files that share a stem.
    """
    by_stem: dict[str, Path] = {}
    for f in other:
        if f.stem in by_stem:
            raise ValueError(f"{f.parent}: {by_stem[f.stem].name} and {f.name} share the name stem {f.stem!r}, "
                             f"so which {what} file to use is unclear; keep one per stem.")
        by_stem[f.stem] = f
    out, missing = {}, []
    for name in primary:
        hit = by_stem.get(name) or next((by_stem[name + t] for t in tags if name + t in by_stem), None)
        if hit is None:
            missing.append((shown or {}).get(name, name))
        else:
            out[name] = hit
    extra = sorted(f.name for f in other if f not in out.values()) if exact else []
    if missing or extra:
        def show(names: list[str]) -> str:
            return ", ".join(names[:10]) + (f" (+{len(names) - 10} more)" if len(names) > 10 else "")
        where = f" in {other[0].parent}" if other else ""
        alt = "".join(f" or <stem>{t}" for t in tags)
        parts = [f"no {what} file with the same name stem{alt}{where} for: {show(missing)}"] if missing else []
        parts += [f"{what} file(s){where} with no input of the same stem: {show(extra)}"] if extra else []
        raise ValueError("; ".join(parts))
    return out


@dataclass(frozen=True)
class Item:
    """One unit of work: an id (item id, or the original's name stem), its role files, its attribute."""

    id: str
    files: Mapping[str, Path]
    attribute: str | None = None
    record: ItemRecord | None = None

    def __getitem__(self, role: str) -> Path:
        return self.files[role]

    @property
    def name(self) -> str:
        """How messages name the item: its id in an image set, else the original's file name."""
        return self.id if self.record is not None or "original" not in self.files else self.files["original"].name


def _from_set(s: ImageSet, roles: tuple[str, ...], optional: tuple[str, ...]) -> list[Item]:
    recs = s.records()
    if not recs:
        raise ValueError(f"{s.root}: an image set without items (its {MANIFEST} is empty or missing)")
    items, lacking = [], {}
    for rec in recs:
        files = {r: s.path(rec.id, r) for r in (*roles, *optional) if s.path(rec.id, r).is_file()}
        need = [r for r in roles if r not in files]
        if need:
            lacking.setdefault(", ".join(need), []).append(rec.id)
            continue
        items.append(Item(rec.id, files, rec.attribute, rec))
    if lacking:
        what, ids = next(iter(lacking.items()))
        hint = {"face_mask": "run `blendfix mask -i SET` first", "target": "run `blendfix blend -i SET` first"}
        raise ValueError(f"{s.root}: {len(ids)} item(s) have no {what} image (e.g. {ids[0]}); "
                         + next((h for r, h in hint.items() if r in what), "give that role with its option"))
    return items


def collect(source: str | os.PathLike, roles: tuple[str, ...] = ("original",), *,
            given: Mapping[str, str | os.PathLike | None] | None = None,
            shared: tuple[str, ...] = ("mask", "face_mask"), optional: tuple[str, ...] = (),
            flags: Mapping[str, str] | None = None) -> list[Item]:
    """The items of ``source`` with a file for every role in ``roles`` (and ``optional`` ones where present).

    ``source`` is an image set, a folder of photos, or one photo (the ``original`` role). ``given`` maps a
    role to a file or folder that overrides (set) or supplies (plain folder) it: a folder is paired by name
    stem with the items, a file serves the one item, or every item for a role in ``shared``.
    ``flags`` names the option of a role in messages (default ``--<role>``).
    Raises ``ValueError`` naming what is missing and the fix.
    """
    def flag(role: str) -> str:
        return (flags or {}).get(role, "--" + role.replace("_", "-"))

    given = {r: Path(p) for r, p in (given or {}).items() if p is not None}
    src = Path(source)
    if is_image_set(src):
        items = _from_set(ImageSet(src), tuple(r for r in roles if r not in given), optional)
    else:
        photos = list_images(src)
        if not photos:
            raise ValueError(f"{src}: no images found (looked for files ending in {', '.join(IMAGE_SUFFIXES)})")
        stems: dict[str, Path] = {}
        for p in photos:
            if p.stem in stems:
                raise ValueError(f"{src}: {stems[p.stem].name} and {p.name} share the name stem {p.stem!r}; "
                                 "outputs are named by stem, so rename one.")
            stems[p.stem] = p
        absent = [r for r in roles if r != "original" and r not in given]
        if absent:
            raise ValueError(f"{src} is a folder of photos, not an image set: give {flag(absent[0])} "
                             "(a file or a folder with the same name stems)")
        items = [Item(s, {"original": p}) for s, p in stems.items()]
    for role, path in given.items():
        if path.is_file():
            if len(items) > 1 and role not in shared:
                raise ValueError(f"{flag(role)} {path} is one file but the input holds {len(items)} "
                                 "images; give a folder of files with the same name stems")
            files = dict.fromkeys((i.id for i in items), path)
        else:
            files = match_by_stem([i.id for i in items], list_images(path), flag(role).lstrip("-"),
                                  tags=TAGS.get(role, (f"_{role}",)), shown={i.id: i.name for i in items})
        items = [replace(i, files={**i.files, role: files[i.id]}) for i in items]
    return items
