"""Making one item, in whichever process: the task, the item-maker protocol, atomic finishing.

A maker writes the item's images into ``items/.<id>.tmp``; :func:`finish_item` checks every layout
file is there, writes ``meta.json`` and renames the folder to ``items/<id>``. Failures come back as
:class:`Outcome` skips (never raised), classified by :func:`classify`; an ``OSError`` (disk full,
read-only folder, I/O error) is kind :data:`IO_ERROR`, a failure of the run that is never listed as
a property of the photo. Worker processes (``spawn``) build their maker once in :func:`_init_worker`,
after asking the kernel to kill them with their parent (:func:`die_with_parent`), and check that the
parent (which holds the dataset lock) is alive before an item takes its final name.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .. import __version__
from ..data import layout
from ..errors import BlendfixError, ImageReadError, NoFaceError
from . import manifest
from .config import SynthConfig

TMP_SUFFIX = ".tmp"
#: Outcome kind of an ``OSError``: the run failed (exit 1), the photo is not listed as skipped.
IO_ERROR = "io_error"


class SkipItem(BlendfixError, ValueError):
    """Raised by an item maker to skip a photo for a named reason (``kind``) without failing the run."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Task:
    """One photo to turn into one item."""

    path: str        # the photo file (as found; absolute or relative to the working folder)
    rel: str         # its path inside the input folder, with '/' separators: the item's identity
    source: str      # the photo path as given on the command line, recorded in the manifest
    item_id: str
    seed: int
    attribute: str
    editor: str = ""  # the editor of this item ("" = the set's editor)


class ItemMaker(Protocol):
    """Makes one item: writes every image file of :data:`layout.ITEM_FILES` except ``meta.json``
    into ``tmp_dir`` and returns (extra manifest fields, seconds per stage)."""

    def __call__(self, task: Task, tmp_dir: Path) -> tuple[dict[str, Any], dict[str, float]]: ...


#: ``factory(config, options) -> ItemMaker``; a module-level function (it is sent to workers).
#: ``options``: how to run, not what to make (``device``, ``precision``, ``checkpoints`` ...).
Factory = Callable[[SynthConfig, dict[str, Any]], ItemMaker]


@dataclass(frozen=True)
class RunContext:
    config: SynthConfig
    items_dir: str
    checkpoints: dict[str, str | None]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    task: Task
    record: dict[str, Any] | None = None
    kind: str = ""
    reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    errno: int | None = None  # of an OSError (kind IO_ERROR)


def classify(exc: BaseException) -> str:
    """The kind of an exception: ``unreadable``, ``no_face``, a :class:`SkipItem` kind, ``invalid``
    (another user-input problem), :data:`IO_ERROR` (an ``OSError``) or ``error`` (unexpected: a bug)."""
    if isinstance(exc, SkipItem):
        return exc.kind
    if isinstance(exc, ImageReadError):
        return "unreadable"
    if isinstance(exc, NoFaceError):
        return "no_face"
    if isinstance(exc, OSError):  # the disk or the file system, not the photo: the run fails, a rerun retries
        return IO_ERROR
    if isinstance(exc, BlendfixError | ValueError):
        return "invalid"
    return "error"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def base_record(task: Task, ctx: RunContext) -> dict[str, Any]:
    """The manifest fields every item has (see :mod:`blendfix.data.layout`); ``source_sha256`` and
    ``source_size`` identify the photo's content, so a rerun can tell another folder's same-named photo."""
    cfg = ctx.config
    return {"id": task.item_id, "source": task.source, "rel": task.rel, "attribute": task.attribute,
            "source_sha256": file_sha256(task.path), "source_size": os.path.getsize(task.path),
            "seed": task.seed, "global_seed": cfg.seed, "editor": task.editor or cfg.editor,
            "resolution": cfg.resolution,
            "checkpoints": dict(ctx.checkpoints), "blendfix_version": __version__}


def finish_item(task: Task, ctx: RunContext, tmp: Path, extra: dict[str, Any],
                check: Callable[[], None] | None = None) -> dict[str, Any]:
    """Check the temporary folder is complete, write ``meta.json``, rename it into place.

    ``check`` (worker processes) runs before the item takes its final name; it ends the process when
    the parent, which holds the dataset lock, is gone.
    """
    missing = [f for f in layout.ITEM_FILES if f != layout.META and not (tmp / f).is_file()]
    if missing:
        raise RuntimeError(f"item maker left out {', '.join(missing)} for {task.source}")
    record = {**extra, **base_record(task, ctx)}
    (tmp / layout.META).write_text(manifest.dumps(record) + "\n", encoding="utf-8")
    if check is not None:
        check()
    final = Path(ctx.items_dir) / task.item_id
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    return record


def tmp_dir_for(ctx: RunContext, task: Task) -> Path:
    tmp = Path(ctx.items_dir) / f".{task.item_id}{TMP_SUFFIX}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _failed(task: Task, tmp: Path | None, e: BaseException) -> Outcome:
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    kind = classify(e)
    reason = str(e) if kind not in ("error", IO_ERROR) else "".join(traceback.format_exception_only(type(e), e)).strip()
    return Outcome(task, kind=kind, reason=reason, errno=e.errno if isinstance(e, OSError) else None)


def run_task(maker: ItemMaker, ctx: RunContext, task: Task, check: Callable[[], None] | None = None) -> Outcome:
    """Make one item; a failure is returned as an outcome (the temporary folder removed), not raised."""
    tmp = None
    try:
        tmp = tmp_dir_for(ctx, task)
        extra, timings = maker(task, tmp)
        return Outcome(task, finish_item(task, ctx, tmp, extra, check), timings=timings)
    except Exception as e:  # noqa: BLE001 - every failure becomes an outcome; bugs are kind "error"
        return _failed(task, tmp, e)


# worker-process state: one item maker per process, built once by the initializer
_WORKER: dict[str, Any] = {}


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Make this process end when ``parent`` does: on Linux the kernel sends SIGKILL when the parent
    dies (``prctl(PR_SET_PDEATHSIG)``); everywhere, a parent already gone ends it now. A synth
    worker must never outlive the run that holds the dataset lock (it would keep writing unlocked)."""
    if sys.platform.startswith("linux"):
        # without a usable libc, the pid check below and before each rename still holds
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    _exit_if_orphaned(parent)


def _exit_if_orphaned(parent: int) -> None:
    if os.getppid() != parent:
        os._exit(1)


def _init_worker(factory: Factory, ctx: RunContext, parent: int) -> None:
    """Worker start-up: die with the parent; one thread for OpenMP, OpenCV and torch; build the maker once."""
    die_with_parent(parent)
    _WORKER["parent"] = parent
    os.environ["OMP_NUM_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(1)
    _WORKER["maker"] = factory(ctx.config, dict(ctx.options))
    _WORKER["ctx"] = ctx
    if "torch" in sys.modules:  # imported by the maker (editor, Poisson backend): keep it at 1 thread
        sys.modules["torch"].set_num_threads(1)


def _worker_task(task: Task) -> Outcome:
    parent = _WORKER["parent"]
    _exit_if_orphaned(parent)
    return run_task(_WORKER["maker"], _WORKER["ctx"], task, check=lambda: _exit_if_orphaned(parent))


def run_batch(maker: Any, ctx: RunContext, tasks: list[Task]) -> list[Outcome]:
    """Make several items with one ``maker.make_batch(tasks, tmp_dirs)`` call (batched GPU editing);
    it returns, per task, ``(extra, timings)`` or the exception that task raised."""
    try:
        tmps = [tmp_dir_for(ctx, t) for t in tasks]
    except OSError as e:
        return [_failed(t, None, e) for t in tasks]
    try:
        results = maker.make_batch(tasks, tmps)
    except Exception:  # the whole batch failed: fall back to one at a time, so each failure is named
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)
        return [run_task(maker, ctx, t) for t in tasks]
    outcomes = []
    for task, tmp, res in zip(tasks, tmps, results, strict=True):
        try:
            if isinstance(res, BaseException):
                raise res
            extra, timings = res
            outcomes.append(Outcome(task, finish_item(task, ctx, tmp, extra), timings=timings))
        except Exception as e:  # noqa: BLE001 - an outcome, like run_task
            outcomes.append(_failed(task, tmp, e))
    return outcomes


def pool_outcomes(pending: list[Task], ctx: RunContext, factory: Factory, workers: int) -> Iterator[Outcome]:
    """Outcomes of ``pending`` from ``workers`` spawned processes, in completion order; at most two
    tasks per worker are queued at a time, so memory stays flat however many photos there are."""
    import multiprocessing

    mp = multiprocessing.get_context("spawn")
    todo = iter(pending)
    inflight: set[Future] = set()
    with ProcessPoolExecutor(workers, mp_context=mp, initializer=_init_worker,
                             initargs=(factory, ctx, os.getpid())) as ex:
        try:
            while True:
                while len(inflight) < 2 * workers and (task := next(todo, None)) is not None:
                    inflight.add(ex.submit(_worker_task, task))
                if not inflight:
                    break
                done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        except BrokenProcessPool as e:
            raise BlendfixError("a synth worker process died (out of memory or killed); finished items "
                                "are kept: rerun the same command to resume.") from e
        except BaseException:
            for f in inflight:
                f.cancel()
            raise
