"""What the web page does, without the web page: load once, clean a pair, try an edit, explain failures.

Everything here calls the library (``blendfix.io``, :class:`blendfix.cleaning.Cleaner` — the object
behind ``blendfix.clean`` — ``blendfix.edit.get_editor``, ``blendfix.metrics.seam``); the Gradio
layer in :mod:`blendfix.serve.app` only wires these functions to components. Images are numpy
``float32 (H, W, 3)`` RGB in ``[0, 1]``, masks ``(H, W)`` in ``[0, 1]``; results are PNG files written
with :func:`blendfix.io.write_image` into a per-request folder of :class:`Workspace`.
"""

from __future__ import annotations

import itertools
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..attributes import ATTRIBUTES
from ..cleaning import DEFAULT_WEIGHTS, CleanConfig, Cleaner, prepare_fused
from ..edit.base import Editor
from ..errors import BlendfixError
from ..io import read_image, read_mask, write_image, write_mask
from .views import boundary_zoom, estimate_edit_mask, scores_table

#: errors that are the upload's fault: shown in the page as one message, never as a traceback
USER_ERRORS = (BlendfixError, ValueError, FileNotFoundError)
#: face-mask rules offered for the Poisson teacher (``face`` = the plain face region, the CLI default)
MASK_RULES = ("face", *ATTRIBUTES)
#: order in which methods are shown; the first one that succeeds is the one offered for download
METHOD_ORDER = ("network", "poisson", "fused")
METHOD_LABELS = {"network": "network (MAResU-Net)", "poisson": "poisson (the teacher)",
                 "fused": "fused (no cleaning)"}
#: the bundled example of "Try an edit" (what `make demo` uses)
EXAMPLE = "astronaut (scikit-image)"
STRENGTH_RANGE = (0.1, 3.0)
#: editors that need no checkpoint: the synthetic GAN-like editor and the paste editor (user-like pasted pairs)
OFFLINE_EDITORS = ("synthetic", "paste")


class UploadError(BlendfixError, ValueError):
    """Something the visitor must fix (missing upload, bad choice); shown as the page's message."""


@dataclass
class Workspace:
    """Per-request result folders under ``root`` (the server's temporary folder); keeps the newest ``keep``."""

    root: Path
    keep: int = 16
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def new(self) -> Path:
        folder = self.root / f"request-{next(self._ids):06d}"
        folder.mkdir(parents=True)
        old = sorted(p for p in self.root.glob("request-*") if p.is_dir())
        for stale in old[:-self.keep]:
            shutil.rmtree(stale, ignore_errors=True)
        return folder


class Models:
    """Cleaners (and the GAN editor when its checkpoints exist), loaded once at start-up.

    ``device``: ``auto``, ``cpu``, ``cuda``…; ``weights``: the cleaner network (registered name, run
    folder or file); without it the network is offered only when the default weights are installed.
    """

    def __init__(self, device: str = "auto", weights: str | None = None, edit_size: int = 512) -> None:
        from ..registry import available

        if edit_size < 64:
            raise ValueError(f"edit_size must be >= 64 pixels, got {edit_size}")
        self.device, self.edit_size = device, edit_size
        methods = [m for m in METHOD_ORDER if m != "network" or weights is not None or available(DEFAULT_WEIGHTS)]
        self.notes: list[str] = []
        if "network" not in methods:
            self.notes.append(f"network not shown: no trained weights ({DEFAULT_WEIGHTS}); start with "
                              "`blendfix serve --weights RUN_DIR` or see `blendfix weights`")
        self.cleaners = {m: Cleaner(CleanConfig(method=m, weights=weights, device=device)) for m in methods}
        self.gan = self._load_gan(device)

    def _load_gan(self, device: str) -> Editor | None:
        from ..edit.gan import check_available

        try:
            check_available(["psp_ffhq_encode", "diff_cam_weight"])
        except BlendfixError:
            self.notes.append("GAN editor not offered: its checkpoints (pSp, Diff-CAM) are not installed; "
                              "`blendfix weights` lists them")
            return None
        from ..edit import get_editor

        return get_editor("gan", device=device)

    @property
    def methods(self) -> list[str]:
        return list(self.cleaners)

    @property
    def editors(self) -> list[str]:
        return list(OFFLINE_EDITORS) + (["gan"] if self.gan is not None else [])


def read_upload(path: str | Path | None, role: str, *, size: tuple[int, int] | None = None,
                mask: bool = False) -> np.ndarray:
    """Read an uploaded file as an image (or mask of ``size``); ``UploadError`` when nothing was uploaded."""
    if path is None or str(path) == "":
        raise UploadError(f"no {role} uploaded: drop an image file on the {role} box")
    return read_mask(path, size=size) if mask else read_image(path)


def user_message(error: BaseException | str, uploads: dict[str, str | Path | None]) -> str:
    """One readable line for ``error``: temporary upload paths become ``role 'name.png'``."""
    text = str(error).strip() or type(error).__name__
    for role, p in uploads.items():
        if p:
            text = text.replace(str(Path(p)), f"{role} '{Path(p).name}'")
    return text


@dataclass
class PairResult:
    """Output of :func:`clean_pair`: PNG paths per method, the before image, zoom, scores, notes."""

    cleaned: dict[str, Path]
    before: Path
    zoom: Path
    scores: str
    download: Path
    notes: list[str]


def _run(cleaner: Cleaner, original: np.ndarray, fused: np.ndarray, names: tuple[str, str], attribute: str | None,
         notes: list[str], method: str) -> np.ndarray:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = cleaner([original], [fused], [names], [attribute])[0]
    notes.extend(f"{method}: {w.message}" for w in caught)
    return out


def clean_pair(models: Models, folder: Path, original: str | Path | None, edited: str | Path | None,
               mask: str | Path | None = None, rule: str = "face") -> PairResult:
    """Clean one uploaded pair with every available method; files go to ``folder``.

    ``edited`` is the pasted/fused image F, or with ``mask`` the edited image T (then
    F = T·M + I·(1 − M), as ``blendfix clean --edited --mask``). ``rule`` is the Poisson face-mask rule.
    A method that cannot run on this pair (no face for ``poisson``) is left out with a note.
    """
    if rule not in MASK_RULES:
        raise UploadError(f"unknown face-mask rule {rule!r}; choose one of {', '.join(MASK_RULES)}")
    img = read_upload(original, "original")
    other = read_upload(edited, "edited image")
    m = read_upload(mask, "mask", size=img.shape[:2], mask=True) if mask else None
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fused = prepare_fused(img, None, other, m) if m is not None else prepare_fused(img, other)
    notes.extend(str(w.message) for w in caught)
    region = m if m is not None else estimate_edit_mask(img, fused)
    names = (str(original), str(edited))
    outs: dict[str, np.ndarray] = {}
    for method, cleaner in models.cleaners.items():
        try:
            outs[method] = _run(cleaner, img, fused, names, None if rule == "face" else rule, notes, method)
        except USER_ERRORS as e:
            notes.append(f"{method} not shown: {e}")
    if not outs:
        raise UploadError("no method could clean this pair: " + "; ".join(notes))
    cleaned = {k: write_image(folder / f"{k}.png", v) for k, v in outs.items()}
    main = next(k for k in METHOD_ORDER if k in outs)
    stem = Path(str(original)).stem or "image"
    return PairResult(
        cleaned=cleaned, before=write_image(folder / "before.png", fused),
        zoom=write_image(folder / "zoom.png", boundary_zoom(img, fused, region, outs)),
        scores=scores_table(img, fused, region, outs, estimated=m is None),
        download=write_image(folder / f"{stem}_blendfix_{main}.png", outs[main]), notes=notes)


@dataclass
class EditPageResult:
    """Output of :func:`try_edit`: I, T, M, F and the cleaned images as PNG paths, plus notes."""

    images: dict[str, Path]
    cleaned: dict[str, Path]
    notes: list[str]


def try_edit(models: Models, folder: Path, photo: str | Path | None, use_example: bool, attribute: str,
             strength: float = 1.0, editor: str = "synthetic", seed: int = 0) -> EditPageResult:
    """Edit a photo (or the bundled example) and clean the fused result with every non-trivial method.

    The face is cropped to a ``models.edit_size`` square as ``blendfix demo`` does; ``strength``
    scales the edit (the synthetic and paste editors' ``strength``; GAN: alpha = 20 × strength);
    ``seed`` picks the editor's random choices.
    """
    from ..attributes import canonical
    from ..demo import astronaut, face_crop
    from ..edit import get_editor

    attr = canonical(attribute)
    lo, hi = STRENGTH_RANGE
    if not lo <= float(strength) <= hi:
        raise UploadError(f"strength must be between {lo} and {hi}, got {strength}")
    if editor not in models.editors:
        raise UploadError(f"editor {editor!r} is not available here; choose one of {', '.join(models.editors)}")
    image = astronaut() if use_example else read_upload(photo, "photo")
    name = EXAMPLE if use_example else str(photo)
    face = face_crop(image, models.edit_size, source=name)
    if editor == "gan":
        models.gan.alpha = 20.0 * float(strength)  # requests run one at a time (queue concurrency 1)
        ed = models.gan
    else:
        ed = get_editor(editor, strength=float(strength))
    res = ed.edit(face, attr, seed=int(seed))
    fused = res.fused
    notes: list[str] = []
    cleaned = {}
    for method, cleaner in models.cleaners.items():
        if method == "fused":
            continue
        try:
            out = _run(cleaner, face, fused, (name, f"{name} (fused)"), attr, notes, method)
            cleaned[method] = write_image(folder / f"cleaned_{method}.png", out)
        except USER_ERRORS as e:
            notes.append(f"{method} not shown: {e}")
    images = {"I": write_image(folder / "I.png", face), "T": write_image(folder / "T.png", res.edited),
              "M": write_mask(folder / "M.png", res.mask), "F": write_image(folder / "F.png", fused)}
    return EditPageResult(images=images, cleaned=cleaned, notes=notes)
