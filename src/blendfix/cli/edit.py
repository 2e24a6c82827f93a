"""`blendfix edit -i PHOTOS -o SET`: (I', T, M) and F for each photo and attribute, as an image set.

``-o`` becomes an image set (:mod:`blendfix.data.imageset`): per photo and attribute an item
``<stem>_<attribute>`` with ``original.png`` (I, as edited), ``inverted.png`` (I'), ``edited.png`` (T),
``mask.png`` (M), ``fused.png`` (F = T*M + I*(1-M)), ``strip.png`` (I, I', T, M, F side by side) and
its line in ``manifest.jsonl`` (source, attribute, editor, seed). ``mask``, ``blend``, ``clean`` and
``evaluate`` take the set as it is (``-i SET``).
``--fusion released`` takes the mouth wholly from T for smile and aging, as the 2025 method's
released code does; M is then that fusion's weight, so F = T*M + I*(1-M) still holds for the files
(``blendfix.edit.fusion``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import cv2
import numpy as np

from ..attributes import ATTRIBUTES, canonical
from ..blend.fuse import FUSIONS
from ..data.imageset import ImageSet, Item, ItemRecord, collect
from ..edit import get_editor
from ..edit.base import EditResult
from ..edit.fusion import apply_fusion
from ..io import IMAGE_SUFFIXES, read_image, write_image, write_mask
from ..viz import strip_image
from .common import (
    attribute_option,
    device_options,
    input_option,
    option,
    prepare_output,
    refuse_overwriting_inputs,
    report_failures,
    run_each,
)

ROLES_WRITTEN = ("original", "inverted", "edited", "mask", "fused")
_UNSAFE = re.compile(r"[^\w.-]+")  # letters of any script are kept

def _resize(image: np.ndarray, resolution: int | None) -> np.ndarray:
    if resolution is None:
        return image
    h, w = image.shape[:2]
    k = resolution / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
    return np.clip(cv2.resize(image, size, interpolation=interp), 0, 1)


def item_id(path: Path, attribute: str) -> str:
    """The id of a photo's edit for one attribute: ``<stem>_<attribute>`` (unsafe characters replaced)."""
    return f"{_UNSAFE.sub('_', path.stem).strip('._') or 'photo'}_{attribute}"


def write_result(s: ImageSet, item: str, result: EditResult, source: Path, editor: str, seed: int) -> ItemRecord:
    """The item's images (original, inverted, edited, mask, fused, and truth when the editor knows it) and
    ``strip.png``; returns its record."""
    write_image(s.path(item, "original"), result.original)
    write_image(s.path(item, "inverted"), result.inverted)
    write_image(s.path(item, "edited"), result.edited)
    write_mask(s.path(item, "mask"), result.mask)
    write_image(s.path(item, "fused"), result.fused)
    roles = ROLES_WRITTEN
    if getattr(result, "truth", None) is not None:  # the editor knows the artifact-free result
        write_image(s.path(item, "truth"), result.truth)
        roles = (*roles, "truth")
    write_image(s.path(item, "original").with_name("strip.png"), strip_image(result))
    kind = getattr(result, "kind", "") or f"{editor}:{result.attribute}"
    return ItemRecord(item, str(source), result.attribute, kind=kind, roles=roles,
                      extra={"editor": editor, "seed": seed, "editor_info": _json_safe(result.info)})


def _json_safe(info: dict) -> dict:
    return json.loads(json.dumps(info, default=str))


@click.command("edit")
@input_option("A face photo, a folder of them, or an image set (its originals are edited).")
@attribute_option("all", extra=("all",), multiple=True, help="Attribute to edit; repeat for several.")
@click.option("--editor", "editor_name", type=click.Choice(["synthetic", "gan"]), default="synthetic",
              show_default=True, help="synthetic: offline imitation of inversion+edit+Diff-CAM; gan: StyleGAN2.")
@click.option("--alpha", default=20.0, show_default=True, type=float,
              help="Edit strength (latent step for gan; synthetic uses alpha/20 as its attribute strength).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the synthetic editor's randomness.")
@click.option("--resolution", type=click.IntRange(min=32), default=None,
              help="Resize each photo so its longer side is N before editing (default: keep its size).")
@click.option("--fold", is_flag=True, help="Synthetic: EOGI folded mask (M <= 0.5).")
@click.option("--mask-upsample", type=click.Choice(["bilinear", "nearest256"]), default="bilinear",
              show_default=True, help="Synthetic: CAM upsampling (nearest256 = EOGI).")
@click.option("--largest-face", is_flag=True,
              help="Synthetic: edit only the largest face (default: every face of a group photo).")
@click.option("--fusion", type=click.Choice(FUSIONS), default="paper", show_default=True,
              help="paper: F = T*M + I*(1-M); released: as the released code, the mouth (parsed in I or T) "
                   "wholly from T for smile and aging (and, for gan, Diff-CAM with aug/eigen smoothing).")
@click.option("--generator", default=None, help="gan: StyleGAN2 checkpoint name or path.")
@click.option("--encoder", default=None, help="gan: pSp encoder checkpoint name or path.")
@click.option("--diffcam", default=None, help="gan: Diff-CAM checkpoint name or path.")
@option("-o", "--output", "out", required=True, type=click.Path(path_type=Path),
        help="The image set to write (created; a rerun replaces the items it makes again), or for one photo and "
             "one attribute an image file that gets the fused image F.")
@device_options
def cmd(source: Path, attribute: tuple[str, ...], editor_name: str, alpha: float, seed: int,
        resolution: int | None, fold: bool, mask_upsample: str, largest_face: bool, fusion: str,
        generator: str | None, encoder: str | None, diffcam: str | None, out: Path, device: str, batch_size: int,
        precision: str) -> int:
    """Edit face photos: write I', T, M, F and a strip for each photo and attribute."""
    attrs: list[str] = []
    for a in attribute:
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
    items = collect(source)
    if out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():  # -o F.png: the one fused image F, nothing else
        if len(items) * len(attrs) != 1:
            raise click.BadParameter(f"{out} names one image but there are {len(items)} photo(s) x {len(attrs)} "
                                     "attribute(s); give a folder (an image set) instead", param_hint="-o")
        refuse_overwriting_inputs([out], [items[0]["original"]])
        image = _resize(read_image(items[0]["original"]), resolution)
        result = apply_fusion(editor.edit(image, attrs[0], seed=seed), fusion, source=str(items[0]["original"]))
        write_image(out, result.fused)
        return 0
    prepare_output(out, {"-i": source})
    target = ImageSet(out)
    ids = {(i.id, a): item_id(Path(i.id), a) for i in items for a in attrs}
    if len(set(ids.values())) < len(ids):
        raise ValueError(f"{source}: two photos give the same item id once unsafe characters are replaced; "
                         "rename one of them.")
    refuse_overwriting_inputs([target.path(k, r) for k in ids.values() for r in ROLES_WRITTEN],
                              [i["original"] for i in items])

    def one(item: Item) -> None:
        path = item["original"]
        image = _resize(read_image(path), resolution)
        landmarks = None
        if editor_name == "synthetic":
            from ..edit.synthetic import detect_faces

            landmarks = detect_faces(image, str(path), largest_face)  # once per photo, shared by the attributes
        records = []
        for attr in attrs:
            if landmarks is not None:
                result = editor.edit(image, attr, seed=seed, landmarks=landmarks, source=str(path))
            else:
                result = editor.edit(image, attr, seed=seed)
            result = apply_fusion(result, fusion, source=str(path))
            records.append(write_result(target, ids[item.id, attr], result, path, editor_name, seed))
        target.add(records)  # after the images: a record names only finished files

    failures = run_each(items, one, desc=f"edit ({editor_name})", name=lambda i: i.name)
    return report_failures(failures, len(items))
