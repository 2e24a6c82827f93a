"""`blendfix clean -i ORIGINAL --fused FUSED -o DIR`: remove blending artifacts from fused images."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..clean import METHODS, CleanConfig, Cleaner, prepare_fused
from ..errors import BlendfixError
from ..io import _atomic_write, list_images, match_by_stem, read_image, read_mask, write_image
from .common import device_options, progress, report_failures


def _pairs(original: Path, fused: Path | None, edited: Path | None, mask: Path | None) -> list[dict]:
    origs = list_images(original)
    if not origs:
        raise click.UsageError(f"{original}: no images found")
    if fused is not None:
        fmap = match_by_stem(origs, list_images(fused), "fused")
        return [{"original": o, "fused": fmap[o]} for o in origs]
    if edited is None or mask is None:
        raise click.UsageError("give --fused, or both --edited and --mask")
    emap = match_by_stem(origs, list_images(edited), "edited")
    mmap = match_by_stem(origs, list_images(mask), "mask")
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
    return orig, prepare_fused(orig, None, edited, m)


@click.command("clean")
@click.option("-i", "--input", "original", required=True, type=click.Path(exists=True, path_type=Path),
              help="Original photo(s): a file or a folder.")
@click.option("--fused", type=click.Path(exists=True, path_type=Path), help="Fused image(s), same names.")
@click.option("--edited", type=click.Path(exists=True, path_type=Path), help="Edited image(s) T (with --mask).")
@click.option("--mask", type=click.Path(exists=True, path_type=Path), help="Mask(s) M for fusing T into I.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="auto = network when weights exist, else poisson.")
@click.option("--weights", default=None, help="Registered name, run folder or weights file of the network.")
@click.option("--attribute", default=None, help="Face-mask rule for --method poisson.")
@click.option("--tile", default=1024, show_default=True, help="Largest side run in one piece; larger is tiled.")
@device_options
def cmd(original: Path, fused: Path | None, edited: Path | None, mask: Path | None, out_dir: Path, method: str,
        weights: str | None, attribute: str | None, tile: int, device: str, batch_size: int,
        precision: str) -> int:
    """Clean fused images: outputs keep the originals' names, plus runtime.json for `evaluate`."""
    pairs = _pairs(original, fused, edited, mask)
    cleaner = Cleaner(CleanConfig(method=method, weights=weights, device=device, precision=precision,
                                  batch_size=batch_size, tile=tile, attribute=attribute))
    failures: list[tuple[str, str]] = []
    batch: list[tuple[Path, object, object]] = []

    def flush() -> None:
        if not batch:
            return
        outs = cleaner([b[1] for b in batch], [b[2] for b in batch])
        for (src, _, _), img in zip(batch, outs, strict=True):
            write_image(out_dir / f"{src.stem}.png", img)
        batch.clear()

    for pair in progress(pairs, f"clean ({cleaner.method})", total=len(pairs)):
        try:
            orig, fz = _load(pair)
        except (BlendfixError, ValueError, FileNotFoundError) as e:
            failures.append((pair["original"].name, str(e)))
            continue
        batch.append((pair["original"], orig, fz))
        if len(batch) >= batch_size:
            flush()
    flush()
    if cleaner.count:
        info = json.dumps(cleaner.runtime(), indent=1)
        _atomic_write(out_dir / "runtime.json", info.encode)
    return report_failures(failures, len(pairs))
