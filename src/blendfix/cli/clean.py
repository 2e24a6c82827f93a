"""`blendfix clean -i ORIGINAL --fused FUSED -o DIR`: remove blending artifacts from fused images.

``-i`` and ``--fused`` (or ``--edited``) are two files, or two folders paired by name stem; ``--mask``
is a file (serving every original) or a folder. A pair that fails (unreadable, sizes differ, no face
for ``poisson``, out of memory) is skipped and listed at the end, and the exit code is 1. One run
writes an output folder at a time (``-o/.lock``, :mod:`blendfix.locks`); a second is refused.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import click

from ..cleaning import METHODS, CleanConfig, Cleaner, prepare_fused
from ..errors import BlendfixError
from ..io import atomic_write, list_images, match_by_stem, read_image, read_mask, write_image
from ..locks import folder_lock
from .common import device_options, prepare_output, progress, refuse_overwriting_inputs, report_failures


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
@device_options
def cmd(original: Path, fused: Path | None, edited: Path | None, mask: Path | None, out_dir: Path, method: str,
        weights: str | None, attribute: str | None, attributes_from: Path | None, tile: int, device: str,
        batch_size: int, precision: str) -> int:
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
                                          batch_size=batch_size, tile=tile, attribute=attribute))
        _echo_warnings(caught, "clean")
        failures: list[tuple[str, str]] = []
        batch: list[tuple[dict, object, object]] = []
        user_errors = (BlendfixError, ValueError, FileNotFoundError)

        def run(items: list[tuple[dict, object, object]]) -> None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                outs = cleaner([b[1] for b in items], [b[2] for b in items],
                               [(b[0]["original"], _other(b[0])) for b in items],
                               [per_item.get(b[0]["original"].stem) for b in items])
            _echo_warnings(caught, items[0][0]["original"].name if len(items) == 1 else "clean")
            for (pair, _, _), img in zip(items, outs, strict=True):
                write_image(out_dir / f"{pair['original'].stem}.png", img)

        def run_one(item: tuple[dict, object, object]) -> None:
            try:
                run([item])
            except user_errors as e:
                failures.append((item[0]["original"].name, str(e)))
            except Exception as e:  # noqa: BLE001 - e.g. out of memory: this pair fails, the others go on
                if os.environ.get("BLENDFIX_DEBUG"):
                    raise
                failures.append((item[0]["original"].name, _unexpected(e)))

        def flush() -> None:
            """Clean the batch; if it fails, clean its pairs one by one so one bad pair skips only itself."""
            if len(batch) == 1:
                run_one(batch[0])
            elif batch:
                try:
                    run(batch)
                except Exception:  # noqa: BLE001 - retried pair by pair, each failure listed on its own
                    for item in batch:
                        run_one(item)
            batch.clear()

        for pair in progress(pairs, f"clean ({cleaner.method})", total=len(pairs)):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    orig, fz = _load(pair)
                _echo_warnings(caught, pair["original"].name)
            except user_errors as e:
                failures.append((pair["original"].name, str(e)))
                continue
            batch.append((pair, orig, fz))
            if len(batch) >= batch_size:
                flush()
        flush()
        if cleaner.count:
            info = json.dumps(cleaner.runtime(), indent=1)
            atomic_write(out_dir / "runtime.json", info.encode)
        return report_failures(failures, len(pairs))
