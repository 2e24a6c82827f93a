"""bf16 on a CPU: the attention layers stay float32 under autocast, `--precision auto` picks bf16 only
for the cleaner on an AMX CPU, and the shipped cleaner's bf16 output is the fp32 one to within 8-bit
rounding on real test photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from blendfix.cleaning import DEFAULT_WEIGHTS, CleanConfig, Cleaner, clean
from blendfix.cli import main
from blendfix.device import resolve_precision
from blendfix.io import read_image, write_image
from blendfix.nets.maresunet import CAM, PAM, MAResUNet

TINY = {"widths": (16, 16, 16, 32), "blocks": (1, 1, 1, 1), "head_width": 8}


def _near_cancelling_pam(channels: int = 16) -> PAM:
    """A PAM whose normalised q and k give 1 + q.k = 0.005 at every position: its denominator
    N + q.sum(k) is 0.5 % of N, below bf16's resolution at N (1/256)."""
    pam = PAM(channels).eval()
    with torch.no_grad():
        for conv in (pam.query_conv, pam.key_conv, pam.value_conv):
            conv.weight.zero_()
        pam.query_conv.bias.zero_()
        pam.query_conv.bias[0] = 1.0
        pam.key_conv.bias.zero_()
        pam.key_conv.bias[0], pam.key_conv.bias[1] = -1.0, 0.1
        pam.value_conv.bias.fill_(0.5)
        pam.gamma.fill_(1.0)
    return pam


def test_attention_layers_compute_in_float32_under_bf16_autocast():
    x = torch.rand(1, 16, 64, 64)
    for layer in (_near_cancelling_pam(), CAM()):
        if isinstance(layer, CAM):
            with torch.no_grad():
                layer.gamma.fill_(1.0)
        with torch.no_grad():
            want = layer(x)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                got = layer(x)
        assert got.dtype == torch.float32 and torch.isfinite(got).all()
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_auto_precision_is_bf16_only_for_the_cleaner_on_an_amx_cpu(monkeypatch):
    import blendfix.device

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for amx, cleaner, want in ((True, True, torch.bfloat16), (True, False, torch.float32),
                               (False, True, torch.float32)):
        monkeypatch.setattr(blendfix.device, "cpu_bf16_native", lambda amx=amx: amx)
        assert resolve_precision("auto", cpu, cpu_bf16=cleaner) == want
        assert resolve_precision("fp32", cpu, cpu_bf16=cleaner) == torch.float32
        assert resolve_precision("auto", cuda, cpu_bf16=cleaner) == torch.float16


def _export(tmp_path) -> str:
    from blendfix.train.export import save_cleaner

    torch.manual_seed(0)
    return str(save_cleaner(MAResUNet(**TINY).eval(), tmp_path / "export").parent)


@pytest.mark.amx
def test_on_an_amx_cpu_weights_run_in_bf16_torch_unless_fp32_or_onnxruntime_is_asked(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path / "cache"))
    weights = _export(tmp_path)
    chosen = {}
    for name, cfg in {"auto": {}, "fp32": {"precision": "fp32"}, "ort": {"runtime": "onnxruntime"},
                      "torch": {"runtime": "torch"}}.items():
        c = Cleaner(CleanConfig(method="network", weights=weights, **cfg))
        chosen[name] = (c.runtime_name, c.dtype)
    assert chosen == {"auto": ("torch", torch.bfloat16), "fp32": ("onnxruntime", torch.float32),
                      "ort": ("onnxruntime", torch.float32), "torch": ("torch", torch.bfloat16)}
    module = Cleaner(CleanConfig(method="network"), network=MAResUNet(**TINY))  # a module: as given, fp32
    assert module.dtype == torch.float32


@pytest.mark.amx
def test_clean_cli_reports_bf16_and_its_output_matches_fp32(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path / "cache"))
    weights = _export(tmp_path)
    rng = np.random.default_rng(0)
    for d in ("orig", "fused"):
        (tmp_path / d).mkdir()
    base = rng.random((96, 80, 3)).astype(np.float32)
    write_image(tmp_path / "orig" / "a.png", base)
    write_image(tmp_path / "fused" / "a.png", np.clip(base + 0.2 * rng.random((96, 80, 3)), 0, 1))
    outs = {}
    for precision in ("auto", "fp32"):
        out = tmp_path / precision
        assert main(["clean", "-i", str(tmp_path / "orig"), "--fused", str(tmp_path / "fused"), "-o", str(out),
                     "--method", "network", "--weights", weights, "--precision", precision]) == 0
        info = json.loads(next(out.rglob("*.json")).read_text())
        assert info["precision"] == {"auto": "bfloat16", "fp32": "float32"}[precision]
        outs[precision] = read_image(next(p for p in out.rglob("a.png")))
    assert np.abs(outs["auto"] - outs["fp32"]).max() <= 3 / 255


@pytest.mark.amx  # bf16 runs on any CPU (emulated and slow without AMX); amx: no slowness warning here
def test_shipped_cleaner_in_bf16_equals_fp32_to_8bit_rounding_on_test_photos(faces_dir):
    photos = sorted(p for p in faces_dir.glob("celebamask_hq_512/*.jpg"))[:2]
    assert photos, f"no celebamask_hq_* photos in {faces_dir}"
    for p in photos:
        orig = read_image(p)
        mask = np.zeros(orig.shape[:2], np.float32)
        h, w = mask.shape
        mask[h // 3: 2 * h // 3, w // 4: 3 * w // 4] = 1
        fused = np.where(mask[..., None] > 0, np.clip(orig * [1.1, 0.95, 0.9], 0, 1), orig).astype(np.float32)
        fp32 = clean(orig, fused, method="network", precision="fp32", runtime="torch")
        bf16 = clean(orig, fused, method="network", precision="bf16")
        psnr = 10 * np.log10(1 / np.mean((np.round(fp32 * 255) / 255 - np.round(bf16 * 255) / 255) ** 2))
        assert psnr >= 45, f"{p.name}: bf16 output only {psnr:.1f} dB from fp32"


def test_cpu_bf16_detection_can_be_forced_either_way(monkeypatch):
    from blendfix.device import CPU_BF16_ENV, cpu_bf16_native

    for value, want in (("1", True), ("0", False)):
        monkeypatch.setenv(CPU_BF16_ENV, value)
        assert cpu_bf16_native() is want
        assert resolve_precision("auto", torch.device("cpu"), cpu_bf16=True) == (torch.bfloat16 if want
                                                                                  else torch.float32)


def test_folded_network_computes_the_same_and_leaves_the_original_trainable():
    torch.manual_seed(0)
    net = MAResUNet(**TINY)
    with torch.no_grad():  # BatchNorm statistics and attention away from their initial identity
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.uniform_(-0.3, 0.3)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
        for name, p in net.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.5)
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fast = net.for_inference()
    x = torch.rand(2, 6, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(fast(x), net(x), rtol=1e-4, atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the original is untouched
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) > 0


def test_png_outputs_keep_every_pixel_and_are_compressed(tmp_path):
    from blendfix.io import write_mask

    yy, xx = np.mgrid[0:300, 0:200] / 300
    img = np.stack([yy, xx, (yy + xx) / 2], -1).astype(np.float32)  # smooth: compresses well
    path = write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(path), np.round(img * 255) / 255)
    assert path.stat().st_size < 0.5 * img.size  # compressed, not stored
    m = write_mask(tmp_path / "m.png", yy.astype(np.float32))
    assert np.array_equal(read_image(m)[..., 0], (np.round(yy * 255) / 255).astype(np.float32))


def test_python_api_clean_tiles_large_images_exactly_like_the_cleaner():
    from blendfix.cleaner_weights import load_cleaner
    from blendfix.registry import checkpoint_path

    net = load_cleaner(checkpoint_path(DEFAULT_WEIGHTS))  # real weights: the output depends on its context
    rng = np.random.default_rng(0)
    orig = rng.random((1, 3, 300, 200), dtype=np.float32)
    fused = np.clip(orig + rng.normal(0, 0.1, orig.shape).astype(np.float32), 0, 1)
    with torch.no_grad():
        api = net.clean(torch.from_numpy(orig), torch.from_numpy(fused), tile=128, overlap=32)
        whole = net.clean(torch.from_numpy(orig), torch.from_numpy(fused), tile=4096)
    cli = Cleaner(CleanConfig(method="network", precision="fp32", runtime="torch", tile=128, overlap=32),
                  network=net)([orig[0].transpose(1, 2, 0)], [fused[0].transpose(1, 2, 0)])[0]
    assert api.shape == (1, 3, 300, 200)
    np.testing.assert_allclose(api[0].numpy().transpose(1, 2, 0), cli, atol=1e-5)
    assert (api - whole).abs().max() > 1e-3  # tiled for real: the tiles see less context than the whole


def test_to_uint8_rounds_half_to_even_and_saturates_like_numpy():
    from blendfix.io import to_uint8

    rng = np.random.default_rng(3)
    for shape in ((37, 41), (37, 41, 3), (5, 7, 1)):
        a = rng.uniform(-0.2, 1.2, shape).astype(np.float32)
        a.flat[:6] = np.array([0.5, 1.5, 2.5, 253.5, 254.5, 255.5], np.float32) / 255  # ties
        want = np.clip(np.rint(a * np.float32(255.0)), 0, 255).astype(np.uint8)
        assert np.array_equal(to_uint8(a), want), shape


@pytest.mark.amx
def test_bf16_default_tiles_and_pads_odd_sizes_like_fp32():
    rng = np.random.default_rng(5)
    orig = rng.random((300, 203, 3), dtype=np.float32)
    fused = np.clip(orig + rng.normal(0, 0.05, orig.shape).astype(np.float32), 0, 1)
    for tile in (128, 1024):  # tiled with per-tile padding, and padded whole
        auto = Cleaner(CleanConfig(method="network", tile=tile, overlap=32))
        fp32 = Cleaner(CleanConfig(method="network", tile=tile, overlap=32, precision="fp32", runtime="torch"))
        assert auto.dtype == torch.bfloat16 and auto.runtime_name == "torch"
        a, b = auto([orig], [fused])[0], fp32([orig], [fused])[0]
        assert a.shape == b.shape == orig.shape and a.dtype == np.float32
        assert np.abs(a - b).max() <= 4 / 255 and np.abs(a - b).mean() < 0.5 / 255


def test_bf16_asked_for_on_a_cpu_without_amx_warns_that_it_is_slow():
    with pytest.warns(UserWarning, match="emulated"):
        Cleaner(CleanConfig(method="network", precision="bf16"))
    import warnings as w

    with w.catch_warnings():
        w.simplefilter("error")
        Cleaner(CleanConfig(method="network", precision="fp32", runtime="torch"))  # no warning for fp32


@pytest.mark.amx
def test_bf16_on_an_amx_cpu_does_not_warn():
    import warnings as w

    with w.catch_warnings():
        w.simplefilter("error")
        assert Cleaner(CleanConfig(method="network", precision="bf16")).dtype == torch.bfloat16
