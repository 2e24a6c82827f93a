"""`blendfix blend`: Poisson-clone the edited (or fused) image into the original over a mask.

This is the method's teacher: ``seamless_clone(src=FUSED, dst=ORIGINAL, mask)``. ``-i`` is an image set
(each item's fused image is cloned over its face_mask into target.png) or photo(s) with ``--fused``
and ``--mask`` files or folders paired by name stem; one mask file may serve a whole folder. Outputs
are named after the original, written atomically.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import click
import numpy as np

from ..blend.seamless import BACKENDS, CENTERS, seamless_clone
from ..data.destination import Destination
from ..data.imageset import Item, collect
from ..device import resolve_device
from ..io import check_same_size, read_image, read_mask, to_uint8, write_image
from .common import (
    format_options,
    input_option,
    option,
    output_option,
    prepare_output,
    refuse_overwriting_inputs,
    report_failures,
    run_each,
)


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


@click.command("blend")
@input_option("Original photo(s): the destination the edit is cloned into (file or folder), or an image set "
              "(its fused and face_mask images; writes each item's target.png).")
@option("--fused", "fused", aliases=("--edited",), type=click.Path(exists=True, path_type=Path),
        help="Fused / edited image(s): the source of the cloned gradients (file or folder, same stems).")
@option("--mask", type=click.Path(exists=True, path_type=Path),
        help="Mask(s), white = clone (file or folder, same stems or <stem>_mask; one file serves every image). "
             "Gray values are weights v/255, as in OpenCV. Default in an image set: its face_mask images.")
@output_option("Output folder (PNGs named after the originals), or a file for one input; "
               "default with an image set: each item's target.png.")
@format_options
@click.option("--backend", default="torch", show_default=True, type=click.Choice(BACKENDS),
              help="torch: batched DST solver; opencv: cv2.seamlessClone.")
@click.option("--center", default="bbox", show_default=True, type=click.Choice(CENTERS),
              help="bbox: in place; bbox_raw / paper: OpenCV's shifted placements (opencv backend only).")
@click.option("--device", default="auto", show_default=True, help="torch backend: auto, cpu, cuda, cuda:N.")
def cmd(source: Path, fused: Path | None, mask: Path | None, out: Path | None, ext: str, suffix: str, backend: str,
        center: str, device: str) -> int:
    """Seamless (Poisson) clone of FUSED into ORIGINAL over MASK, the method's teacher images."""
    if backend == "torch" and center != "bbox":
        raise click.BadParameter("--center bbox_raw/paper needs --backend opencv", param_hint="--center")
    dev = str(resolve_device(device)) if backend == "torch" else "cpu"
    items = collect(source, ("original", "fused", "face_mask"), given={"fused": fused, "face_mask": mask},
                    flags={"fused": "--fused", "face_mask": "--mask"})
    dest = Destination(source, out, "target", count=len(items), ext=ext, suffix=suffix, verb="blend")
    refuse_overwriting_inputs([dest.path(i) for i in items], [f for i in items for f in i.files.values()])
    if dest.set is None:
        prepare_output(dest.folder, {"-i": source, "--fused": fused, "--mask": mask})
    done: list[Item] = []

    def one(item: Item) -> None:
        warned = blend_files(item["original"], item["fused"], item["face_mask"], dest.path(item), backend=backend,
                             center=center, device=dev)
        for w in warned:
            click.echo(f"warning: {item.name}: {w}", err=True)
        done.append(item)

    failures = run_each(items, one, "blend", name=lambda i: i.name)
    dest.record(done)
    return report_failures(failures, len(items))
