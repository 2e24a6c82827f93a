"""One training item from one photo: I -> editor (I', T, M) -> F -> M_face -> target.

Per photo (``float32 (H, W, 3)`` in ``[0, 1]`` throughout, masks ``(H, W)`` in ``[0, 1]``):

1. ``read``: the photo is read (any format :func:`blendfix.io.read_image` takes), centre-cropped to
   the largest square (or skipped, ``non_square="skip"``), resized to ``resolution``² with
   ``INTER_AREA`` (``INTER_CUBIC`` when enlarging) and rounded to 8 bits, so ``original.png`` is
   exactly the I every later step saw. Photos should be aligned face crops (FFHQ / CelebA-HQ style);
   blendfix does not align them.
2. ``landmarks``: the face mesh of I (no face -> the photo is skipped as ``no_face``).
3. ``edit``: the editor gives I', T and the soft mask M; F = T * M + I * (1 - M).
4. ``parsing``: M_face, the face mask over F and I (eyes excluded); an empty M_face -> ``no_face``.
5. ``poisson``: target = seamless clone of F (source) into I (destination) over M_face.
6. ``write``: the seven PNGs (8-bit, deterministic encoding) into the item's temporary folder.

The seconds spent in each stage are returned with the item (``bench/synth.py`` reports them).
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..data import layout
from ..errors import NoFaceError
from ..io import read_image, to_uint8
from ..png import encode_png
from .config import MIXED_EDITORS, SynthConfig
from .items import SkipItem, Task


def square_crop(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The centred largest square of ``image`` and its ``(x0, y0, side)``."""
    h, w = image.shape[:2]
    side = min(h, w)
    x0, y0 = (w - side) // 2, (h - side) // 2
    return image[y0:y0 + side, x0:x0 + side], (x0, y0, side)


def load_photo(path: str | Path, resolution: int, non_square: str = "crop",
               source: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """A photo as the set's I: ``float32 (resolution, resolution, 3)`` in ``[0, 1]`` on 8-bit levels.

    Returns the image and facts for the manifest (``original_size`` [H, W], ``crop`` [x0, y0, side]).
    ``non_square="skip"`` raises :class:`SkipItem` (kind ``non_square``) for a non-square photo.
    """
    image = read_image(path)
    h, w = image.shape[:2]
    if h != w and non_square == "skip":
        raise SkipItem(f"{source or path}: {w}x{h} is not square (non_square=skip); crop it to the face "
                       f"or use non_square=crop.", kind="non_square")
    square, crop = square_crop(image)
    side = crop[2]
    if side != resolution:
        interp = cv2.INTER_AREA if side > resolution else cv2.INTER_CUBIC
        square = cv2.resize(square, (resolution, resolution), interpolation=interp)
    image = to_uint8(np.clip(square, 0.0, 1.0)).astype(np.float32) / 255.0
    return image, {"original_size": [h, w], "crop": list(crop)}


def checkpoint_hashes(config: SynthConfig) -> dict[str, str | None]:
    """sha256 of every weight file the run reads (computed once per run, recorded in every item).

    ``parser`` (BiSeNet's checkpoint, with ``parser="bisenet"``); for the GAN editor ``generator``,
    ``encoder``, ``diffcam`` (the editor's defaults where the config leaves them unset;
    ``generator: null`` = the decoder inside the pSp file) and ``direction:<attribute>`` for each of
    ``config.attributes``. ``{}`` for the synthetic editor with the landmark parser. Missing files
    raise the offline "place X at Y" error.
    """
    from ..checkpoints import sha256_file
    from ..registry import checkpoint_path

    out: dict[str, str | None] = {}
    if config.parser == "bisenet":
        from ..parsing.bisenet_parser import BiSeNetParser

        default = inspect.signature(BiSeNetParser.__init__).parameters["checkpoint"].default
        out["parser"] = sha256_file(checkpoint_path(default))
    if config.editor != "gan":
        return out
    from ..edit.directions import direction_path
    from ..edit.gan import GanEditor

    defaults = inspect.signature(GanEditor.__init__).parameters
    for name in ("generator", "encoder", "diffcam"):
        value = getattr(config, name) or defaults[name].default
        out[name] = sha256_file(checkpoint_path(value)) if value else None
    for attr in config.attributes:
        out[f"direction:{attr}"] = sha256_file(direction_path(attr))
    return out


def build_editor(config: SynthConfig, options: dict[str, Any]) -> Any:
    """The configured editor: ``synthetic`` needs nothing; ``gan`` its checkpoints, ``device``,
    ``precision`` and ``batch_size`` (from ``options``). ``options["editor"]``, an editor object,
    is used as is (in-process runs, e.g. a GAN editor built from modules)."""
    from ..edit import get_editor

    if options.get("editor") is not None:
        return options["editor"]
    if config.editor in ("synthetic", "paste"):
        return get_editor(config.editor)
    if config.editor == "mixed":
        return {name: get_editor(name) for name in MIXED_EDITORS}
    kwargs: dict[str, Any] = {k: getattr(config, k) for k in ("generator", "encoder", "diffcam") if getattr(config, k)}
    if config.alpha is not None:
        kwargs["alpha"] = config.alpha
    kwargs.update({k: options[k] for k in ("device", "precision", "batch_size") if options.get(k) is not None})
    return get_editor("gan", **kwargs)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def _json_safe(value: Any) -> Any:
    """``value`` with numpy scalars/arrays made plain and anything else unserialisable dropped."""
    if isinstance(value, dict):
        return {str(k): v for k, v in ((k, _json_safe(v)) for k, v in value.items()) if v is not _DROP}
    if isinstance(value, list | tuple):
        return [v for v in (_json_safe(x) for x in value) if v is not _DROP]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 16 else _DROP
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return _DROP
    return value


_DROP = object()


def write_png(path: Path, array: np.ndarray) -> None:
    """``(H, W, 3)`` RGB or ``(H, W)`` in ``[0, 1]`` (or uint8) as an 8-bit PNG (OpenCV, deterministic)."""
    path.write_bytes(encode_png(to_uint8(array), path))


class PhotoPipeline:
    """The item maker of ``blendfix synth`` (see the module docstring); one per process.

    ``pipeline(task, tmp_dir)`` makes one item; ``pipeline.make_batch(tasks, tmp_dirs)`` edits the
    photos in one batch when the editor has ``edit_batch`` (the GAN editor on a GPU).
    """

    def __init__(self, config: SynthConfig, options: dict[str, Any] | None = None) -> None:
        from ..blend.seamless import seamless_clone
        from ..parsing import face_mask, get_parser
        from ..parsing.landmarks import detect_landmarks

        self.config = config
        opts = options or {}
        built = build_editor(config, opts)
        #: editor name -> editor; a ``mixed`` set holds one per item editor
        self.editors = built if isinstance(built, dict) else {config.editor: built}
        self.editor = next(iter(self.editors.values()))
        self.parser = get_parser(config.parser, **({"device": opts.get("device") or "auto"}
                                                   if config.parser == "bisenet" else {}))
        self._face_mask, self._clone, self._landmarks = face_mask, seamless_clone, detect_landmarks
        self._edit_kwargs = {name: {k for k in ("landmarks", "source") if k in inspect.signature(e.edit).parameters}
                             for name, e in self.editors.items()}

    # -- stages
    def prepare(self, task: Task, t: dict[str, float]) -> tuple[np.ndarray, dict[str, Any], np.ndarray]:
        """Read and resize the photo (I) and find its face landmarks (``NoFaceError`` if none)."""
        with _timed(t, "read"):
            image, facts = load_photo(task.path, self.config.resolution, self.config.non_square, task.source)
        with _timed(t, "landmarks"):
            landmarks = self._landmarks(image, source=task.source)
        return image, facts, landmarks

    def edit(self, task: Task, image: np.ndarray, landmarks: np.ndarray, t: dict[str, float]) -> Any:
        name = task.editor if task.editor in self.editors else next(iter(self.editors))
        kwargs: dict[str, Any] = {"seed": task.seed}
        if "landmarks" in self._edit_kwargs[name]:
            kwargs["landmarks"] = landmarks
        if "source" in self._edit_kwargs[name]:
            kwargs["source"] = task.source
        with _timed(t, "edit"):
            return self.editors[name].edit(image, task.attribute, **kwargs)

    def finish(self, task: Task, tmp_dir: Path, image: np.ndarray, facts: dict[str, Any], result: Any,
               t: dict[str, float]) -> dict[str, Any]:
        """F, M_face, the Poisson target, and the item's files; returns its manifest fields."""
        if self.config.fusion != "paper":
            from ..edit.fusion import apply_fusion

            with _timed(t, "parsing"):
                result = apply_fusion(result, self.config.fusion, self.parser, source=task.source)
        fused = result.fused
        with _timed(t, "parsing"):
            face = self._face_mask(fused, image, task.attribute, self.parser, fused_source=f"F of {task.source}",
                                   original_source=task.source)
            face = (np.asarray(face) > 0.5).astype(np.float32)
        if not face.any():
            raise NoFaceError(f"{task.source}: the face mask over F and I is empty (face not found in the "
                              f"fused image); the photo cannot make a training item.")
        with _timed(t, "poisson"):
            target = self._clone(to_uint8(fused), to_uint8(image), to_uint8(face), backend=self.config.poisson)
        with _timed(t, "write"):
            for name, arr in ((layout.ORIGINAL, image), (layout.INVERTED, result.inverted),
                              (layout.EDITED, result.edited), (layout.MASK, result.mask), (layout.FUSED, fused),
                              (layout.FACE_MASK, face), (layout.TARGET, target)):
                write_png(tmp_dir / name, arr)
            truth = getattr(result, "truth", None)
            if truth is not None:
                write_png(tmp_dir / layout.TRUTH, truth)
        kind = getattr(result, "kind", "") or f"{task.editor or self.config.editor}:{task.attribute}"
        return {**facts, "kind": kind, "layout": layout.LAYOUT_VERSION, "has_truth": truth is not None,
                "mask_mean": round(float(np.mean(result.mask)), 6),
                "face_mask_mean": round(float(face.mean()), 6), "editor_info": _json_safe(result.info)}

    # -- the ItemMaker protocol
    def __call__(self, task: Task, tmp_dir: Path) -> tuple[dict[str, Any], dict[str, float]]:
        t: dict[str, float] = {}
        image, facts, landmarks = self.prepare(task, t)
        result = self.edit(task, image, landmarks, t)
        return self.finish(task, tmp_dir, image, facts, result, t), t

    def make_batch(self, tasks: list[Task], tmp_dirs: list[Path]) -> list[Any]:
        """Per task ``(extra, timings)`` or the exception it raised; editing batched if possible."""
        out: list[Any] = [None] * len(tasks)
        timings: list[dict[str, float]] = [{} for _ in tasks]
        ready = []
        for i, task in enumerate(tasks):
            try:
                ready.append((i, *self.prepare(task, timings[i])))
            except Exception as e:  # noqa: BLE001 - reported per task
                out[i] = e
        results = self._edit_many(tasks, ready, timings)
        for (i, image, facts, _), res in zip(ready, results, strict=True):
            try:
                if isinstance(res, BaseException):
                    raise res
                out[i] = (self.finish(tasks[i], tmp_dirs[i], image, facts, res, timings[i]), timings[i])
            except Exception as e:  # noqa: BLE001 - reported per task
                out[i] = e
        return out

    def _edit_many(self, tasks: list[Task], ready: list[tuple], timings: list[dict[str, float]]) -> list[Any]:
        """Edit the prepared photos: one ``edit_batch`` call per attribute when the editor has it."""
        batch = getattr(self.editor, "edit_batch", None)
        results: list[Any] = [None] * len(ready)
        if batch is None:
            for j, (i, image, _, landmarks) in enumerate(ready):
                try:
                    results[j] = self.edit(tasks[i], image, landmarks, timings[i])
                except Exception as e:  # noqa: BLE001 - reported per task
                    results[j] = e
            return results
        groups: dict[str, list[int]] = {}
        for j, (i, *_rest) in enumerate(ready):
            groups.setdefault(tasks[i].attribute, []).append(j)
        for attribute, members in groups.items():
            start = time.perf_counter()
            try:
                edited = list(batch([ready[j][1] for j in members], attribute))
            except Exception as e:  # noqa: BLE001 - the group fails together; each task reports it
                edited = [e] * len(members)
            share = (time.perf_counter() - start) / len(members)
            for j, res in zip(members, edited, strict=True):
                i = ready[j][0]
                timings[i]["edit"] = timings[i].get("edit", 0.0) + share
                if not isinstance(res, BaseException):
                    res.info["seed"] = tasks[i].seed  # as a one-photo edit(..., seed=) records it
                results[j] = res
        return results


def make_item_maker(config: SynthConfig, options: dict[str, Any]) -> PhotoPipeline:
    """The runner's default factory: the real pipeline (module-level, so worker processes can build it)."""
    return PhotoPipeline(config, options)
