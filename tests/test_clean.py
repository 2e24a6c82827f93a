"""`blendfix.clean` and `blendfix clean`: pairing, sizes, methods, tiling, runtime facts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from blendfix.cleaning import CleanConfig, Cleaner, clean
from blendfix.cli import main
from blendfix.errors import SizeMismatchError
from blendfix.io import read_image, write_image, write_mask


class ToyCleaner(torch.nn.Module):
    """A local conv net with MAResU-Net's interface: [F, I] in [-1, 1] -> image in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Sequential(torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(8, 3, 3, padding=1))
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return torch.tanh(self.conv(x))


def _pair(h=70, w=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((h, w, 3), dtype=np.float32), rng.random((h, w, 3), dtype=np.float32)


def test_network_output_keeps_any_size_and_feeds_square_multiples_of_32():
    net = ToyCleaner()
    orig, fused = _pair(70, 50)
    out = clean(orig, fused, network=net, device="cpu")
    assert out.shape == (70, 50, 3) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    assert net.seen == [(1, 6, 96, 96)]


def test_network_sees_fused_first_then_original_in_minus_one_to_one():
    class Probe(torch.nn.Module):
        def forward(self, x):
            self.x = x
            return x[:, :3]  # returns F: so the output must equal the fused image

    orig, fused = _pair(64, 64)
    out = clean(orig, fused, network=Probe(), device="cpu")
    assert np.abs(out - fused).max() < 1e-6


def test_tiled_network_matches_untiled_for_local_net():
    orig, fused = _pair(200, 180, seed=1)
    whole = clean(orig, fused, network=ToyCleaner(), device="cpu", tile=1024)
    tiles = clean(orig, fused, network=ToyCleaner(), device="cpu", tile=96, overlap=32)
    assert np.abs(whole - tiles).max() < 1e-5


def test_batches_group_sizes_and_match_single_runs():
    net = ToyCleaner()
    pairs = [_pair(64, 64, 0), _pair(40, 72, 1), _pair(64, 64, 2)]
    c = Cleaner(CleanConfig(device="cpu", batch_size=4), network=net)
    outs = c([p[0] for p in pairs], [p[1] for p in pairs])
    singles = [clean(o, f, network=ToyCleaner(), device="cpu") for o, f in pairs]
    for a, b in zip(outs, singles, strict=True):
        assert np.abs(a - b).max() < 1e-5
    assert c.runtime()["images"] == 3 and c.runtime()["parameters"] > 0


def test_fused_baseline_and_fusing_from_edited_and_mask():
    orig, edited = _pair(48, 48)
    mask = np.zeros((48, 48), np.float32)
    mask[10:30, 10:30] = 1
    out = clean(orig, edited=edited, mask=mask, method="fused", device="cpu")
    assert np.allclose(out[mask == 0], orig[mask == 0]) and np.allclose(out[mask == 1], edited[mask == 1])


def test_mismatched_sizes_and_fp16_on_cpu_are_refused():
    orig, _ = _pair(64, 64)
    _, fused = _pair(32, 64)
    with pytest.raises(SizeMismatchError, match="64x64"):
        clean(orig, fused, method="fused", device="cpu")
    with pytest.raises(ValueError, match="fp16"):
        clean(orig, orig, method="fused", device="cpu", precision="fp16")


def test_cli_folder_mode_writes_named_outputs_runtime_and_lists_failures(tmp_path):
    (tmp_path / "orig").mkdir()
    (tmp_path / "fused").mkdir()
    for i in range(3):
        o, f = _pair(64, 64, i)
        write_image(tmp_path / "orig" / f"face{i}.png", o)
        write_image(tmp_path / "fused" / f"face{i}.png", f)
    (tmp_path / "fused" / "face2.png").write_bytes(b"broken")
    code = main(["clean", "-i", str(tmp_path / "orig"), "--fused", str(tmp_path / "fused"),
                 "-o", str(tmp_path / "out"), "--method", "fused", "--device", "cpu"])
    assert code == 1  # one pair failed
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != ".lock") == ["face0.png", "face1.png",
                                                                                      "runtime.json"]
    rt = json.loads((tmp_path / "out" / "runtime.json").read_text())
    assert rt["method"] == "fused" and rt["images"] == 2
    assert np.abs(read_image(tmp_path / "out" / "face0.png") - read_image(tmp_path / "fused" / "face0.png")).max() == 0


def test_cli_edited_and_mask_mode(tmp_path):
    o, e = _pair(64, 64)
    m = np.zeros((64, 64), np.float32)
    write_image(tmp_path / "o.png", o)
    write_image(tmp_path / "e.png", e)
    write_mask(tmp_path / "m.png", m)
    for d in ("O", "E", "M"):
        (tmp_path / d).mkdir()
    (tmp_path / "o.png").rename(tmp_path / "O" / "x.png")
    (tmp_path / "e.png").rename(tmp_path / "E" / "x.png")
    (tmp_path / "m.png").rename(tmp_path / "M" / "x.png")
    code = main(["clean", "-i", str(tmp_path / "O"), "--edited", str(tmp_path / "E"), "--mask", str(tmp_path / "M"),
                 "-o", str(tmp_path / "out"), "--method", "fused", "--device", "cpu"])
    assert code == 0
    assert np.abs(read_image(tmp_path / "out" / "x.png") - read_image(tmp_path / "O" / "x.png")).max() == 0


def test_package_level_api_returns_an_array():
    import blendfix

    orig, fused = _pair(40, 40)
    out = blendfix.clean(orig, fused, method="fused", device="cpu")
    assert isinstance(out, np.ndarray) and out.shape == (40, 40, 3) and np.array_equal(out, fused)


def test_cli_poisson_takes_each_files_attribute_from_a_manifest(faces_dir, tmp_path):
    src = sorted((faces_dir / "hfgi_celeba_hq_256").iterdir())[:2]
    if len(src) < 2:
        pytest.skip("needs two faces in hfgi_celeba_hq_256")
    (tmp_path / "o").mkdir()
    (tmp_path / "f").mkdir()
    attrs = {"a": "beard", "b": "smile"}
    for stem, path in zip(attrs, src, strict=True):
        img = read_image(path)
        write_image(tmp_path / "o" / f"{stem}.png", img)
        fused = img.copy()
        fused[128:, :] = np.clip(fused[128:, :] * 0.8 + 0.1, 0, 1)  # a lower-face edit with a hard step
        write_image(tmp_path / "f" / f"{stem}.png", fused)
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"id": s, "attribute": a}) + "\n" for s, a in attrs.items()))
    base = ["clean", "-i", str(tmp_path / "o"), "--fused", str(tmp_path / "f"), "--method", "poisson",
            "--device", "cpu"]
    assert main(base + ["-o", str(tmp_path / "mixed"), "--attributes-from", str(manifest)]) == 0
    for attr in ("beard", "smile"):
        assert main(base + ["-o", str(tmp_path / attr), "--attribute", attr]) == 0
    for stem, attr in attrs.items():
        mixed = read_image(tmp_path / "mixed" / f"{stem}.png")
        assert np.array_equal(mixed, read_image(tmp_path / attr / f"{stem}.png"))  # its own rule was used
    other = {"beard": "smile", "smile": "beard"}
    assert any(not np.array_equal(read_image(tmp_path / "mixed" / f"{s}.png"),
                                  read_image(tmp_path / other[a] / f"{s}.png")) for s, a in attrs.items())
