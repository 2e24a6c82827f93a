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
import warnings
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from ..cleaning import METHODS, CleanConfig, Cleaner, prepare_fused
from ..data.destination import Destination
from ..data.imageset import Item, cleaned_role, collect, is_image_set, read_attributes
from ..errors import BlendfixError
from ..folder_run import run_pipelined
from ..io import atomic_write, read_image, read_mask, write_image
from ..locks import folder_lock
from ..metrics.evaluate import RUNTIME_DIR, RUNTIME_FILE
from ..runtime import RUNTIMES
from ..tiling import DEFAULT_TILE
from .common import (
    attribute_option,
    checked_attribute,
    device_options,
    format_options,
    input_option,
    option,
    output_option,
    prepare_output,
    progress_bar,
    refuse_overwriting_inputs,
    report_failures,
)


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
@click.option("--tile", default=DEFAULT_TILE, show_default=True, help="Largest side run in one piece; larger is tiled.")
@click.option("--runtime", type=click.Choice(RUNTIMES), default="auto", show_default=True,
              help="Network runtime: auto = onnxruntime on a CPU in fp32 (graph exported once, cached), torch on CUDA "
                   "and for bf16 (the default on CPUs with AMX-BF16, see --precision).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads of the network on a CPU [default: all cores].")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Threads decoding and writing images while the network runs.")
@device_options(precision_help="auto = fp16 on CUDA; on a CPU with AMX-BF16 (Intel Sapphire Rapids and later) "
                                "bf16 in PyTorch for the network (under 0.01 dB from fp32, measured), else fp32.")
def cmd(source: Path, fused: Path | None, edited: Path | None, mask: Path | None, out: Path | None, ext: str,
        suffix: str, method: str, weights: str | None, attribute: str | None, attributes_from: Path | None,
        largest_face: bool, tile: int, runtime: str, threads: int | None, workers: int, device: str,
        batch_size: int, precision: str) -> int:
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
                                                    precision=precision, batch_size=batch_size, runtime=runtime,
                                                    threads=threads, largest_face=largest_face)), "clean")
    dest = Destination(source, out, cleaned_role(cleaner.method), count=len(items), ext=ext, suffix=suffix,
                       verb="clean")
    facts = (source / RUNTIME_DIR / f"{cleaner.method}.json" if dest.set is not None
             else None if dest.file is not None else out / RUNTIME_FILE)
    refuse_overwriting_inputs([dest.path(i) for i in items] + ([facts] if facts else []),
                              [f for i in items for f in i.files.values()])
    if dest.set is None:
        prepare_output(dest.folder, {"-i": source, "--fused": fused, "--edited": edited, "--mask": mask})
    if facts is not None and dest.set is None:
        _refuse_other_method(facts, cleaner.method)
    done: list[Item] = []

    def process(group: list[Item], data: list[tuple]) -> list:
        return cleaner([d[0] for d in data], [d[1] for d in data], [(i["original"], _other(i)) for i in group],
                       [attributes.get(i.id) for i in group])

    def save(item: Item, image: np.ndarray) -> None:
        write_image(dest.path(item), image)
        done.append(item)

    def warn(label: str, notes: list[str]) -> None:
        for note in notes:
            click.echo(f"warning: {label}: {note}", err=True)

    lock_dir = source if dest.set is not None else dest.folder
    with folder_lock(lock_dir, "blendfix clean run", "wait for it to finish, or give this run its own -o folder."):
        with progress_bar(len(items), f"clean ({cleaner.method}, {cleaner.runtime_name})") as bar:
            failures = run_pipelined(items, _load, process, save, batch_size=batch_size,
                                     key=lambda d: d[0].shape[:2], name=lambda i: i.name, workers=workers,
                                     warn=warn, done=bar.update, describe=_unexpected)
        dest.record(sorted(done, key=lambda i: i.id))
        if cleaner.count and facts is not None:
            info = json.dumps(cleaner.runtime(), indent=1)
            atomic_write(facts, info.encode)
    return report_failures(failures, len(items))


def _refuse_other_method(facts: Path, method: str) -> None:
    """A flat output folder keeps one method's outputs: refuse one whose runtime.json names another (the
    two runs' images would mix, under the facts of whichever ran last)."""
    try:
        earlier = json.loads(facts.read_text()).get("method")
    except (OSError, ValueError, AttributeError):
        return  # no facts yet (or unreadable ones, rewritten at the end of this run)
    if earlier and earlier != method:
        raise BlendfixError(f"{facts.parent}: holds the outputs of a `clean --method {earlier}` run ({facts.name}); "
                            f"this --method {method} run would mix its images with them. Give it its own -o folder, "
                            f"or delete {facts.parent} first.")


def _unexpected(e: Exception) -> str:
    """One line for a pair that failed with something other than a user error (e.g. out of memory)."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    hint = ("; try a smaller --tile or --batch-size 1" if isinstance(e, MemoryError) or "memory" in msg.lower()
            else "; rerun with BLENDFIX_DEBUG=1 for the traceback and please report it")
    return f"could not be cleaned ({type(e).__name__}: {msg}){hint}"
