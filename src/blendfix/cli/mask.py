"""`blendfix mask`: the face mask M_face of (fused/edited, original) pairs, plus an overlay to check it.

``-i`` is an image set (each item gets ``face_mask.png`` and ``face_mask_overlay.png``, by its own
attribute's rule unless ``-a`` is given), or original photo(s) with ``--fused`` image(s) of the same
name stems (without ``--fused``, the original's own face region), written to ``-o`` as
``<stem>_mask.png`` (``--suffix``) and ``<stem>_overlay.png``. A file that fails (no face found,
unreadable, size mismatch) is skipped and listed at the end; the exit code is then 1.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..data.destination import Destination
from ..data.imageset import Item, collect
from ..io import read_image, write_image, write_mask
from ..parsing import PARSERS, face_mask, get_parser
from ..viz import overlay
from .common import (
    attribute_option,
    checked_attribute,
    input_option,
    option,
    output_option,
    prepare_output,
    refuse_overwriting_inputs,
    report_failures,
    run_each,
)


@click.command("mask")
@input_option("Original photo(s) (file or folder) or an image set (writes each item's face_mask.png).")
@option("--fused", type=click.Path(exists=True, path_type=Path), default=None,
        help="Fused / edited image(s) (file or folder, same name stems). Default: the set's fused images, "
             "or the original itself.")
@attribute_option(None, extra=("face",),
                  help="Mask rule: face = plain face region; an attribute adds its rule (neck for beard/aging, "
                       "edited mouth for smile/aging). Default: each item's own attribute in an image set, else face.")
@click.option("--parser", "parser_name", default="landmarks", show_default=True, type=click.Choice(PARSERS),
              help="landmarks: offline face mesh (no weights); bisenet: needs 79999_iter.pth.")
@click.option("--checkpoint", default=None, help="bisenet: a path to 79999_iter.pth (default: the weights folder).")
@click.option("--largest-face", is_flag=True, help="Mask only the largest face (default: every face found).")
@click.option("--device", default="auto", show_default=True, help="bisenet: auto, cpu, cuda, cuda:N.")
@output_option("Output folder (or, for one input, a .png file); default with an image set: into the set.")
@click.option("--suffix", default="_mask", show_default=True, help="Appended to each mask's name stem in -o.")
def cmd(source: Path, fused: Path | None, attribute: str | None, parser_name: str, checkpoint: str | None,
        largest_face: bool, device: str, out: Path | None, suffix: str) -> int:
    """Face mask M_face (and an overlay PNG) for original / fused pairs."""
    rule = checked_attribute(attribute, extra=("face",))
    items = collect(source, given={"fused": fused}, optional=("fused",))
    dest = Destination(source, out, "face_mask", count=len(items), suffix=suffix, verb="mask")
    refuse_overwriting_inputs([dest.path(i, tag=t) for i in items for t in ("", "_overlay")],
                              [f for i in items for f in i.files.values()])
    if dest.set is None:
        prepare_output(dest.folder, {"-i": source, "--fused": fused})
    if parser_name == "bisenet":
        parser = get_parser("bisenet", device=device, **({"checkpoint": checkpoint} if checkpoint else {}))
    else:
        if checkpoint:
            raise click.BadParameter("--checkpoint is for --parser bisenet", param_hint="--checkpoint")
        parser = get_parser("landmarks", largest_face=largest_face)
    done: list[Item] = []

    def one(item: Item) -> None:
        orig_path, fused_path = item["original"], item.files.get("fused", item["original"])
        orig = read_image(orig_path)
        fus = orig if fused_path == orig_path else read_image(fused_path)
        m = face_mask(fus, orig, rule or item.attribute or "face", parser, fused_source=fused_path,
                      original_source=orig_path)
        write_mask(dest.path(item), m)
        write_image(dest.path(item, tag="_overlay"), overlay(fus, m))
        done.append(item)

    failures = run_each(items, one, "mask", name=lambda i: i.name)
    dest.record(done)
    return report_failures(failures, len(items))
