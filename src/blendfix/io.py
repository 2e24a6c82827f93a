"""Image and mask file I/O with one documented convention.

* :func:`read_image` returns ``float32`` ``(H, W, 3)`` RGB in ``[0, 1]`` whatever the file holds:
  8- or 16-bit, gray, palette, RGBA (alpha dropped), CMYK; EXIF orientation applied (the upright,
  displayed image is returned). 16-bit files keep their precision (divided by 65535).
* :func:`read_mask` returns ``float32`` ``(H, W)`` in ``[0, 1]``; an RGB mask is reduced to one channel.
* :func:`write_image` / :func:`write_mask` write atomically (temporary file + rename in the same
  folder), so an interrupted run never leaves a half-written output; files get the usual permissions
  (``0666`` less the umask), not the temporary file's private ``0600``. Inputs are never modified.

Every failure raises :class:`~blendfix.errors.ImageReadError` naming the file and what to do.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageReadError, SizeMismatchError
from .folders import PART_SUFFIX, partial_name
from .png import decode_plain_png, encode_png

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MIN_SIDE = 32
#: Default decompression-bomb guard; raise it with ``BLENDFIX_MAX_PIXELS`` or ``max_pixels=``.
DEFAULT_MAX_PIXELS = 64 * 1024 * 1024

ImageFile.LOAD_TRUNCATED_IMAGES = False


def _file_mode() -> int:
    """Permissions a plainly created file gets under the process umask (``0o666 & ~umask``)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


#: mode of written files; ``mkstemp`` would leave them private (0600) whatever the umask says
_FILE_MODE = _file_mode()


def max_pixels_limit() -> int:
    """The pixel-count limit in force (``BLENDFIX_MAX_PIXELS`` overrides the default)."""
    env = os.environ.get("BLENDFIX_MAX_PIXELS")
    return int(env) if env else DEFAULT_MAX_PIXELS


#: PIL's bomb guard is one process-wide number (``Image.MAX_IMAGE_PIXELS``) with no per-call form.
#: blendfix applies its own limit (:func:`_check_size`, before decoding), so it lifts PIL's only for the
#: header parse of ``Image.open`` and always under this lock: concurrent reads cannot interleave their
#: save/restore and leave the guard off for the whole process (a swap per call without it did).
_PIL_GUARD = threading.Lock()


def _open(path: Path, data: bytes) -> Image.Image:
    if not data:
        raise ImageReadError(f"{path}: the file is empty (0 bytes); re-export or re-download it.")
    try:
        with _PIL_GUARD, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # header only: our own guard is checked before decoding
            try:
                return Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = old
    except UnidentifiedImageError as e:
        raise ImageReadError(
            f"{path}: not a readable image (unknown or corrupt format); supported: "
            f"{', '.join(IMAGE_SUFFIXES)}."
        ) from e


def _is_16bit(img: Image.Image, data: bytes) -> bool:
    if img.mode.startswith("I;16") or img.mode == "I":
        return True
    if img.format == "PNG" and len(data) > 24:
        return data[24] == 16  # IHDR bit depth
    if img.format == "TIFF":
        bps = getattr(img, "tag_v2", {}).get(258, ())
        return 16 in (bps if isinstance(bps, tuple) else (bps,))
    return False


def _unsupported_depth(path: Path, what: str) -> ImageReadError:
    return ImageReadError(f"{path}: {what} pixels are not supported (8 or 16 bits per channel only); "
                          "convert the file, e.g. to a 16-bit PNG.")


def _decode_16bit(path: Path, data: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(f"{path}: corrupt or truncated 16-bit image; re-export the file.")
    if arr.dtype not in (np.uint8, np.uint16):  # 32-bit integer or float samples: no fixed white level
        raise _unsupported_depth(path, f"{arr.dtype} ({arr.dtype.itemsize * 8}-bit)")
    arr = arr.astype(np.float32) / (65535.0 if arr.dtype == np.uint16 else 255.0)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB)
    else:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    return arr


def _to_float(u8: np.ndarray) -> np.ndarray:
    """``uint8`` -> float32 ``v / 255`` (the same values as ``np.asarray(.., float32) / 255``, one copy less)."""
    out = u8.astype(np.float32)
    np.divide(out, 255.0, out=out)
    return out


def _apply_exif(img: Image.Image, arr: np.ndarray) -> np.ndarray:
    orientation = img.getexif().get(0x0112, 1)
    ops = {2: [np.fliplr], 3: [lambda a: np.rot90(a, 2)], 4: [np.flipud],
           5: [lambda a: np.rot90(a, 1), np.flipud], 6: [lambda a: np.rot90(a, 3)],
           7: [lambda a: np.rot90(a, 3), np.flipud], 8: [lambda a: np.rot90(a, 1)]}
    for op in ops.get(orientation, []):
        arr = op(arr)
    return np.ascontiguousarray(arr)


def _check_size(path: Path, width: int, height: int, min_side: int, max_pixels: int | None) -> None:
    limit = max_pixels_limit() if max_pixels is None else max_pixels
    if width * height > limit:
        raise ImageReadError(
            f"{path}: {width}x{height} = {width * height} pixels exceeds the limit of {limit} "
            f"(decompression-bomb guard); if the file is genuine, raise it with BLENDFIX_MAX_PIXELS="
            f"{width * height} or max_pixels=."
        )
    if min(width, height) < min_side:
        raise ImageReadError(
            f"{path}: {width}x{height} is too small; the minimum side is {min_side} pixels."
        )


def read_image(path: str | os.PathLike, *, min_side: int = MIN_SIDE,
               max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as ``float32`` ``(H, W, 3)`` RGB in ``[0, 1]`` (upright per EXIF).

    Raises :class:`ImageReadError` (a ``ValueError``) naming the file for missing, empty, corrupt,
    truncated, too small or too large files. The file itself is only read, never modified.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file.")
    data = path.read_bytes()
    img = _open(path, data)
    _check_size(path, img.width, img.height, min_side, max_pixels)
    try:
        if img.mode == "F":
            raise _unsupported_depth(path, "32-bit floating-point")
        if _is_16bit(img, data):
            return _apply_exif(img, _decode_16bit(path, data))
        plain = decode_plain_png(img, data)
        if plain is not None:
            return _to_float(plain)
        img.load()
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            img = img.convert("RGBA").convert("RGB")  # alpha dropped, colour kept as stored
        elif img.mode != "RGB":
            img = img.convert("RGB")
        return _to_float(np.asarray(img))
    except (OSError, SyntaxError) as e:
        raise ImageReadError(
            f"{path}: corrupt or truncated image ({e}); re-export or re-download the file."
        ) from e


def read_mask(path: str | os.PathLike, *, size: tuple[int, int] | None = None,
              max_pixels: int | None = None) -> np.ndarray:
    """Read a mask as ``float32`` ``(H, W)`` in ``[0, 1]``; 8-bit values are weights ``v / 255``.

    An RGB mask is reduced to one channel (its mean). ``size`` = ``(H, W)`` that the mask must have;
    a different size raises :class:`SizeMismatchError` (masks are never resized silently).
    """
    rgb = read_image(path, min_side=1, max_pixels=max_pixels)
    mask = rgb.mean(axis=2).astype(np.float32)
    if size is not None and mask.shape != tuple(size):
        raise SizeMismatchError(
            f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but the image is "
            f"{size[1]}x{size[0]}; save the mask at the image's size."
        )
    return mask


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """``[0, 1]`` float array to ``uint8`` (rounded, clipped); uint8 input is returned as is."""
    if arr.dtype == np.uint8:
        return arr
    return np.clip(np.rint(np.asarray(arr, np.float32) * 255.0), 0, 255).astype(np.uint8)


def atomic_write(path: Path, encode: Callable[[], bytes]) -> Path:
    """Write ``encode()``'s bytes to ``path`` via a temporary file and a rename in the same folder, so
    readers never see a half-written file; the file gets the usual mode (0666 less the umask).

    The temporary file names this host and process (:func:`blendfix.folders.partial_name`), so one
    left by a killed run is recognised as stale and deleted by the next run in that folder
    (:func:`blendfix.folders.sweep_partials`). Any ``OSError`` (disk full, read-only) propagates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=partial_name(path), suffix=f"{path.suffix}{PART_SUFFIX}", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_image(path: str | os.PathLike, image: np.ndarray, *, bit_depth: int = 8) -> Path:
    """Write ``(H, W, 3)`` or ``(H, W)`` image (float ``[0, 1]`` or uint8) atomically.

    The format follows the suffix (``.png`` default choice, encoded as :data:`blendfix.png.PNG_PARAMS` says;
    ``bit_depth=16`` for PNG/TIFF).
    """
    path = Path(path)
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
        raise ValueError(f"write_image expects (H, W), (H, W, 1) or (H, W, 3); got {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    suffix = path.suffix.lower() or ".png"
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: unsupported output format {suffix!r}; use one of {IMAGE_SUFFIXES}")
    if bit_depth == 16:
        if suffix not in (".png", ".tif", ".tiff"):
            raise ValueError(f"{path}: 16-bit output needs .png or .tif")
        a16 = np.clip(np.rint(arr.astype(np.float64) * 65535.0), 0, 65535).astype(np.uint16)
        a16 = cv2.cvtColor(a16, cv2.COLOR_RGB2BGR) if a16.ndim == 3 else a16

        def encode16() -> bytes:
            ok, buf = cv2.imencode(suffix, a16)
            if not ok:
                raise OSError(f"could not encode {path}")
            return buf.tobytes()

        return atomic_write(path, encode16)
    u8 = to_uint8(arr)

    def encode() -> bytes:
        if suffix == ".png":
            return encode_png(u8, path)
        buf = io.BytesIO()
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF"}.get(suffix, suffix[1:].upper())
        Image.fromarray(u8).save(buf, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
        return buf.getvalue()

    return atomic_write(path, encode)


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write a ``(H, W)`` mask in ``[0, 1]`` as 8-bit gray (``v * 255`` rounded), atomically."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"write_mask expects (H, W); got {m.shape}")
    return write_image(path, m)


def check_same_size(named: dict[str, np.ndarray]) -> None:
    """Raise :class:`SizeMismatchError` naming every input and its size unless all match."""
    sizes = {name: a.shape[:2] for name, a in named.items()}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{n}: {w}x{h}" for n, (h, w) in sizes.items())
        raise SizeMismatchError(
            f"inputs differ in size ({listing}); resize them to one size first (WxH shown)."
        )
