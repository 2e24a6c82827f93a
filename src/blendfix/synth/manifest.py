"""The dataset's JSON-lines files: ``manifest.jsonl`` (finished items) and ``skipped.jsonl``.

Only one process appends to them (the parent of a synth run), one whole line per record, flushed
and fsynced. A run killed in the middle of an append leaves at most a partial last line, which
:func:`repair` cuts off before the next run appends. When a run completes, :func:`rewrite_sorted`
rewrites the file sorted by item id (atomically), so the manifest does not depend on the order in
which workers finished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..io import atomic_write


def dumps(record: dict[str, Any]) -> str:
    """One record as a canonical JSON line (sorted keys, no spaces, unicode kept)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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


def read(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a JSON-lines file (a partial or corrupt last line is ignored).

    A corrupt line elsewhere raises ``ValueError`` naming the file and line.
    """
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
            raise ValueError(f"{path}: line {n} is not a record with an 'id'")
        records.append(rec)
    return records


def append(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records as whole lines, flushed and fsynced (single writer only)."""
    text = "".join(dumps(r) + "\n" for r in records)
    if not text:
        return
    with open(path, "ab") as fh:
        fh.write(text.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def latest_by_id(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``id -> record``; a later record with the same id replaces an earlier one."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        out[r["id"]] = r
    return out


def rewrite_sorted(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    """Atomically replace ``path`` with ``records`` sorted by id (one per id, the last given wins)."""
    by_id = latest_by_id(records)
    text = "".join(dumps(by_id[k]) + "\n" for k in sorted(by_id))
    return atomic_write(path, lambda: text.encode("utf-8"))
