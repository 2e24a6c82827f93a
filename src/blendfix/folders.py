"""Output folders every verb shares: never inside an input folder, and no partial files left behind.

* :func:`refuse_output_inside_inputs` — a verb that scans a folder for inputs must not write into
  that folder (or below it): a rerun would read its own outputs as new inputs (``blendfix synth -i
  nest -o nest/dataset`` grew 10 -> 62 -> 325 items over three reruns). Raised before any work.
* :func:`partial_name` / :func:`sweep_partials` — every atomic write (:func:`blendfix.io.atomic_write`)
  goes through a hidden temporary file ``.<stem>.<host>.<pid>-<random><suffix>.part`` that is renamed
  into place when complete. A killed process leaves that file behind; the next run in that folder
  deletes the ones whose writing process (same host, pid) is gone, and never a live writer's.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import BlendfixError

PART_SUFFIX = ".part"
_PART = re.compile(r"^\.(?P<stem>.*)\.(?P<host>[0-9a-f]{8})\.(?P<pid>\d+)-[a-z0-9_]+(?P<suffix>\.[^.]*)?\.part$")


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def refuse_output_inside_inputs(output: str | os.PathLike, inputs: Mapping[str, str | os.PathLike | None]) -> None:
    """Raise :class:`BlendfixError` when the output folder is one of the input folders or lies inside one.

    ``inputs``: option name (e.g. ``"-i"``, ``"--fused"``) -> the path given (a folder, a file or
    ``None``; files and ``None`` are ignored: only a scanned folder can pick up outputs). Paths are
    compared after resolving symbolic links, so ``photos/../photos/out`` and a link into ``photos``
    are caught too. The message names both paths and the fix.
    """
    out = Path(output).expanduser().resolve()
    for option, given in inputs.items():
        if given is None or not Path(given).is_dir():
            continue
        folder = Path(given).expanduser().resolve()
        if _inside(out, folder):
            where = "is the input folder" if out == folder else "lies inside the input folder"
            raise BlendfixError(
                f"-o {output} {where} {option} {given}; a rerun would read this run's outputs as new inputs. "
                f"Choose an output folder outside {given}, e.g. {folder.parent / (folder.name + '_out')}."
            )


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def partial_name(path: Path) -> str:
    """The ``mkstemp`` prefix of a temporary file for ``path``: hidden, naming this host and process."""
    return f".{path.stem}.{_host_tag()}.{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def stale_partials(folder: str | os.PathLike, locked: bool = False) -> list[Path]:
    """Temporary files of :func:`blendfix.io.atomic_write` in ``folder`` whose writer (a process on this
    host) is gone: left by a killed or crashed run. Files of a live writer or another host are not listed.

    ``locked``: the caller holds the folder's lock (no other writer can be at work), so every hidden
    ``*.part`` file is stale, including those of older blendfix versions that did not name their writer.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host = _host_tag()
    stale = []
    for entry in os.scandir(folder):
        if locked and entry.name.startswith(".") and entry.name.endswith(PART_SUFFIX) and entry.is_file():
            stale.append(Path(entry.path))
            continue
        m = _PART.match(entry.name)
        if m and entry.is_file(follow_symlinks=False) and m["host"] == host and not _alive(int(m["pid"])):
            stale.append(Path(entry.path))
    return sorted(stale)


def sweep_partials(folders: str | os.PathLike | Iterable[str | os.PathLike], locked: bool = False) -> int:
    """Delete the :func:`stale_partials` of each folder (``locked`` as there); returns how many."""
    if isinstance(folders, str | os.PathLike):
        folders = [folders]
    n = 0
    for folder in folders:
        for p in stale_partials(folder, locked):
            try:
                p.unlink()
                n += 1
            except FileNotFoundError:  # another sweeper got there first
                pass
    return n
