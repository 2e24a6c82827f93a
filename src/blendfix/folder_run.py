"""A pipelined folder run: workers decode the next items and encode finished ones while the network runs.

:func:`run_pipelined` keeps the cores busy on a CPU: ``load`` (decoding images) runs on a thread
pool a few items ahead, ``save`` (PNG encoding + atomic write) runs on the same pool behind, and
``process`` (the network) runs on the calling thread on batches of items whose ``key`` (the image
size) agrees. Decoders, zlib and onnxruntime all release the GIL, so threads overlap for real.

A failing item is skipped and reported, never aborting the others: a failed batch is retried one
item at a time. Warnings are collected per item even though several threads raise them at once.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Generic, TypeVar

from .errors import BlendfixError

T = TypeVar("T")
D = TypeVar("D")
R = TypeVar("R")

#: Failures a user can fix (bad file, sizes, missing input); others are reported with their type.
USER_ERRORS = (BlendfixError, ValueError, OSError)

_local = threading.local()
_END = object()


@contextmanager
def routed_warnings() -> Iterator[None]:
    """While active, warnings raised on a thread inside :func:`collected_warnings` go to that thread's list."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        shown = warnings.showwarning

        def route(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
            sink = getattr(_local, "sink", None)
            if sink is None:
                shown(message, category, filename, lineno, file, line)
            else:
                sink.append(str(message))

        warnings.showwarning = route
        yield


@contextmanager
def collected_warnings() -> Iterator[list[str]]:
    """The messages of the warnings this thread raises inside the block (under :func:`routed_warnings`)."""
    _local.sink = sink = []
    try:
        yield sink
    finally:
        _local.sink = None


def _describe(e: BaseException) -> str:
    return str(e) if isinstance(e, USER_ERRORS) else f"{type(e).__name__}: {e}"


class _Loaded(Generic[T, D]):
    def __init__(self, item: T, data: D, notes: list[str]) -> None:
        self.item, self.data, self.notes = item, data, notes


def run_pipelined(items: Sequence[T], load: Callable[[T], D], process: Callable[[list[T], list[D]], list[R]],
                  save: Callable[[T, R], None], *, batch_size: int, key: Callable[[D], Hashable],
                  name: Callable[[T], str] = str, workers: int = 2,
                  warn: Callable[[str, list[str]], None] | None = None,
                  done: Callable[[int], None] | None = None,
                  describe: Callable[[Exception], str] | None = None) -> list[tuple[str, str]]:
    """Load, process in same-``key`` batches of up to ``batch_size``, and save every item.

    ``load(item)`` and ``save(item, result)`` run on ``workers`` threads; ``process(items, data)``
    runs here and returns one result per item. ``warn(label, messages)`` receives each item's (or
    batch's) warnings; ``done(n)`` is called as items finish (saved or failed), for a progress bar;
    ``describe(e)`` words a failure that is not a user error (with ``BLENDFIX_DEBUG`` set, such a
    failure is raised instead, with its traceback). Returns ``(name(item), reason)`` for every failed
    item, in the order they failed.
    """
    if batch_size < 1 or workers < 1:
        raise ValueError(f"batch_size and workers must be >= 1, got {batch_size} and {workers}")
    failures: list[tuple[str, str]] = []
    report = warn or (lambda label, notes: None)
    finished = done or (lambda n: None)
    ahead = batch_size + 2 * workers  # decoded items waiting for the network, at most (plus stragglers)
    limit = 4 * batch_size  # held in unfinished batches before the largest runs anyway

    def fail(item: T, e: Exception) -> None:
        if not isinstance(e, USER_ERRORS):
            if os.environ.get("BLENDFIX_DEBUG"):
                raise e
            if describe is not None:
                failures.append((name(item), describe(e)))
                finished(1)
                return
        failures.append((name(item), _describe(e)))
        finished(1)

    def load_one(item: T) -> _Loaded[T, D]:
        with collected_warnings() as notes:
            data = load(item)
        return _Loaded(item, data, notes)

    def save_one(item: T, result: R) -> list[str]:
        with collected_warnings() as notes:
            save(item, result)
        return notes

    with routed_warnings(), ThreadPoolExecutor(workers, thread_name_prefix="blendfix-io") as pool:
        todo = iter(items)
        loads: deque[tuple[T, Future]] = deque()
        saves: deque[tuple[T, Future]] = deque()
        buckets: dict[Hashable, list[_Loaded[T, D]]] = {}

        def top_up() -> None:
            while len(loads) < ahead and (item := next(todo, _END)) is not _END:
                loads.append((item, pool.submit(load_one, item)))

        def harvest(block: bool = False) -> None:
            while saves and (block or saves[0][1].done() or len(saves) > 2 * workers):
                item, fut = saves.popleft()
                try:
                    notes = fut.result()
                except Exception as e:  # noqa: BLE001 - one item's failure never ends the run
                    fail(item, e)
                    continue
                if notes:
                    report(name(item), notes)
                finished(1)

        def run(batch: list[_Loaded[T, D]]) -> None:
            try:
                with collected_warnings() as notes:
                    results = process([b.item for b in batch], [b.data for b in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"process returned {len(results)} results for {len(batch)} items")
            except Exception as e:  # noqa: BLE001
                if len(batch) > 1:  # find the culprit: each item alone
                    for b in batch:
                        run([b])
                    return
                fail(batch[0].item, e)
                return
            if notes:
                report(name(batch[0].item) if len(batch) == 1 else "batch", notes)
            for b, r in zip(batch, results, strict=True):
                saves.append((b.item, pool.submit(save_one, b.item, r)))
            harvest()

        top_up()
        while loads:
            item, fut = loads.popleft()
            top_up()
            try:
                got = fut.result()
            except Exception as e:  # noqa: BLE001
                fail(item, e)
                continue
            if got.notes:
                report(name(item), got.notes)
            bucket = buckets.setdefault(key(got.data), [])
            bucket.append(got)
            if len(bucket) >= batch_size:
                run(buckets.pop(key(got.data)))
            elif sum(len(b) for b in buckets.values()) > limit:
                run(buckets.pop(max(buckets, key=lambda k: len(buckets[k]))))
            harvest()
        for k in list(buckets):
            run(buckets.pop(k))
        harvest(block=True)
    return failures
