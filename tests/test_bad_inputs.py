"""The 27 awkward files of data/bad_inputs through every command: a right result or a clear error.

For each (file, command): the exit code; on error, the file's name and what is wrong in the message;
never a traceback or an "internal error"; outputs at the right size with a sensible name; no
temporary ``*.part`` file left behind; the input (a copy in tmp_path, and the shared original)
unchanged. The table below is what each file must get (see bad_inputs/README.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import need, require_verb
from PIL import Image, ImageFile

from blendfix.blend import seamless_clone
from blendfix.blend.fuse import fuse
from blendfix.cleaning import clean
from blendfix.cli import main
from blendfix.errors import ImageReadError, SizeMismatchError
from blendfix.io import read_image, read_mask, to_uint8, write_image, write_mask

REF = "format.bmp"  # the plain 8-bit RGB version of the face most files hold

#: photo-like files -> None (works) or a phrase the error must contain (besides the file name)
PHOTOS: dict[str, str | None] = {
    "truncated.png": "corrupt or truncated",
    "truncated.jpg": "corrupt or truncated",
    "zero_bytes.png": "empty",
    "not_an_image.png": "not a readable image",
    "bomb.png": "BLENDFIX_MAX_PIXELS",
    "tiny_8x8.png": "minimum side is 32",
    "gray_8bit.png": None,
    "palette.png": None,
    "gray_16bit.png": None,
    "rgb_16bit.png": None,
    "rgba.png": None,
    "cmyk.jpg": None,
    "exif_rotated.jpg": None,
    "odd_513x511.png": None,
    "format.webp": None,
    "format.bmp": None,
    "format.tiff": None,
    "лицо 1.png": None,
    "mismatch_original.png": None,
    "mismatch_fused.png": None,
    "no_face.png": None,  # a face is needed only by the commands in NEEDS_FACE
    "two_faces.png": None,  # the largest face is used
}
MASKS = ("mask_all_zero.png", "mask_all_one.png", "mask_soft.png", "mask_3ch.png", "mask_wrong_size.png")
PAIR = ("mismatch_original.png", "mismatch_fused.png")
NEEDS_FACE = {"edit", "clean_poisson", "mask", "synth"}
#: outcomes that differ from PHOTOS for one command
OVERRIDES: dict[tuple[str, str], str | None] = {
    # synth centre-crops non-square photos (its documented default, --non-square crop); the 256x256
    # centre of two_faces.png cuts between the two faces, so the photo is skipped, named, with the reason
    ("synth", "two_faces.png"): "no face found",
}
COMMANDS = ("edit", "clean_fused", "clean_poisson", "blend", "mask", "synth")
ALL_FILES = (*PHOTOS, *MASKS)
assert len(set(ALL_FILES)) == 27


def expected(command: str, name: str) -> str | None:
    if (command, name) in OVERRIDES:
        return OVERRIDES[command, name]
    if name == "no_face.png" and command in NEEDS_FACE:
        return "no face found"
    return PHOTOS[name]


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.fixture(scope="module")
def bad(data_dir) -> Path:
    return need(data_dir / "bad_inputs" / "README.md", "data/bad_inputs").parent


@pytest.fixture(scope="module", autouse=True)
def shared_untouched(bad):
    """Every shared original has the same bytes and mtime after the whole module ran."""
    before = {p.name: fingerprint(p) for p in bad.iterdir()}
    yield
    assert {p.name: fingerprint(p) for p in bad.iterdir()} == before


def cli(capsys, *args) -> tuple[int, str]:
    """Run ``blendfix ARGS``; return (exit code, stdout + stderr), which never holds a traceback."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    text = out + err
    assert "Traceback" not in text and "internal error" not in text, text
    return code, text


def leftovers(folder: Path) -> list[str]:
    """Temporary files an interrupted atomic write would leave (``.<stem>.*.part``, ``*.tmp``)."""
    return [p.name for p in folder.rglob("*") if p.name.endswith((".part", ".tmp"))]


def displayed_size(path: Path) -> tuple[int, int]:
    """(W, H) of the upright image."""
    h, w = read_image(path).shape[:2]
    return w, h


def ellipse_mask(w: int, h: int) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    cv2.ellipse(m, (w // 2, h // 2), (max(w // 4, 2), max(h // 3, 2)), 0, 0, 360, 1.0, -1)
    return m


def image_size(path: Path) -> tuple[int, int]:
    """(W, H) of an image file as stored (outputs are written upright, so no EXIF)."""
    with Image.open(path) as im:
        return im.size


# --------------------------------------------------------------------------------------------
# every photo-like file through every command
# --------------------------------------------------------------------------------------------

def _edit(src: Path, out: Path, size: tuple[int, int] | None):
    odd = src.name == "odd_513x511.png"
    args = ["edit", "-i", src, "-a", "smile", "-o", out, *([] if odd else ["--resolution", 128])]
    names = [f"{src.stem}_{k}.png" for k in ("inverted", "edited", "mask", "fused")]
    if size is not None and not odd:
        k = 128 / max(size)
        size = (round(size[0] * k), round(size[1] * k))
    return args, {n: size for n in names}


def _clean(method: str):
    def build(src: Path, out: Path, size):
        fused = src.parent / "fused" / f"fused_{src.name}"  # a different name: two files pair directly
        fused.parent.mkdir(exist_ok=True)
        shutil.copy2(src, fused)
        return (["clean", "-i", src, "--fused", fused, "--method", method, "--device", "cpu", "-o", out],
                {f"{src.stem}.png": size})
    return build


def _blend(src: Path, out: Path, size):
    edited = src.parent / "edited" / src.name
    edited.parent.mkdir(exist_ok=True)
    shutil.copy2(src, edited)
    mask = write_mask(src.parent / "m.png", ellipse_mask(*(size or (256, 256))))
    return (["blend", "-i", src, "--edited", edited, "--mask", mask, "--device", "cpu", "-o", out],
            {f"{src.stem}.png": size})


def _mask(src: Path, out: Path, size):
    return ["mask", "-i", src, "-o", out], {f"{src.stem}_mask.png": size, f"{src.stem}_overlay.png": size}


def _synth(src: Path, out: Path, size):
    return ["synth", "-i", src, "--resolution", 64, "--attributes", "smile", "-o", out], {}


BUILD = {"edit": _edit, "clean_fused": _clean("fused"), "clean_poisson": _clean("poisson"), "blend": _blend,
         "mask": _mask, "synth": _synth}
VERB = {"edit": "edit", "clean_fused": "clean", "clean_poisson": "clean", "blend": "blend", "mask": "mask",
        "synth": "synth"}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", list(PHOTOS))
def test_photo_through_command(bad, tmp_path, capsys, name, command):
    require_verb(VERB[command])
    want = expected(command, name)
    shared = bad / name
    before_shared = fingerprint(shared)
    src = tmp_path / "in" / name
    src.parent.mkdir()
    shutil.copy2(shared, src)
    before = fingerprint(src)
    size = displayed_size(shared) if want is None else None
    out = tmp_path / "out"
    args, outputs = BUILD[command](src, out, size)

    code, text = cli(capsys, *args)

    if want is None:
        assert code == 0, text
        for fname, wh in outputs.items():
            assert (out / fname).is_file(), f"{fname} missing; got {sorted(p.name for p in out.iterdir())}"
            assert image_size(out / fname) == wh
        if command == "synth":
            _check_synth_item(out, name)
        else:
            _check_values(command, src, out, outputs)
    else:
        assert code != 0
        assert name in text and want in text, text
        if out.exists():  # nothing written for the failed file
            assert not [p for p in out.rglob("*.png") if p.name.startswith(Path(name).stem)], list(out.rglob("*"))
        if command == "synth":
            assert name in (out / "skipped.jsonl").read_text(encoding="utf-8")
    if out.exists():
        assert leftovers(out) == []
    assert fingerprint(src) == before
    assert fingerprint(shared) == before_shared


def _check_values(command: str, src: Path, out: Path, outputs: dict) -> None:
    """The outputs are right, not just the right size: what each command must give for F == I."""
    original = to_uint8(read_image(src))
    fname = next(iter(outputs))
    got = to_uint8(read_image(out / fname))
    if command == "clean_fused":  # the no-op baseline returns F itself
        np.testing.assert_array_equal(got, original)
    elif command in ("clean_poisson", "blend"):  # cloning I into itself gives I back
        diff = np.abs(got.astype(int) - original.astype(int))
        assert diff.max() <= 2 and diff.mean() < 0.5
    elif command == "mask":  # a face region, inside the image, not everything
        m = read_mask(out / fname)
        assert 0.02 < m.mean() < 0.8
        if src.name == "two_faces.png":  # one face (the largest), not both
            half = m.shape[1] // 2
            assert min(m[:, :half].sum(), m[:, half:].sum()) < 0.02 * m.sum()


def _check_synth_item(out: Path, name: str) -> None:
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == 1 and Path(records[0]["source"]).name == name
    item = out / "items" / records[0]["id"]
    for f in ("original", "inverted", "edited", "mask", "fused", "face_mask", "target"):
        assert image_size(item / f"{f}.png") == (64, 64)


# --------------------------------------------------------------------------------------------
# reading: formats, bit depths, orientation, the decompression-bomb guard
# --------------------------------------------------------------------------------------------

def test_formats_and_modes_read_as_the_same_upright_rgb_face(bad):
    ref = read_image(bad / REF)
    rgba = read_image(bad / "rgba.png")
    np.testing.assert_array_equal(rgba, ref)  # alpha dropped, colour kept as stored
    np.testing.assert_array_equal(read_image(bad / "rgb_16bit.png"), ref)  # v * 257 / 65535 == v / 255
    for name in ("cmyk.jpg", "exif_rotated.jpg", "format.webp", "format.tiff", "palette.png", "лицо 1.png"):
        img = read_image(bad / name)
        assert img.shape == ref.shape and img.dtype == np.float32
        assert np.abs(img - ref).mean() < 0.015, name
    stored = np.asarray(Image.open(bad / "exif_rotated.jpg").convert("RGB"), np.float32) / 255
    assert np.abs(stored - ref).mean() > 0.1  # the pixels are stored rotated: the EXIF tag was applied
    gray = read_image(bad / "gray_8bit.png")
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 0], gray[..., 2])
    luma = cv2.cvtColor(to_uint8(ref), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    assert np.abs(gray[..., 0] - luma).mean() < 0.02


def test_16bit_gray_keeps_full_precision(bad):
    raw = cv2.imread(str(bad / "gray_16bit.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    img = read_image(bad / "gray_16bit.png")
    np.testing.assert_array_equal(img[..., 0], raw.astype(np.float32) / 65535)  # not clipped, not / 256
    assert np.unique(img).size > 256  # finer than 8 bits


@pytest.mark.parametrize("mode", ["F", "I"])
def test_32bit_tiff_is_refused_not_misread(tmp_path, capsys, mode):
    """Beyond the 27: float / 32-bit integer samples have no fixed white level (they read as black or > 1)."""
    values = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    path = tmp_path / "deep.tiff"
    Image.fromarray(values if mode == "F" else (values * 1e6).astype(np.int32), mode=mode).save(path)
    with pytest.raises(ImageReadError, match=r"deep\.tiff: .*32-bit.* not supported"):
        read_image(path)
    code, text = cli(capsys, "clean", "-i", path, "--fused", path, "--method", "fused", "-o", tmp_path / "out")
    assert code == 1 and "deep.tiff" in text and "16-bit PNG" in text


def test_bomb_is_refused_before_decoding(bad, monkeypatch):
    def decode(*_a, **_k):
        raise AssertionError("decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)
    monkeypatch.setattr(cv2, "imdecode", decode)
    monkeypatch.delenv("BLENDFIX_MAX_PIXELS", raising=False)
    with pytest.raises(ImageReadError) as ei:
        read_image(bad / "bomb.png")
    msg = str(ei.value)
    assert "bomb.png" in msg and "16000x16000" in msg and str(64 * 1024 * 1024) in msg
    assert "BLENDFIX_MAX_PIXELS=256000000" in msg  # how to raise it
    monkeypatch.setenv("BLENDFIX_MAX_PIXELS", "256000000")  # raised: the guard lets it through to decoding
    with pytest.raises(AssertionError, match="decoded"):
        read_image(bad / "bomb.png")


# --------------------------------------------------------------------------------------------
# masks through blend (CLI and API) and through clean --edited --mask
# --------------------------------------------------------------------------------------------

@pytest.fixture()
def pair_dir(bad, tmp_path):
    """original I (the face) and edited T (a smooth colour field), 256x256, copied to tmp_path."""
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy2(bad / REF, d / "face.bmp")
    shutil.copy2(bad / "no_face.png", d / "edited.png")
    return d


@pytest.mark.parametrize("backend", ["torch", "opencv"])
@pytest.mark.parametrize("mask_name", MASKS)
def test_masks_through_blend(bad, pair_dir, tmp_path, capsys, mask_name, backend):
    mask = tmp_path / "masks" / mask_name
    mask.parent.mkdir()
    shutil.copy2(bad / mask_name, mask)
    before = fingerprint(mask)
    out = tmp_path / "out"
    code, text = cli(capsys, "blend", "-i", pair_dir / "face.bmp", "--edited", pair_dir / "edited.png",
                     "--mask", mask, "--backend", backend, "--device", "cpu", "-o", out)
    original, edited = to_uint8(read_image(pair_dir / "face.bmp")), to_uint8(read_image(pair_dir / "edited.png"))
    if mask_name == "mask_wrong_size.png":
        assert code == 1 and mask_name in text and "128x128" in text and "256x256" in text
        assert not (out / "face.png").exists()
    else:
        assert code == 0, text
        got = to_uint8(read_image(out / "face.png"))
        m = read_mask(mask)
        if mask_name == "mask_all_zero.png":  # defined no-op, with a warning naming the mask
            np.testing.assert_array_equal(got, original)
            assert "warning" in text and mask_name in text and "empty" in text
        else:
            lap = [cv2.Laplacian(a.astype(np.float32), cv2.CV_32F)[2:-2, 2:-2] for a in (got, edited, original)]
            inside = cv2.erode((m > 0.9).astype(np.uint8), np.ones((5, 5), np.uint8))[2:-2, 2:-2] > 0
            assert inside.mean() > 0.01
            # where the mask is full the edit's gradients were cloned, not the original's
            assert np.abs(lap[0] - lap[1])[inside].mean() < 0.25 * np.abs(lap[2] - lap[1])[inside].mean()
            x, y, w, h = cv2.boundingRect((m > 0).astype(np.uint8))
            away = np.ones(m.shape, bool)
            away[max(y - 1, 0):y + h + 1, max(x - 1, 0):x + w + 1] = False
            if mask_name != "mask_all_one.png":  # beyond the mask's box the original is untouched
                assert away.mean() > 0.05
                np.testing.assert_array_equal(got[away], original[away])
        if mask_name == "mask_3ch.png":  # the same as its one-channel version
            gray = write_mask(tmp_path / "gray.png", m)
            code, _ = cli(capsys, "blend", "-i", pair_dir / "face.bmp", "--edited", pair_dir / "edited.png",
                          "--mask", gray, "--backend", backend, "--device", "cpu", "-o", tmp_path / "out1")
            np.testing.assert_array_equal(got, to_uint8(read_image(tmp_path / "out1" / "face.png")))
        assert leftovers(out) == []
    assert fingerprint(mask) == before


def test_mask_reading_conventions(bad):
    soft = read_mask(bad / "mask_soft.png")
    raw = np.asarray(Image.open(bad / "mask_soft.png"))
    np.testing.assert_allclose(soft, raw.astype(np.float32) / 255, atol=1e-6)  # weights v / 255
    assert 0 < soft.mean() < 1 and np.unique(soft).size > 2
    three = read_mask(bad / "mask_3ch.png")
    assert three.shape == (256, 256) and set(np.unique(three)) <= {0.0, 1.0}
    assert read_mask(bad / "mask_all_one.png").min() == 1.0 and read_mask(bad / "mask_all_zero.png").max() == 0.0
    with pytest.raises(SizeMismatchError, match=r"mask_wrong_size\.png.*128x128.*256x256"):
        read_mask(bad / "mask_wrong_size.png", size=(256, 256))


def test_masks_through_the_seamless_api(bad):
    dst, src = to_uint8(read_image(bad / REF)), to_uint8(read_image(bad / "no_face.png"))
    empty = to_uint8(read_mask(bad / "mask_all_zero.png"))
    with pytest.warns(UserWarning, match="empty"):
        np.testing.assert_array_equal(seamless_clone(src, dst, empty), dst)
    full = to_uint8(read_mask(bad / "mask_all_one.png"))
    a, b = seamless_clone(src, dst, full), seamless_clone(src, dst, full, backend="opencv")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2  # OpenCV agrees on a border-touching mask
    soft = to_uint8(read_mask(bad / "mask_soft.png"))
    c, d = seamless_clone(src, dst, soft), seamless_clone(src, dst, soft, backend="opencv")
    assert np.abs(c.astype(int) - d.astype(int)).max() <= 2  # soft weights read the same way by both
    with pytest.raises(ValueError, match="mask 128x128 does not match the images 256x256"):
        seamless_clone(src, dst, to_uint8(read_mask(bad / "mask_wrong_size.png")))
    small = to_uint8(read_image(bad / PAIR[1]))
    with pytest.raises(ValueError, match="128x128 and dst 256x256"):
        seamless_clone(small, to_uint8(read_image(bad / PAIR[0])), full)


@pytest.mark.parametrize("mask_name", MASKS)
def test_masks_through_clean_edited(bad, pair_dir, tmp_path, capsys, mask_name):
    """clean --edited T --mask M --method fused gives F = T*M + I*(1-M) for each mask."""
    out = tmp_path / "out"
    code, text = cli(capsys, "clean", "-i", pair_dir / "face.bmp", "--edited", pair_dir / "edited.png",
                     "--mask", bad / mask_name, "--method", "fused", "--device", "cpu", "-o", out)
    if mask_name == "mask_wrong_size.png":
        assert code == 1 and mask_name in text and "128x128" in text and "256x256" in text
        assert not (out / "face.png").exists()
        return
    assert code == 0, text
    original, edited = read_image(pair_dir / "face.bmp"), read_image(pair_dir / "edited.png")
    want = to_uint8(fuse(edited, original, read_mask(bad / mask_name)))
    np.testing.assert_array_equal(to_uint8(read_image(out / "face.png")), want)
    if mask_name == "mask_all_zero.png":
        np.testing.assert_array_equal(want, to_uint8(original))
        assert "warning" in text and "empty" in text
    assert leftovers(out) == []


# --------------------------------------------------------------------------------------------
# the mismatched pair, odd sizes through the API, a corrupt output in evaluate, folder mode
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["blend", "clean_fused", "clean_poisson"])
def test_mismatched_pair_names_both_sizes(bad, tmp_path, capsys, command):
    original, fused = bad / PAIR[0], bad / PAIR[1]
    out = tmp_path / "out"
    if command == "blend":
        mask = write_mask(tmp_path / "m.png", ellipse_mask(256, 256))
        args = ["blend", "-i", original, "--edited", fused, "--mask", mask, "--device", "cpu", "-o", out]
    else:
        args = ["clean", "-i", original, "--fused", fused, "--method", command.split("_")[1], "--device", "cpu",
                "-o", out]
    code, text = cli(capsys, *args)
    assert code == 1
    assert PAIR[0] in text and PAIR[1] in text and "256x256" in text and "128x128" in text, text
    assert not out.exists() or not list(out.glob("*.png"))


def test_mismatch_and_odd_size_through_the_clean_api(bad):
    original, fused = read_image(bad / PAIR[0]), read_image(bad / PAIR[1])
    with pytest.raises(SizeMismatchError, match=r"256x256.*128x128"):
        clean(original, fused, method="fused", device="cpu")
    odd = read_image(bad / "odd_513x511.png")
    assert odd.shape == (511, 513, 3)
    assert clean(odd, odd, method="fused", device="cpu").shape == (511, 513, 3)
    # the network pads to a square multiple of 32 and crops back, whole or in tiles
    torch.manual_seed(0)
    net = torch.nn.Conv2d(6, 3, 3, padding=1)
    whole = clean(odd, odd, network=net, device="cpu")
    tiles = clean(odd, odd, network=net, device="cpu", tile=256, overlap=64)
    assert whole.shape == tiles.shape == (511, 513, 3)
    np.testing.assert_allclose(tiles, whole, atol=1e-5)  # a 3x3 net: tiling leaves no seam


def test_evaluate_lists_a_corrupt_output_and_reports_the_rest(bad, tmp_path, capsys):
    originals, outputs = tmp_path / "orig", tmp_path / "method"
    originals.mkdir()
    outputs.mkdir()
    for stem, src in (("a", REF), ("b", "rgba.png")):
        shutil.copy2(bad / src, originals / f"{stem}.png")
    shutil.copy2(bad / "truncated.png", outputs / "a.png")  # a half-written output of some other tool
    shutil.copy2(bad / "palette.png", outputs / "b.png")
    shutil.copy2(bad / "mismatch_original.png", originals / "c.png")
    shutil.copy2(bad / "mismatch_fused.png", outputs / "c.png")
    before = fingerprint(outputs / "a.png")
    report = tmp_path / "report"
    code, text = cli(capsys, "evaluate", "--originals", originals, "--method", f"x={outputs}", "-o", report,
                     "--no-lpips", "--no-fid", "--device", "cpu")
    assert code == 1
    assert str(outputs / "a.png") in text and "corrupt or truncated" in text
    assert str(outputs / "c.png") in text and "128x128" in text and "256x256" in text
    rows = (report / "per_image.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2 and rows[1].startswith("b,")  # the readable file is still measured
    assert leftovers(report) == []
    assert fingerprint(outputs / "a.png") == before


@pytest.mark.parametrize("command", ["edit", "mask", "clean_poisson"])
def test_folder_mode_skips_and_lists_bad_files(bad, tmp_path, capsys, command):
    require_verb(VERB[command])
    folder = tmp_path / "in"
    folder.mkdir()
    for name in (REF, "no_face.png", "truncated.png"):
        shutil.copy2(bad / name, folder / name)
    out = tmp_path / "out"
    args = {"edit": ["edit", "-i", folder, "-a", "smile", "--resolution", 128, "-o", out],
            "mask": ["mask", "-i", folder, "-o", out],
            "clean_poisson": ["clean", "-i", folder, "--fused", folder, "--method", "poisson", "--batch-size", 4,
                              "--device", "cpu", "-o", out]}[command]
    code, text = cli(capsys, *args)
    assert code == 1
    assert "2 file(s) failed" in text and "no face found" in text and "corrupt or truncated" in text
    assert "no_face.png" in text and "truncated.png" in text
    made = sorted(p.name for p in out.glob("*.png"))
    assert made and all(n.startswith("format") for n in made)  # the good photo was done, only it
    assert leftovers(out) == []


def test_outputs_get_ordinary_permissions(bad, tmp_path):
    """Atomic writes go through a private temporary file; the output still gets 0666 less the umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    path = write_image(tmp_path / "x.png", read_image(bad / REF))
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


def test_synth_item_id_keeps_a_unicode_name(bad, tmp_path, capsys):
    require_verb("synth")
    code, text = cli(capsys, "synth", "-i", bad / "лицо 1.png", "--resolution", 64, "--attributes", "smile",
                     "-o", tmp_path / "out")
    assert code == 0, text
    (item,) = (tmp_path / "out" / "items").iterdir()
    assert item.name.startswith("лицо")


@pytest.mark.parametrize("command", ["blend", "clean"])
def test_output_folder_holding_the_inputs_never_overwrites_them(bad, tmp_path, capsys, command):
    """`-o` = the input folder: outputs named after the originals would replace them; refused up front."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy2(bad / "лицо 1.png", folder / "лицо 1.png")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy2(bad / "no_face.png", other / "лицо 1.png")
    before = fingerprint(folder / "лицо 1.png")
    if command == "blend":
        mask = write_mask(tmp_path / "m.png", ellipse_mask(256, 256))
        args = ["blend", "-i", folder, "--edited", other, "--mask", mask, "--device", "cpu", "-o", folder]
    else:
        args = ["clean", "-i", folder, "--fused", other, "--method", "fused", "--device", "cpu", "-o", folder]
    code, text = cli(capsys, *args)
    assert code == 1 and "лицо 1.png" in text and "overwrite" in text and "-o" in text
    assert fingerprint(folder / "лицо 1.png") == before
    assert sorted(p.name for p in folder.iterdir()) == ["лицо 1.png"]


@pytest.mark.parametrize("command", ["edit", "clean_fused", "blend", "mask"])
def test_an_output_path_that_is_a_file_is_a_clear_error(bad, tmp_path, capsys, command):
    require_verb(VERB[command])
    src = tmp_path / "in" / REF
    src.parent.mkdir()
    shutil.copy2(bad / REF, src)
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    args, _ = BUILD[command](src, taken / "sub" if command == "mask" else taken, displayed_size(src))
    code, text = cli(capsys, *args)
    assert code != 0 and str(taken) in text
    assert taken.read_text() == "not a folder"


@pytest.mark.parametrize("command", ["blend", "clean"])
@pytest.mark.parametrize("where", ["originals", "others"])
def test_two_files_sharing_a_stem_are_refused_not_overwritten(bad, tmp_path, capsys, command, where):
    """`a.png` and `a.jpg`: as originals both would write out/a.png; as partners which one pairs is unclear."""
    orig, other = tmp_path / "orig", tmp_path / "other"
    for d in (orig, other):
        d.mkdir()
        shutil.copy2(bad / REF, d / "a.png")
    shutil.copy2(bad / "exif_rotated.jpg", (orig if where == "originals" else other) / "a.jpg")
    out = tmp_path / "out"
    if command == "blend":
        mask = write_mask(tmp_path / "m.png", ellipse_mask(256, 256))
        args = ["blend", "-i", orig, "--edited", other, "--mask", mask, "--device", "cpu", "-o", out]
    else:
        args = ["clean", "-i", orig, "--fused", other, "--method", "fused", "--device", "cpu", "-o", out]
    code, text = cli(capsys, *args)
    assert code == 1 and "a.png" in text and ("same output" in text or "share the name stem" in text), text
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.parametrize("command", ["edit", "mask"])
def test_writing_into_the_photo_folder_is_refused_so_a_rerun_cannot_read_its_own_outputs(bad, tmp_path, capsys,
                                                                                         command):
    """Outputs beside the photos would be photos of the next run ("лицо 1_fused.png" edited again)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy2(bad / "лицо 1.png", folder / "лицо 1.png")
    args = {"edit": ["edit", "-i", folder, "-a", "smile", "--resolution", 64, "-o", folder],
            "mask": ["mask", "-i", folder, "-o", folder]}[command]
    code, text = cli(capsys, *args)
    assert code == 1 and str(folder) in text and "outside" in text and "-o" in text, text
    assert sorted(p.name for p in folder.iterdir()) == ["лицо 1.png"]
    shutil.copy2(bad / "лицо 1.png", folder / "лицо 1_fused.png")  # an earlier version's output, say
    code, text = cli(capsys, *args)
    assert code == 1 and (command == "mask" or "overwrite" in text), text
    assert sorted(p.name for p in folder.iterdir()) == ["лицо 1.png", "лицо 1_fused.png"]
