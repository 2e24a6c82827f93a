"""One writer per output folder: an advisory ``flock`` on ``FOLDER/.lock`` held for the whole run.

The mechanism ``blendfix synth`` introduced, shared by every verb that writes a folder across many
steps (``synth``, ``clean``, ``train``): a second run on the same folder fails at once with an error
saying who holds it, instead of both writing a mix. The lock is released by the kernel when the
holder exits however it ends (kill -9 included), so a stale ``.lock`` file never blocks a rerun.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import BlendfixError

LOCK = ".lock"


def try_lock(folder: Path) -> IO[str] | None:
    """Take ``folder/.lock`` (creating the folder) without waiting: the open handle (keep it open to
    hold the lock; close it to release), or ``None`` when another process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    fh = open(folder / LOCK, "a+")  # noqa: SIM115 - held by the caller
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


@contextmanager
def folder_lock(folder: Path, holder: str, hint: str) -> Iterator[None]:
    """Hold ``folder/.lock`` for the block; if another run holds it, raise naming ``holder`` (e.g.
    ``"blendfix synth run"``) and the ``hint`` (what to do instead)."""
    fh = try_lock(folder)
    if fh is None:
        raise BlendfixError(f"{folder}: another {holder} is writing into this folder; {hint}")
    try:
        yield
    finally:
        fh.close()
