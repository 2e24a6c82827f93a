"""`blendfix mask`: the face mask M_face of (fused/edited, original) pairs, plus an overlay to check it.

``-i`` is the original photo (file or folder); ``--fused`` the fused or edited image(s) with the
same name stems (without it, the original's own face region is used). For each image it writes
``<stem>_mask.png`` (8-bit, white = face) and ``<stem>_overlay.png`` (the fused image, or the
original, tinted green inside the mask with a red outline). In folder mode a file that fails (no
face found, unreadable, size mismatch) is skipped and listed at the end; the exit code is then 1.
"""

from __future__ import annotations

from pathlib import Path

import click
import cv2
import numpy as np

from ..attributes import ATTRIBUTES
from ..io import list_images, match_by_stem, read_image, write_image, write_mask
from ..parsing import PARSERS, face_mask, get_parser
from .common import out_path, prepare_output, refuse_overwriting_inputs, report_failures, run_each


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) float image and (H, W) mask -> float image tinted green in the mask, outlined in red."""
    out = image.astype(np.float32).copy()
    m = mask > 0.5
    out[m] = out[m] * 0.6 + np.array([0.0, 1.0, 0.0], np.float32) * 0.4
    edge = m.astype(np.uint8) - cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8))
    thick = max(1, round(min(mask.shape) / 256))
    if thick > 1:
        edge = cv2.dilate(edge, np.ones((thick, thick), np.uint8))
    out[edge > 0] = (1.0, 0.0, 0.0)
    return out


def _pairs(original: Path, fused: Path | None) -> list[tuple[Path, Path]]:
    originals = list_images(original)
    if not originals:
        raise ValueError(f"{original}: no images found (looked for files with image suffixes)")
    if fused is None:
        return [(o, o) for o in originals]
    if fused.is_file():
        if len(originals) > 1:
            raise ValueError(f"--fused {fused} is one file but -i {original} holds {len(originals)} images; "
                             "pass a folder of fused images with the same names")
        return [(originals[0], fused)]
    matched = match_by_stem(originals, list_images(fused), "fused")
    return [(o, matched[o]) for o in originals]


@click.command("mask")
@click.option("-i", "--input", "original", required=True, type=click.Path(exists=True, path_type=Path),
              help="Original photo(s) (file or folder).")
@click.option("--fused", type=click.Path(exists=True, path_type=Path), default=None,
              help="Fused / edited image(s) (file or folder, same name stems). Default: the original itself.")
@click.option("--attribute", default="face", show_default=True,
              type=click.Choice(("face",) + ATTRIBUTES, case_sensitive=False),
              help="Which mask rule: 'face' = plain face region; an attribute adds its rule "
                   "(neck for beard/aging, edited mouth for smile/aging).")
@click.option("--parser", "parser_name", default="landmarks", show_default=True, type=click.Choice(PARSERS),
              help="landmarks: offline face mesh (no weights); bisenet: needs 79999_iter.pth.")
@click.option("--checkpoint", default=None, help="bisenet: a path to 79999_iter.pth (default: the weights folder).")
@click.option("--device", default="auto", show_default=True, help="bisenet: auto, cpu, cuda, cuda:N.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder for <stem>_mask.png and <stem>_overlay.png.")
def cmd(original: Path, fused: Path | None, attribute: str, parser_name: str, checkpoint: str | None,
        device: str, out_dir: Path) -> int:
    """Face mask M_face (and an overlay PNG) for original / fused pairs."""
    pairs = _pairs(original, fused)
    refuse_overwriting_inputs([out_path(out_dir, o, tag=t) for o, _ in pairs for t in ("_mask", "_overlay")],
                              [f for pair in pairs for f in pair])
    prepare_output(out_dir, {"-i": original, "--fused": fused})
    if parser_name == "bisenet":
        parser = get_parser("bisenet", device=device, **({"checkpoint": checkpoint} if checkpoint else {}))
    else:
        if checkpoint:
            raise click.BadParameter("--checkpoint is for --parser bisenet", param_hint="--checkpoint")
        parser = get_parser("landmarks")

    def one(pair: tuple[Path, Path]) -> None:
        orig_path, fused_path = pair
        orig = read_image(orig_path)
        fus = orig if fused_path == orig_path else read_image(fused_path)
        m = face_mask(fus, orig, attribute, parser, fused_source=fused_path, original_source=orig_path)
        write_mask(out_path(out_dir, orig_path, tag="_mask"), m)
        write_image(out_path(out_dir, orig_path, tag="_overlay"), overlay(fus, m))

    failures = run_each(pairs, one, "mask", name=lambda p: p[0].name)
    return report_failures(failures, len(pairs))
