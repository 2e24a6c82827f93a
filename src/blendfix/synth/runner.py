"""Run a synthesis: find photos, skip finished ones, make the rest in worker processes, record them.

Guarantees (see ``docs/synth.md``):

* **Atomic items.** A worker writes an item into ``items/.<id>.tmp`` and renames it to
  ``items/<id>`` only when every file is there; the parent appends the manifest record after the
  rename. A killed run therefore leaves finished items, maybe a stale ``.tmp`` folder (deleted on
  the next start) and maybe a partial manifest line (cut off on the next start).
* **Resume.** A rerun skips items recorded in the manifest. An item folder that is complete on disk
  but missing from the manifest (the run died between rename and append) is *re-recorded* from its
  ``meta.json`` without redoing it; an incomplete one is deleted and redone. Photos listed in
  ``skipped.jsonl`` are not retried unless ``retry_skipped``.
* **Determinism.** Each item's seed and attribute come from (global seed, photo path relative to the
  input folder), never from order or worker; when a run completes the manifest and skip list are
  rewritten sorted by id. One worker or eight give byte-identical folders.
* **One writer.** Only the parent process writes the manifest; a lock file (``.lock``) stops two
  runs from writing into one folder at once. Shards go to separate folders and are merged.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from .. import __version__
from ..config import save_config, to_dict
from ..data import layout
from ..errors import BlendfixError, ImageReadError, NoFaceError
from ..io import IMAGE_SUFFIXES
from . import manifest
from .config import DEFINING_FIELDS, SynthConfig, choose_attribute, item_id, item_seed, shard_of

SKIPPED = layout.SKIPPED
LOCK = ".lock"
TMP_SUFFIX = ".tmp"


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


@dataclass
class RunSummary:
    """What a run did. ``skipped`` holds this run's ``(source, kind, reason)``."""

    photos: int = 0            # photos in this run's selection (after --shard / --limit)
    already_done: int = 0      # recorded in the manifest before this run
    rerecorded: int = 0        # complete on disk, missing from the manifest: recorded without redoing
    made: int = 0              # made by this run
    skipped_before: int = 0    # listed in skipped.jsonl by an earlier run and not retried
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        """Items that failed for an unexpected reason (a bug, not a bad photo)."""
        return sum(1 for _, kind, _ in self.skipped if kind == "error")

    def exit_code(self, strict: bool = False) -> int:
        """0 normally; 1 when an unexpected error occurred, when nothing at all could be made
        from a non-empty selection, or (``strict``) when any photo of the selection is skipped
        (now or by an earlier run)."""
        if self.errors or (strict and (self.skipped or self.skipped_before)):
            return 1
        finished = self.already_done + self.rerecorded + self.made
        return 1 if self.photos and finished == 0 else 0


# --------------------------------------------------------------------------- photos and tasks


def discover(input_path: str | os.PathLike) -> list[tuple[Path, str]]:
    """Image files under ``input_path`` (recursively; hidden files and folders ignored) as
    ``(path, relative posix path)``, sorted by relative path. A single file is its own list."""
    root = Path(input_path)
    if root.is_file():
        return [(root, root.name)]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such photo folder or file.")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            p = Path(dirpath) / name
            found.append((p, p.relative_to(root).as_posix()))
    return sorted(found, key=lambda x: x[1])


def make_tasks(config: SynthConfig, shard: tuple[int, int] | None = None,
               limit: int | None = None) -> list[Task]:
    """The tasks for every photo of ``config.input`` in the shard, first ``limit`` of them."""
    given = Path(config.input)
    tasks = []
    for path, rel in discover(given):
        if shard is not None and shard_of(rel, shard[1]) != shard[0]:
            continue
        source = str(given) if given.is_file() else str(given / rel)
        tasks.append(Task(str(path), rel, source, item_id(rel), item_seed(config.seed, rel),
                          choose_attribute(config.seed, rel, config.attributes)))
    return tasks[:limit] if limit is not None else tasks


# --------------------------------------------------------------------------- one item (any process)


def classify(exc: BaseException) -> str:
    """The skip kind of an exception: ``unreadable``, ``no_face``, a :class:`SkipItem` kind,
    ``invalid`` (another user-input problem) or ``error`` (unexpected: a bug)."""
    if isinstance(exc, SkipItem):
        return exc.kind
    if isinstance(exc, ImageReadError):
        return "unreadable"
    if isinstance(exc, NoFaceError):
        return "no_face"
    if isinstance(exc, BlendfixError | ValueError | OSError):
        return "invalid"
    return "error"


def base_record(task: Task, ctx: RunContext) -> dict[str, Any]:
    """The manifest fields every item has (see :mod:`blendfix.data.layout`)."""
    cfg = ctx.config
    return {"id": task.item_id, "source": task.source, "rel": task.rel, "attribute": task.attribute,
            "seed": task.seed, "global_seed": cfg.seed, "editor": cfg.editor, "resolution": cfg.resolution,
            "checkpoints": dict(ctx.checkpoints), "blendfix_version": __version__}


def finish_item(task: Task, ctx: RunContext, tmp: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """Check the temporary folder is complete, write ``meta.json``, rename it into place."""
    missing = [f for f in layout.ITEM_FILES if f != layout.META and not (tmp / f).is_file()]
    if missing:
        raise RuntimeError(f"item maker left out {', '.join(missing)} for {task.source}")
    record = {**extra, **base_record(task, ctx)}
    (tmp / layout.META).write_text(manifest.dumps(record) + "\n", encoding="utf-8")
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


def run_task(maker: ItemMaker, ctx: RunContext, task: Task) -> Outcome:
    """Make one item; a failure is returned as a skip (the temporary folder removed), not raised."""
    tmp = tmp_dir_for(ctx, task)
    try:
        extra, timings = maker(task, tmp)
        return Outcome(task, finish_item(task, ctx, tmp, extra), timings=timings)
    except Exception as e:  # noqa: BLE001 - every failure becomes a listed skip; bugs are kind "error"
        shutil.rmtree(tmp, ignore_errors=True)
        kind = classify(e)
        reason = str(e) if kind != "error" else "".join(traceback.format_exception_only(type(e), e)).strip()
        return Outcome(task, kind=kind, reason=reason)


# worker-process state: one item maker per process, built once by the initializer
_WORKER: dict[str, Any] = {}


def _init_worker(factory: Factory, ctx: RunContext) -> None:
    """Worker start-up: one thread for OpenMP, OpenCV and torch; build the item maker once."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(1)
    _WORKER["maker"] = factory(ctx.config, dict(ctx.options))
    _WORKER["ctx"] = ctx
    if "torch" in sys.modules:  # imported by the maker (editor, Poisson backend): keep it at 1 thread
        sys.modules["torch"].set_num_threads(1)


def _worker_task(task: Task) -> Outcome:
    return run_task(_WORKER["maker"], _WORKER["ctx"], task)


# --------------------------------------------------------------------------- the dataset folder


@contextmanager
def dataset_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` for the run; a second run on the same folder fails at once."""
    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / LOCK, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise BlendfixError(f"{out}: another blendfix synth run is writing into this folder; "
                                f"wait for it, or give each shard its own -o folder and merge them.") from e
        yield
    finally:
        fh.close()


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


# --------------------------------------------------------------------------- the run


def run_synth(config: SynthConfig, out: str | os.PathLike, *, factory: Factory | None = None,
              workers: int = 1, shard: tuple[int, int] | None = None, limit: int | None = None,
              batch_size: int = 1, retry_skipped: bool = False, checkpoints: dict[str, str | None] | None = None,
              options: dict[str, Any] | None = None, progress: bool = True) -> RunSummary:
    """Build (or resume) the training set of ``config`` in ``out``; see the module docstring.

    ``factory(config, options)`` builds the item maker once per process (default: the real
    editor -> face mask -> Poisson pipeline). ``workers`` > 1 runs that many ``spawn`` processes
    (torch at 1 thread each); 1 runs in this process, where a maker with ``make_batch`` gets
    ``batch_size`` photos at a time (the GAN editor on a GPU). ``checkpoints``: name -> sha256
    recorded in every item (computed by the caller, once); ``options`` go to ``factory`` with
    ``checkpoints`` added (``device``, ``precision`` for the GAN editor).
    """
    if factory is None:
        from .pipeline import make_item_maker as factory
    if workers < 1:
        raise ValueError(f"workers {workers}: must be at least 1")
    out = Path(out)
    start = time.perf_counter()
    checkpoints = dict(checkpoints or {})
    tasks = make_tasks(config, shard, limit)
    summary = RunSummary(photos=len(tasks))
    with dataset_lock(out):
        check_config(out, config, checkpoints)
        extra: dict[str, Any] = {"blendfix_version": __version__, "checkpoints": checkpoints}
        if shard is not None:
            extra["shard"] = f"{shard[0]}/{shard[1]}"
        save_config(config, out / layout.CONFIG, extra=extra)
        records, rerecorded = reconcile(out)
        skip_path = out / SKIPPED
        manifest.repair(skip_path)
        skipped = manifest.latest_by_id(manifest.read(skip_path))
        selected = {t.item_id for t in tasks}
        summary.rerecorded = len(selected & rerecorded)
        summary.already_done = len(selected & records.keys()) - summary.rerecorded
        pending = [t for t in tasks if t.item_id not in records]
        if not retry_skipped:
            summary.skipped_before = sum(1 for t in pending if t.item_id in skipped)
            pending = [t for t in pending if t.item_id not in skipped]
        ctx = RunContext(config, str(out / layout.ITEMS), checkpoints,
                         {**(options or {}), "checkpoints": checkpoints})

        def handle(o: Outcome) -> None:
            if o.record is not None:
                manifest.append(out / layout.MANIFEST, [o.record])
                records[o.record["id"]] = o.record
                summary.made += 1
                for k, v in o.timings.items():
                    summary.timings[k] = summary.timings.get(k, 0.0) + v
            else:
                rec = {"id": o.task.item_id, "source": o.task.source, "kind": o.kind, "reason": o.reason}
                manifest.append(skip_path, [rec])
                skipped[o.task.item_id] = rec
                summary.skipped.append((o.task.source, o.kind, o.reason))

        bar = _bar(len(pending), progress)
        try:
            for o in _outcomes(pending, ctx, factory, workers, batch_size):
                handle(o)
                if o.record is None:
                    bar.set_postfix(skipped=len(summary.skipped), refresh=False)
                bar.update(1)
        finally:
            bar.close()
        manifest.rewrite_sorted(out / layout.MANIFEST, records.values())
        manifest.rewrite_sorted(skip_path, (r for k, r in skipped.items() if k not in records))
    summary.seconds = time.perf_counter() - start
    return summary


def _bar(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc="synth", unit="photo", file=sys.stderr, dynamic_ncols=True,
                disable=None if enabled else True)


def _outcomes(pending: list[Task], ctx: RunContext, factory: Factory, workers: int,
              batch_size: int) -> Iterator[Outcome]:
    if not pending:
        return
    if workers == 1:
        maker = factory(ctx.config, dict(ctx.options))
        if batch_size > 1 and hasattr(maker, "make_batch"):
            pending = sorted(pending, key=lambda t: t.attribute)  # editors batch one attribute at a time
            for i in range(0, len(pending), batch_size):
                yield from run_batch(maker, ctx, pending[i:i + batch_size])
        else:
            for task in pending:
                yield run_task(maker, ctx, task)
        return
    factory(ctx.config, dict(ctx.options))  # fail here, with a clear message, if it cannot be built
    yield from _pool_outcomes(pending, ctx, factory, workers)


def run_batch(maker: Any, ctx: RunContext, tasks: list[Task]) -> list[Outcome]:
    """Make several items with one ``maker.make_batch(tasks, tmp_dirs)`` call (batched GPU editing);
    it returns, per task, ``(extra, timings)`` or the exception that task raised."""
    tmps = [tmp_dir_for(ctx, t) for t in tasks]
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
        except Exception as e:  # noqa: BLE001 - listed as a skip, like run_task
            shutil.rmtree(tmp, ignore_errors=True)
            outcomes.append(Outcome(task, kind=classify(e), reason=str(e)))
    return outcomes


def _pool_outcomes(pending: list[Task], ctx: RunContext, factory: Factory, workers: int) -> Iterator[Outcome]:
    import multiprocessing

    mp = multiprocessing.get_context("spawn")
    todo = iter(pending)
    inflight: set[Future] = set()
    with ProcessPoolExecutor(workers, mp_context=mp, initializer=_init_worker, initargs=(factory, ctx)) as ex:
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
