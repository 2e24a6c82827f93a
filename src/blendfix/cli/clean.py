"""`blendfix clean -i ORIGINAL --fused FUSED -o DIR`: remove blending artifacts from fused images.

``-i`` and ``--fused`` (or ``--edited``) are two files, or two folders paired by name stem; ``--mask``
is a file (serving every original) or a folder. A pair that fails (unreadable, sizes differ, no face
for ``poisson``, out of memory) is skipped and listed at the end, and the exit code is 1. One run
writes an output folder at a time (``-o/.lock``, :mod:`blendfix.locks`); a second is refused.

A folder run is pipelined (:mod:`blendfix.folder_run`): worker threads decode the next pairs and
write finished images while the network runs on batches of same-size pairs; on a CPU the network
runs in onnxruntime (``--runtime``, :mod:`blendfix.runtime`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import click

from ..cleaning import METHODS, CleanConfig, Cleaner, prepare_fused
from ..errors import BlendfixError
from ..folder_run import run_pipelined
from ..io import atomic_write, list_images, match_by_stem, read_image, read_mask, write_image
from ..locks import folder_lock
from ..runtime import RUNTIMES
from .common import device_options, prepare_output, progress_bar, refuse_overwriting_inputs, report_failures


def _match(origs: list[Path], other: Path, name: str, serves_all: bool = False) -> dict[Path, Path]:
    """A file pairs with the one original (or, ``serves_all``, with every original); a folder by stem."""
    if other.is_file():
        if len(origs) > 1 and not serves_all:
            raise click.UsageError(f"--{name} {other} is one file but -i holds {len(origs)} images; "
                                   f"pass a folder of {name} images with the same names")
        return {o: other for o in origs}
    return match_by_stem(origs, list_images(other), name)


def _pairs(original: Path, fused: Path | None, edited: Path | None, mask: Path | None) -> list[dict]:
    origs = list_images(original)
    if not origs:
        raise click.UsageError(f"{original}: no images found")
    if fused is not None:
        fmap = _match(origs, fused, "fused")
        return [{"original": o, "fused": fmap[o]} for o in origs]
    if edited is None or mask is None:
        raise click.UsageError("give --fused, or both --edited and --mask")
    emap = _match(origs, edited, "edited")
    mmap = _match(origs, mask, "mask", serves_all=True)
    return [{"original": o, "edited": emap[o], "mask": mmap[o]} for o in origs]


def _load(pair: dict) -> tuple:
    orig = read_image(pair["original"])
    if "fused" in pair:
        fused = read_image(pair["fused"])
        try:
            return orig, prepare_fused(orig, fused)
        except ValueError as e:
            raise BlendfixError(f"{pair['original'].name} / {pair['fused'].name}: {e}") from e
    edited = read_image(pair["edited"])
    m = read_mask(pair["mask"], size=orig.shape[:2])
    try:
        return orig, prepare_fused(orig, None, edited, m)
    except ValueError as e:
        raise BlendfixError(f"{pair['original'].name} / {pair['edited'].name}: {e}") from e


def _other(pair: dict) -> Path:
    return pair.get("fused", pair.get("edited"))


def _unexpected(e: Exception) -> str:
    """One line for a pair that failed with something other than a user error (e.g. out of memory)."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    hint = ("; try a smaller --tile or --batch-size 1" if isinstance(e, MemoryError) or "memory" in msg.lower()
            else "; rerun with BLENDFIX_DEBUG=1 for the traceback and please report it")
    return f"could not be cleaned ({type(e).__name__}: {msg}){hint}"


def _echo_warnings(caught: list[warnings.WarningMessage], name: str) -> None:
    for w in caught:
        click.echo(f"warning: {name}: {w.message}", err=True)


@click.command("clean")
@click.option("-i", "--input", "original", required=True, type=click.Path(exists=True, path_type=Path),
              help="Original photo(s): a file or a folder.")
@click.option("--fused", type=click.Path(exists=True, path_type=Path), help="Fused image(s), same names.")
@click.option("--edited", type=click.Path(exists=True, path_type=Path), help="Edited image(s) T (with --mask).")
@click.option("--mask", type=click.Path(exists=True, path_type=Path), help="Mask(s) M for fusing T into I.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="auto = network when weights exist, else poisson.")
@click.option("--weights", default=None, help="Registered name, run folder or weights file of the network.")
@click.option("--attribute", default=None, help="Face-mask rule for --method poisson.")
@click.option("--attributes-from", "attributes_from", type=click.Path(exists=True, path_type=Path), default=None,
              help="poisson: each file's own rule from a manifest.jsonl (or a training-set folder), by name stem.")
@click.option("--tile", default=1024, show_default=True, help="Largest side run in one piece; larger is tiled.")
@click.option("--runtime", type=click.Choice(RUNTIMES), default="auto", show_default=True,
              help="Network runtime: auto = onnxruntime on a CPU (graph exported once, cached), torch on CUDA.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads of the network on a CPU [default: all cores].")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Threads decoding and writing images while the network runs.")
@device_options
def cmd(original: Path, fused: Path | None, edited: Path | None, mask: Path | None, out_dir: Path, method: str,
        weights: str | None, attribute: str | None, attributes_from: Path | None, tile: int, runtime: str,
        threads: int | None, workers: int, device: str, batch_size: int, precision: str) -> int:
    """Clean fused images: outputs keep the originals' names, plus runtime.json for `evaluate`."""
    pairs = _pairs(original, fused, edited, mask)
    refuse_overwriting_inputs([out_dir / f"{p['original'].stem}.png" for p in pairs] + [out_dir / "runtime.json"],
                              [f for p in pairs for f in p.values()])
    prepare_output(out_dir, {"-i": original, "--fused": fused, "--edited": edited, "--mask": mask})
    with folder_lock(out_dir, "blendfix clean run", "wait for it to finish, or give this run its own -o folder."):
        per_item: dict[str, str] = {}
        if attributes_from is not None:
            from ..metrics.evaluate import read_attributes

            per_item = read_attributes(attributes_from, [p["original"].stem for p in pairs])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cleaner = Cleaner(CleanConfig(method=method, weights=weights, device=device, precision=precision,
                                          batch_size=batch_size, tile=tile, attribute=attribute, runtime=runtime,
                                          threads=threads))
        _echo_warnings(caught, "clean")

        def process(items: list[dict], data: list[tuple]) -> list:
            return cleaner([d[0] for d in data], [d[1] for d in data],
                           [(p["original"], _other(p)) for p in items],
                           [per_item.get(p["original"].stem) for p in items])

        def save(pair: dict, img: object) -> None:
            write_image(out_dir / f"{pair['original'].stem}.png", img)

        def warn(label: str, notes: list[str]) -> None:
            for note in notes:
                click.echo(f"warning: {label}: {note}", err=True)

        with progress_bar(len(pairs), f"clean ({cleaner.method}, {cleaner.runtime_name})") as bar:
            failures = run_pipelined(pairs, _load, process, save, batch_size=batch_size,
                                     key=lambda d: d[0].shape[:2], name=lambda p: p["original"].name,
                                     workers=workers, warn=warn, done=bar.update, describe=_unexpected)
        if cleaner.count:
            info = json.dumps(cleaner.runtime(), indent=1)
            atomic_write(out_dir / "runtime.json", info.encode)
        return report_failures(failures, len(pairs))
