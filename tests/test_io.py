"""Image I/O against the shared awkward inputs: each gets a result or a clear error naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from blendfix.errors import ImageReadError, SizeMismatchError
from blendfix.io import check_same_size, read_image, read_mask, write_image, write_mask


@pytest.fixture(scope="module")
def bad(data_dir):
    from conftest import need
    return need(data_dir / "bad_inputs", "bad_inputs")


@pytest.mark.parametrize("name, fragment", [
    ("truncated.png", "corrupt or truncated"),
    ("truncated.jpg", "corrupt or truncated"),
    ("zero_bytes.png", "empty"),
    ("not_an_image.png", "not a readable image"),
    ("bomb.png", "BLENDFIX_MAX_PIXELS"),
    ("tiny_8x8.png", "minimum side is"),
])
def test_broken_files_get_clear_errors_naming_the_file(bad, name, fragment):
    with pytest.raises(ImageReadError) as ei:
        read_image(bad / name)
    assert name in str(ei.value)
    assert fragment in str(ei.value)


@pytest.mark.parametrize("name", ["gray_8bit.png", "palette.png", "rgba.png", "cmyk.jpg",
                                  "format.webp", "format.bmp", "format.tiff", "лицо 1.png",
                                  "odd_513x511.png"])
def test_awkward_formats_read_as_rgb_float(bad, name):
    img = read_image(bad / name)
    assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
    assert img.min() >= 0.0 and img.max() <= 1.0 and img.std() > 0.01


def test_odd_size_keeps_exact_shape(bad):
    assert read_image(bad / "odd_513x511.png").shape == (511, 513, 3)


@pytest.mark.parametrize("name", ["gray_16bit.png", "rgb_16bit.png"])
def test_16bit_keeps_precision(bad, name):
    import cv2
    raw = cv2.imread(str(bad / name), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    want = raw.astype(np.float32) / 65535.0
    want = np.repeat(want[..., None], 3, 2) if want.ndim == 2 else want[..., ::-1]
    img = read_image(bad / name)
    assert np.abs(img - want).max() < 1e-6  # full precision, scaled by 65535 (not clipped or /255)
    if raw.ndim == 2:
        assert len(np.unique(img)) > 256  # more levels than 8 bits could hold


def test_exif_rotation_is_applied(bad, tmp_path):
    raw = Image.open(bad / "exif_rotated.jpg")
    orient = raw.getexif().get(0x0112)
    turn = Image.Transpose.ROTATE_270 if orient == 6 else Image.Transpose.ROTATE_90
    upright = np.asarray(raw.transpose(turn), dtype=np.float32) / 255
    img = read_image(bad / "exif_rotated.jpg")
    assert orient in (6, 8)
    assert np.abs(img - upright).mean() < 1e-6


def test_masks_soft_3ch_and_wrong_size(bad):
    soft = read_mask(bad / "mask_soft.png")
    assert soft.ndim == 2 and soft.min() >= 0 and soft.max() <= 1
    assert len(np.unique(soft)) > 2  # soft weights, not thresholded
    assert read_mask(bad / "mask_3ch.png").ndim == 2
    with pytest.raises(SizeMismatchError, match="mask_wrong_size.png"):
        read_mask(bad / "mask_wrong_size.png", size=(256, 256))


def test_mismatched_pair_names_both_sizes(bad):
    a = read_image(bad / "mismatch_original.png")
    b = read_image(bad / "mismatch_fused.png")
    with pytest.raises(SizeMismatchError, match=r"256x256.*128x128"):
        check_same_size({"original": a, "fused": b})


def test_write_is_atomic_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.random((40, 50, 3)).astype(np.float32)
    p = write_image(tmp_path / "x.png", img)
    back = read_image(p)
    assert np.abs(back - img).max() <= 0.5 / 255 + 1e-6
    p16 = write_image(tmp_path / "x16.png", img, bit_depth=16)
    assert np.abs(read_image(p16) - img).max() < 1e-4
    write_mask(tmp_path / "m.png", img[..., 0])
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []


def test_failed_write_leaves_no_partial_file(tmp_path):
    with pytest.raises(ValueError):
        write_image(tmp_path / "bad.png", np.zeros((4, 4, 5)))
    assert list(tmp_path.iterdir()) == []
