"""`blendfix blend`: Poisson-clone the edited (or fused) image into the original over a mask.

This is the method's teacher: ``seamless_clone(src=EDITED, dst=ORIGINAL, mask)``. Each argument is a
file or a folder; in folder mode files are paired by name stem, and one mask file may serve a whole
folder. Outputs are 8-bit PNGs named after the original, written atomically.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import click
import numpy as np

from ..blend.seamless import BACKENDS, CENTERS, seamless_clone
from ..device import resolve_device
from ..io import check_same_size, list_images, match_by_stem, read_image, read_mask, to_uint8, write_image
from .common import out_path, prepare_output, refuse_overwriting_inputs, report_failures, run_each


def blend_files(original: Path, edited: Path, mask: Path, out: Path, *, backend: str = "torch",
                center: str = "bbox", device: str = "cpu") -> list[str]:
    """Blend one triple of files into ``out``; returns the warnings raised (e.g. an empty mask).

    Raises :class:`~blendfix.errors.SizeMismatchError` naming the files and sizes when the original and
    edited images (or the mask) differ in size, and ``ImageReadError`` for unreadable files.
    """
    dst = read_image(original)
    src = read_image(edited)
    check_same_size({f"original {original.name}": dst, f"edited {edited.name}": src})
    m = read_mask(mask, size=dst.shape[:2])
    m8 = np.clip(np.rint(m * 255.0), 0, 255).astype(np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = seamless_clone(to_uint8(src), to_uint8(dst), m8, backend=backend, center=center,
                                device=device)
    write_image(out, result)
    return [f"{mask.name}: {w.message}" for w in caught]


def _pair(originals: list[Path], other: Path, name: str) -> dict[Path, Path]:
    """A file serves every original (single pair, or one mask for a folder); a folder is matched by stem."""
    if other.is_file():
        return {o: other for o in originals}
    return match_by_stem(originals, list_images(other), name)


def _triples(original: Path, edited: Path, mask: Path) -> list[tuple[Path, Path, Path]]:
    originals = list_images(original)
    if not originals:
        raise ValueError(f"{original}: no images found (looked for files with image suffixes)")
    if edited.is_file() and len(originals) > 1:
        raise ValueError(f"--edited {edited} is one file but -i {original} holds {len(originals)} images; "
                         "pass a folder of edited images with the same names")
    edits, masks = _pair(originals, edited, "edited"), _pair(originals, mask, "mask")
    return [(o, edits[o], masks[o]) for o in originals]


@click.command("blend")
@click.option("-i", "--input", "original", required=True, type=click.Path(exists=True, path_type=Path),
              help="Original photo(s): the destination the edit is cloned into (file or folder).")
@click.option("--edited", required=True, type=click.Path(exists=True, path_type=Path),
              help="Edited / fused image(s): the source of the cloned gradients (file or folder, same stems).")
@click.option("--mask", required=True, type=click.Path(exists=True, path_type=Path),
              help="Mask(s), white = clone (file or folder, same stems; one file serves every image). "
                   "Gray values are weights v/255, as in OpenCV.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (PNG files named after the originals).")
@click.option("--backend", default="torch", show_default=True, type=click.Choice(BACKENDS),
              help="torch: batched DST solver; opencv: cv2.seamlessClone.")
@click.option("--center", default="bbox", show_default=True, type=click.Choice(CENTERS),
              help="bbox: in place; bbox_raw / paper: OpenCV's shifted placements (opencv backend only).")
@click.option("--device", default="auto", show_default=True, help="torch backend: auto, cpu, cuda, cuda:N.")
def cmd(original: Path, edited: Path, mask: Path, out_dir: Path, backend: str, center: str, device: str) -> int:
    """Seamless (Poisson) clone of EDITED into ORIGINAL over MASK, the method's teacher images."""
    if backend == "torch" and center != "bbox":
        raise click.BadParameter("--center bbox_raw/paper needs --backend opencv", param_hint="--center")
    dev = str(resolve_device(device)) if backend == "torch" else "cpu"
    triples = _triples(original, edited, mask)
    refuse_overwriting_inputs([out_path(out_dir, t[0]) for t in triples], [f for t in triples for f in t])
    prepare_output(out_dir, {"-i": original, "--edited": edited, "--mask": mask})

    def one(t: tuple[Path, Path, Path]) -> None:
        for w in blend_files(*t, out_path(out_dir, t[0]), backend=backend, center=center, device=dev):
            click.echo(f"warning: {t[0].name}: {w}", err=True)

    failures = run_each(triples, one, "blend", name=lambda t: t[0].name)
    return report_failures(failures, len(triples))
