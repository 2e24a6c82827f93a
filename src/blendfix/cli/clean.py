"""`blendfix clean -i SET` or `blendfix clean -i ORIGINAL --fused FUSED -o OUT`: remove blending artifacts.

``-i`` is an image set (each item's fused image is cleaned into ``cleaned/<method>.png``, with the
item's own attribute for the Poisson face mask), or original photo(s) with ``--fused`` (or
``--edited`` and ``--mask``) files or folders paired by name stem; ``--mask`` may be one file serving
every original. A pair that fails (unreadable, sizes differ, no face for ``poisson``, out of memory) is
skipped and listed at the end, and the exit code is 1. One run writes an output folder (or image set)
at a time (``.lock``, :mod:`blendfix.locks`); a second is refused.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from ..cleaning import METHODS, CleanConfig, Cleaner, prepare_fused
from ..data.destination import Destination
from ..data.imageset import Item, cleaned_role, collect, is_image_set, read_attributes
from ..errors import BlendfixError
from ..io import atomic_write, read_image, read_mask, write_image
from ..locks import folder_lock
from ..metrics.evaluate import RUNTIME_DIR, RUNTIME_FILE
from .common import (
    attribute_option,
    checked_attribute,
    device_options,
    format_options,
    input_option,
    option,
    output_option,
    prepare_output,
    progress,
    refuse_overwriting_inputs,
    report_failures,
)

USER_ERRORS = (BlendfixError, ValueError, FileNotFoundError)
Loaded = tuple[Item, np.ndarray, np.ndarray]


def _other(item: Item) -> Path:
    """The image the item's F comes from (fused, else edited), named in messages."""
    return item.files.get("fused", item.files.get("edited", item["original"]))


def _load(item: Item) -> tuple[np.ndarray, np.ndarray]:
    """(I, F) of an item: its fused image, or F = T*M + I*(1-M) from its edited image and mask."""
    orig = read_image(item["original"])
    other = _other(item)
    try:
        if "fused" in item.files:
            return orig, prepare_fused(orig, read_image(item["fused"]))
        m = read_mask(item["mask"], size=orig.shape[:2])
        return orig, prepare_fused(orig, None, read_image(item["edited"]), m)
    except ValueError as e:
        raise BlendfixError(f"{item['original'].name} / {other.name}: {e}") from e


def _unexpected(e: Exception) -> str:
    """One line for a pair that failed with something other than a user error (e.g. out of memory)."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    hint = ("; try a smaller --tile or --batch-size 1" if isinstance(e, MemoryError) or "memory" in msg.lower()
            else "; rerun with BLENDFIX_DEBUG=1 for the traceback and please report it")
    return f"could not be cleaned ({type(e).__name__}: {msg}){hint}"


def _echo_warnings(caught: list[warnings.WarningMessage], name: str) -> None:
    for w in caught:
        click.echo(f"warning: {name}: {w.message}", err=True)


def _recorded(fn: Callable, name: str):
    """``fn()``, echoing the warnings it raised (each once) prefixed by ``name``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    _echo_warnings(caught, name)
    return out


def clean_items(cleaner: Cleaner, items: list[Item], write: Callable[[Item, np.ndarray], None],
                attributes: dict[str, str | None], batch_size: int) -> list[tuple[str, str]]:
    """Clean ``items`` in batches; a failing batch is retried pair by pair so a bad pair skips only itself."""
    failures: list[tuple[str, str]] = []
    batch: list[Loaded] = []

    def run(group: list[Loaded]) -> None:
        outs = _recorded(lambda: cleaner([b[1] for b in group], [b[2] for b in group],
                                         [(b[0]["original"], _other(b[0])) for b in group],
                                         [attributes.get(b[0].id) for b in group]),
                         group[0][0].name if len(group) == 1 else "clean")
        for (item, _, _), img in zip(group, outs, strict=True):
            write(item, img)

    def run_one(one: Loaded) -> None:
        try:
            run([one])
        except USER_ERRORS as e:
            failures.append((one[0].name, str(e)))
        except Exception as e:  # noqa: BLE001 - e.g. out of memory: this pair fails, the others go on
            if os.environ.get("BLENDFIX_DEBUG"):
                raise
            failures.append((one[0].name, _unexpected(e)))

    def flush() -> None:
        if len(batch) == 1:
            run_one(batch[0])
        else:
            try:
                run(batch)
            except Exception:  # noqa: BLE001 - retried pair by pair, each failure listed on its own
                for one in batch:
                    run_one(one)
        batch.clear()

    for item in progress(items, f"clean ({cleaner.method})", total=len(items)):
        try:
            orig, fz = _recorded(lambda item=item: _load(item), item.name)
        except USER_ERRORS as e:
            failures.append((item.name, str(e)))
            continue
        batch.append((item, orig, fz))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return failures


@click.command("clean")
@input_option("An image set, or original photo(s): a file or a folder.", aliases=("--original",))
@option("--fused", type=click.Path(exists=True, path_type=Path),
        help="Fused image(s) F, same name stems (default in an image set: its fused images).")
@option("--edited", type=click.Path(exists=True, path_type=Path), help="Edited image(s) T (with --mask) instead of F.")
@option("--mask", type=click.Path(exists=True, path_type=Path), help="Mask(s) M for fusing T into I (with --edited).")
@output_option("Output folder, or a file for one input; default with an image set: each item's "
               "cleaned/<method>.png (and runtime/<method>.json).", aliases=("--out",))
@format_options
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="auto = network when weights exist, else poisson; fused = the no-op baseline.")
@click.option("--weights", default=None, help="Registered name, run folder or weights file of the network.")
@attribute_option(None, help="Face-mask rule for --method poisson (default: each item's own attribute in an image "
                             "set or from --attributes-from, else the plain face region).")
@click.option("--attributes-from", "attributes_from", type=click.Path(exists=True, path_type=Path), default=None,
              help="poisson: each file's own rule from a manifest.jsonl (or an image set), by name stem.")
@click.option("--largest-face", is_flag=True, help="poisson: only the largest face (default: every face found).")
@click.option("--tile", default=1024, show_default=True, help="Largest side run in one piece; larger is tiled.")
@device_options
def cmd(source: Path, fused: Path | None, edited: Path | None, mask: Path | None, out: Path | None, ext: str,
        suffix: str, method: str, weights: str | None, attribute: str | None, attributes_from: Path | None,
        largest_face: bool, tile: int, device: str, batch_size: int, precision: str) -> int:
    """Clean fused images: outputs keep the originals' names, plus runtime.json for `evaluate`."""
    rule = checked_attribute(attribute)
    roles = ("original",) if fused or edited or not is_image_set(source) else ("original", "fused")
    if not is_image_set(source) and fused is None and (edited is None or mask is None):
        raise click.UsageError("give --fused, or both --edited and --mask")
    items = collect(source, roles, given={"fused": fused, "edited": edited, "mask": mask})
    attributes = {i.id: rule or i.attribute for i in items}
    if attributes_from is not None:
        attributes.update(read_attributes(attributes_from, [i.id for i in items]))
    cleaner = _recorded(lambda: Cleaner(CleanConfig(method=method, weights=weights, device=device, tile=tile,
                                                    precision=precision, batch_size=batch_size,
                                                    largest_face=largest_face)), "clean")
    dest = Destination(source, out, cleaned_role(cleaner.method), count=len(items), ext=ext, suffix=suffix,
                       verb="clean")
    runtime = (source / RUNTIME_DIR / f"{cleaner.method}.json" if dest.set is not None
               else None if dest.file is not None else out / RUNTIME_FILE)
    refuse_overwriting_inputs([dest.path(i) for i in items] + ([runtime] if runtime else []),
                              [f for i in items for f in i.files.values()])
    if dest.set is None:
        prepare_output(dest.folder, {"-i": source, "--fused": fused, "--edited": edited, "--mask": mask})
    done: list[Item] = []

    def write(item: Item, image: np.ndarray) -> None:
        write_image(dest.path(item), image)
        done.append(item)

    lock_dir = source if dest.set is not None else dest.folder
    with folder_lock(lock_dir, "blendfix clean run", "wait for it to finish, or give this run its own -o folder."):
        failures = clean_items(cleaner, items, write, attributes, batch_size)
        dest.record(done)
        if cleaner.count and runtime is not None:
            info = json.dumps(cleaner.runtime(), indent=1)
            atomic_write(runtime, info.encode)
    return report_failures(failures, len(items))


def _unexpected(e: Exception) -> str:
    """One line for a pair that failed with something other than a user error (e.g. out of memory)."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    hint = ("; try a smaller --tile or --batch-size 1" if isinstance(e, MemoryError) or "memory" in msg.lower()
            else "; rerun with BLENDFIX_DEBUG=1 for the traceback and please report it")
    return f"could not be cleaned ({type(e).__name__}: {msg}){hint}"
