"""`blendfix edit`: (I', T, M) and F for each photo and attribute, with a labelled strip.

Writes per image and attribute ``<stem>_inverted.png`` (I'), ``<stem>_edited.png`` (T),
``<stem>_mask.png`` (M), ``<stem>_fused.png`` (F = T*M + I*(1-M)) and ``<stem>_strip.png``
(I, I', T, M, F side by side). ``--fusion released`` takes the mouth wholly from T for smile and aging,
as the 2025 method's released code does; M is then that fusion's weight, so F = T*M + I*(1-M) still
holds for the files (``blendfix.edit.fusion``).
With ``-a all`` (or several attributes) the stem gets the
attribute appended: ``<stem>_<attribute>_fused.png``.
"""

from __future__ import annotations

from pathlib import Path

import click
import cv2
import numpy as np

from ..attributes import ATTRIBUTES, canonical
from ..blend.fuse import FUSIONS
from ..edit import get_editor
from ..edit.base import EditResult
from ..edit.fusion import apply_fusion
from ..io import list_images, read_image, to_uint8, write_image, write_mask
from .common import device_options, prepare_output, refuse_overwriting_inputs, report_failures, run_each

PANELS = ("I", "I'", "T", "M", "F")
OUTPUTS = ("inverted", "edited", "mask", "fused", "strip")


def strip_image(result: EditResult, panel: int = 256, labels: tuple[str, ...] = PANELS) -> np.ndarray:
    """I, I', T, M, F side by side, each ``panel`` px high, with a label bar; ``uint8 (h, w, 3)``.

    I', T and M are labelled with the editor that made them (e.g. "T (synthetic)").
    """
    h, w = result.original.shape[:2]
    pw = max(1, round(w * panel / h))
    mask3 = np.repeat(result.mask[..., None], 3, axis=2)
    images = dict(zip(PANELS, (result.original, result.inverted, result.edited, mask3, result.fused), strict=True))
    tiles = []
    editor = result.info.get("editor")
    for name in labels:
        tile = to_uint8(cv2.resize(images[name], (pw, panel), interpolation=cv2.INTER_AREA))
        bar = np.full((22, pw, 3), 255, np.uint8)
        text = f"{name} ({editor})" if editor and name in ("I'", "T", "M") else name
        cv2.putText(bar, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([bar, tile], axis=0))
        tiles.append(np.full((panel + 22, 2, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def _resize(image: np.ndarray, resolution: int | None) -> np.ndarray:
    if resolution is None:
        return image
    h, w = image.shape[:2]
    k = resolution / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
    return np.clip(cv2.resize(image, size, interpolation=interp), 0, 1)


def result_stem(path: Path, attribute: str, attributes: list[str]) -> str:
    """``<stem>`` for one attribute, ``<stem>_<attribute>`` for several."""
    return path.stem if len(attributes) == 1 else f"{path.stem}_{attribute}"


def write_result(out_dir: Path, stem: str, result: EditResult) -> None:
    """The five files of one edit (see the module docstring)."""
    write_image(out_dir / f"{stem}_inverted.png", result.inverted)
    write_image(out_dir / f"{stem}_edited.png", result.edited)
    write_mask(out_dir / f"{stem}_mask.png", result.mask)
    write_image(out_dir / f"{stem}_fused.png", result.fused)
    write_image(out_dir / f"{stem}_strip.png", strip_image(result))


@click.command("edit")
@click.option("-i", "--input", "input_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="A face photo or a folder of them.")
@click.option("-a", "--attribute", "attributes", multiple=True, default=("all",), show_default=True,
              help=f"{', '.join(ATTRIBUTES)} or all; repeat for several.")
@click.option("--editor", "editor_name", type=click.Choice(["synthetic", "gan"]), default="synthetic",
              show_default=True, help="synthetic: offline imitation of inversion+edit+Diff-CAM; gan: StyleGAN2.")
@click.option("--alpha", default=20.0, show_default=True, type=float,
              help="Edit strength (latent step for gan; synthetic uses alpha/20 as its attribute strength).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--resolution", type=click.IntRange(min=32), default=None,
              help="Resize each photo so its longer side is N before editing (default: keep its size).")
@click.option("--fold", is_flag=True, help="Synthetic: EOGI folded mask (M <= 0.5).")
@click.option("--mask-upsample", type=click.Choice(["bilinear", "nearest256"]), default="bilinear",
              show_default=True, help="Synthetic: CAM upsampling (nearest256 = EOGI).")
@click.option("--fusion", type=click.Choice(FUSIONS), default="paper", show_default=True,
              help="paper: F = T*M + I*(1-M); released: as the released code, the mouth (parsed in I or T) "
                   "wholly from T for smile and aging (and, for gan, Diff-CAM with aug/eigen smoothing).")
@click.option("--generator", default=None, help="gan: StyleGAN2 checkpoint name or path.")
@click.option("--encoder", default=None, help="gan: pSp encoder checkpoint name or path.")
@click.option("--diffcam", default=None, help="gan: Diff-CAM checkpoint name or path.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=Path))
@device_options
def cmd(input_path: Path, attributes: tuple[str, ...], editor_name: str, alpha: float, seed: int,
        resolution: int | None, fold: bool, mask_upsample: str, fusion: str, generator: str | None, encoder: str | None,
        diffcam: str | None, out_dir: Path, device: str, batch_size: int, precision: str) -> int:
    """Edit face photos: write I', T, M, F and a strip for each photo and attribute."""
    attrs: list[str] = []
    for a in attributes:
        for name in (ATTRIBUTES if a.strip().lower() == "all" else (canonical(a),)):
            if name not in attrs:
                attrs.append(name)
    if editor_name == "synthetic":
        editor = get_editor("synthetic", strength=alpha / 20.0, fold=fold, cam_upsample=mask_upsample)
    else:
        options = {"alpha": alpha, "device": device, "precision": precision, "batch_size": batch_size,
                   "attributes": tuple(attrs),  # direction files checked before any photo is read
                   "cam_smoothing": "released" if fusion == "released" else "off"}
        options.update({k: v for k, v in (("generator", generator), ("encoder", encoder), ("diffcam", diffcam))
                        if v is not None})
        editor = get_editor("gan", **options)
    files = list_images(input_path)
    if not files:
        raise click.ClickException(f"{input_path}: no image files found")
    # -o = the photo folder: a rerun would find the last run's <stem>_fused.png (etc.) among the photos
    refuse_overwriting_inputs([out_dir / f"{result_stem(f, a, attrs)}_{k}.png" for f in files for a in attrs
                               for k in OUTPUTS], files)
    prepare_output(out_dir, {"-i": input_path})

    def one(path: Path) -> None:
        image = _resize(read_image(path), resolution)
        landmarks = None
        if editor_name == "synthetic":
            from ..edit.synthetic import detect

            landmarks = detect(image, str(path))  # once per photo, shared by the attributes
        for attr in attrs:
            if landmarks is not None:
                result = editor.edit(image, attr, seed=seed, landmarks=landmarks, source=str(path))
            else:
                result = editor.edit(image, attr, seed=seed)
            result = apply_fusion(result, fusion, source=str(path))
            write_result(out_dir, result_stem(path, attr, attrs), result)

    failures = run_each(files, one, desc=f"edit ({editor_name})", name=lambda p: p.name)
    return report_failures(failures, len(files))
