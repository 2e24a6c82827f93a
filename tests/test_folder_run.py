"""The pipelined folder run: same-size batches, overlap of decoding with the network, per-item failures
and warnings, every item finished exactly once."""

from __future__ import annotations

import threading
import warnings

import pytest

from blendfix.errors import ImageReadError
from blendfix.folder_run import run_pipelined

SIZES = {"a": (64, 64), "b": (48, 80), "c": (64, 64), "d": (64, 64), "e": (48, 80), "f": (32, 32)}


def test_batches_share_a_size_and_every_item_is_saved_once_with_its_own_result():
    batches, saved, finished = [], {}, []
    lock = threading.Lock()

    def process(items, data):
        assert len({d for d in data}) == 1  # one size per batch
        batches.append(list(items))
        return [f"clean-{i}" for i in items]

    def save(item, result):
        with lock:
            assert item not in saved
            saved[item] = result

    failures = run_pipelined(list(SIZES), SIZES.__getitem__, process, save, batch_size=2, key=lambda d: d,
                             done=finished.append)
    assert failures == []
    assert saved == {i: f"clean-{i}" for i in SIZES}
    assert sum(finished) == len(SIZES)
    assert sorted(len(b) for b in batches) == [1, 1, 2, 2]  # a+c, b+e, then d and f alone


def test_decoding_the_next_items_overlaps_the_network():
    third_loaded = threading.Event()

    def load(item):
        if item == 2:
            third_loaded.set()
        return (8, 8)

    seen = []

    def process(items, data):
        if items == [0]:
            # a sequential loop would decode item 2 only after this returns, and this would time out
            seen.append(third_loaded.wait(timeout=10))
        return [None] * len(items)

    assert run_pipelined(list(range(6)), load, process, lambda i, r: None, batch_size=1, key=lambda d: d,
                         workers=2) == []
    assert seen == [True]


def test_one_bad_item_never_stops_the_others():
    saved = []

    def load(item):
        if item == "unreadable":
            raise ImageReadError(f"{item}.png: not an image file; re-export it")
        return (64, 64)

    def process(items, data):
        if "poison" in items:
            raise ValueError("poison.png: sizes differ (64x64 vs 32x32)")
        return list(items)

    def save(item, result):
        if item == "readonly":
            raise PermissionError(13, "Permission denied", f"out/{item}.png")
        saved.append(item)

    items = ["ok1", "unreadable", "poison", "ok2", "readonly", "ok3", "ok4"]
    failures = run_pipelined(items, load, process, save, batch_size=4, key=lambda d: d)
    assert sorted(saved) == ["ok1", "ok2", "ok3", "ok4"]  # the poisoned batch was retried item by item
    reasons = dict(failures)
    assert sorted(reasons) == ["poison", "readonly", "unreadable"]
    assert "not an image" in reasons["unreadable"] and "sizes differ" in reasons["poison"]
    assert "Permission denied" in reasons["readonly"]


def test_an_unexpected_error_is_reported_with_its_type_and_the_run_goes_on():
    def process(items, data):
        if items == ["boom"]:
            raise RuntimeError("out of memory")
        return list(items)

    saved = []
    failures = run_pipelined(["x", "boom", "y"], lambda i: (1, 1), process, lambda i, r: saved.append(i),
                             batch_size=1, key=lambda d: d)
    assert failures == [("boom", "RuntimeError: out of memory")] and sorted(saved) == ["x", "y"]


def test_warnings_from_worker_threads_are_attributed_to_their_item():
    def load(item):
        warnings.warn(f"{item} has an EXIF quirk", stacklevel=1)
        return (4, 4)

    notes: dict[str, list[str]] = {}
    run_pipelined([f"img{i}" for i in range(8)], load, lambda items, d: list(items), lambda i, r: None,
                  batch_size=3, key=lambda d: d, workers=4,
                  warn=lambda label, msgs: notes.setdefault(label, []).extend(msgs))
    assert notes == {f"img{i}": [f"img{i} has an EXIF quirk"] for i in range(8)}


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        run_pipelined([1], lambda i: i, lambda a, b: a, lambda i, r: None, batch_size=0, key=lambda d: d)
