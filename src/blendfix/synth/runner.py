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
  runs from writing into one folder at once. Shards go to separate folders and are merged. Worker
  processes die with the parent (:func:`~blendfix.synth.items.die_with_parent`), so none writes
  after a killed parent released the lock; hidden ``*.part`` files a kill left in the folder are
  deleted on the next start.
* **I/O errors fail the run.** An ``OSError`` while making an item (disk full, read-only folder) is
  not a property of the photo: it is never listed in ``skipped.jsonl``, the run exits non-zero, and
  it stops at once when the disk is full or read-only. A rerun retries those photos.
* **The photos are part of the set's identity.** ``-o`` inside ``-i`` is refused (a rerun would
  read the set as photos). Each record holds its photo's ``source_sha256`` and ``source_size``, and
  ``config.yaml`` the resolved input folder: a rerun from another folder whose same-named photos
  differ is refused (:func:`~blendfix.synth.folder.check_inputs`).
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import save_config
from ..data import layout
from ..folders import refuse_output_inside_inputs, sweep_partials
from ..io import IMAGE_SUFFIXES
from . import manifest
from .config import SynthConfig, choose_attribute, choose_editor, item_id, item_seed, shard_of, variant_rel
from .folder import INPUT_RESOLVED, SKIPPED, check_config, check_inputs, dataset_lock, reconcile, recorded_input
from .items import IO_ERROR, Factory, Outcome, RunContext, SkipItem, Task, pool_outcomes, run_batch, run_task

#: errno values after which every later item would fail the same way: the run stops at once
STOP_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})

__all__ = ["SKIPPED", "RunSummary", "SkipItem", "Task", "dataset_lock", "discover", "make_tasks", "run_synth"]


@dataclass
class RunSummary:
    """What a run did. ``skipped`` holds this run's ``(source, kind, reason)``."""

    photos: int = 0            # photos in this run's selection (after --shard / --limit)
    already_done: int = 0      # recorded in the manifest before this run
    rerecorded: int = 0        # complete on disk, missing from the manifest: recorded without redoing
    made: int = 0              # made by this run
    skipped_before: int = 0    # listed in skipped.jsonl by an earlier run and not retried
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    io_errors: list[tuple[str, str]] = field(default_factory=list)  # (source, reason): not skips, the run failed
    stopped: str = ""          # why the run stopped early (disk full, read-only), else ""
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        """Items that failed for an unexpected reason (a bug, not a bad photo)."""
        return sum(1 for _, kind, _ in self.skipped if kind == "error")

    def exit_code(self, strict: bool = False) -> int:
        """0 normally; 1 when an unexpected error or an I/O error occurred, when nothing at all could
        be made from a non-empty selection, or (``strict``) when any photo of the selection is
        skipped (now or by an earlier run)."""
        if self.errors or self.io_errors or (strict and (self.skipped or self.skipped_before)):
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
    """The tasks (``config.variants`` per photo) of ``config.input`` in the shard, first ``limit`` of them."""
    given = Path(config.input)
    tasks = []
    for path, rel in discover(given):
        if shard is not None and shard_of(rel, shard[1]) != shard[0]:
            continue
        source = str(given) if given.is_file() else str(given / rel)
        for k in range(config.variants):
            vrel = variant_rel(rel, k)
            tasks.append(Task(str(path), vrel, source, item_id(vrel), item_seed(config.seed, vrel),
                              choose_attribute(config.seed, vrel, config.attributes),
                              choose_editor(config.editor, config.seed, vrel)))
    return tasks[:limit] if limit is not None else tasks


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
    refuse_output_inside_inputs(out, {"-i": config.input})
    tasks = make_tasks(config, shard, limit)
    summary = RunSummary(photos=len(tasks))
    with dataset_lock(out):
        check_config(out, config, checkpoints)
        sweep_partials(out, locked=True)  # the lock is ours: any temporary file here is a killed run's
        records, rerecorded = reconcile(out)
        skip_path = out / SKIPPED
        manifest.repair(skip_path)
        skipped = manifest.latest_by_id(manifest.read(skip_path))
        # before config.yaml records this run's input folder: a refused run must leave the old one
        check_inputs(out, config.input, recorded_input(out), {t.item_id: t.path for t in tasks}, records, skipped)
        extra: dict[str, Any] = {"blendfix_version": __version__, "checkpoints": checkpoints,
                                 INPUT_RESOLVED: str(Path(config.input).resolve())}
        if shard is not None:
            extra["shard"] = f"{shard[0]}/{shard[1]}"
        save_config(config, out / layout.CONFIG, extra=extra)
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
            if o.kind == IO_ERROR:  # the disk, not the photo: not listed as skipped, a rerun retries it
                summary.io_errors.append((o.task.source, o.reason))
            elif o.record is not None:
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
                if o.kind == IO_ERROR and o.errno in STOP_ERRNOS:
                    summary.stopped = o.reason
                    break
                if o.record is None:
                    bar.set_postfix(skipped=len(summary.skipped), refresh=False)
                bar.update(1)
        finally:
            bar.close()
        if not summary.stopped:  # a full disk could not take the rewrite; the appended lines are complete
            manifest.rewrite_sorted(out / layout.MANIFEST, records.values())
            manifest.rewrite_sorted(skip_path, (r for k, r in skipped.items() if k not in records))
    summary.seconds = time.perf_counter() - start
    return summary


def _bar(total: int, enabled: bool) -> Any:
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
    yield from pool_outcomes(pending, ctx, factory, workers)
