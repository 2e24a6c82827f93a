"""The CPU runtime: onnxruntime vs PyTorch on the released network's fixture and on tiled images, the
graph cache, .onnx weights (never unpickled), runtime choice, and the CLI's --runtime/--threads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from blendfix.cleaning import CleanConfig, Cleaner, clean  # noqa: E402
from blendfix.cli import main  # noqa: E402
from blendfix.errors import BlendfixError  # noqa: E402
from blendfix.io import read_image, write_image  # noqa: E402
from blendfix.nets.maresunet import MAResUNet  # noqa: E402
from blendfix.runtime import OrtNetwork, resolve_runtime  # noqa: E402

TINY = {"widths": [16, 16, 16, 32], "blocks": [1, 1, 1, 1], "head_width": 8}


def _tiny(seed: int = 0) -> MAResUNet:
    torch.manual_seed(seed)
    net = MAResUNet(**{k: tuple(v) if isinstance(v, list) else v for k, v in TINY.items()}).eval()
    with torch.no_grad():  # attention on (gammas start at 0) and BN statistics off the identity
        for name, p in net.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.7)
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.uniform_(-0.1, 0.1)
    return net


def _export_folder(net: MAResUNet, folder) -> str:
    """A `blendfix export`-style folder: cleaner.safetensors + cleaner.json."""
    from blendfix.train.export import save_cleaner

    return str(save_cleaner(net, folder).parent)


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    d = tmp_path / "weights"
    d.mkdir()
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(d))
    return d


@pytest.fixture(scope="module")
def released(fixture, tmp_path_factory):
    """The MAResU-Net fixture's weights as the registered released file, and the fixture itself."""
    fx = fixture("maresunet")
    d = tmp_path_factory.mktemp("released")
    state = {k: v.reshape(()) if k.endswith("num_batches_tracked") else v  # 0-d, as torch saves them
             for k, v in fx.state_dict().items()}
    torch.save(state, d / "iter_200000")
    return d, fx


def _pair_from(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[F, I] in [-1, 1] (6, H, W) -> original, fused images (H, W, 3) in [0, 1]."""
    img = ((x + 1) / 2).transpose(1, 2, 0).astype(np.float32)
    return np.ascontiguousarray(img[..., 3:]), np.ascontiguousarray(img[..., :3])


def test_released_network_in_onnxruntime_reproduces_the_fixture_and_pytorch(released, monkeypatch):
    d, fx = released
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(d))
    released_name = "maresunet-diffcampp"  # the paper's registered release, found in BLENDFIX_WEIGHTS
    ort_cleaner = Cleaner(CleanConfig(method="network", weights=released_name, threads=1))
    torch_cleaner = Cleaner(CleanConfig(method="network", weights=released_name, runtime="torch"))
    assert ort_cleaner.runtime_name == "onnxruntime" and torch_cleaner.runtime_name == "torch"
    assert ort_cleaner.parameters == torch_cleaner.parameters == 26_285_115
    for x_key, out_key in (("x", "out"), ("x_batch2", "out_batch2")):
        x = torch.from_numpy(fx.inputs[x_key])
        got = ort_cleaner.net(x).numpy()
        with torch.no_grad():
            ref = torch_cleaner.net(x).numpy()
        assert got.shape == fx.outputs[out_key].shape
        np.testing.assert_allclose(got, fx.outputs[out_key], atol=2e-5, rtol=1e-4)  # the fixture's tolerance
        assert np.abs(got - ref).max() <= 1e-4
    # and through the images API: padding, [F, I] assembly and crop included
    orig, fused = _pair_from(fx.inputs["x"][0])
    a = ort_cleaner([orig[:250, :230]], [fused[:250, :230]])[0]
    b = torch_cleaner([orig[:250, :230]], [fused[:250, :230]])[0]
    assert a.shape == (250, 230, 3) and np.abs(a - b).max() <= 1e-4


@pytest.mark.parametrize(("h", "w", "tile"), [(513, 511, 256), (1500, 1000, 1024)])
def test_tiled_images_are_the_same_in_both_runtimes(weights_dir, tmp_path, h, w, tile):
    weights = _export_folder(_tiny(), tmp_path / "export")
    rng = np.random.default_rng(h)
    orig = rng.random((h, w, 3), dtype=np.float32)
    fused = np.clip(orig + 0.3 * (rng.random((h, w, 3), dtype=np.float32) - 0.5), 0, 1)
    outs = {rt: clean(orig, fused, method="network", weights=weights, runtime=rt, tile=tile, overlap=64, threads=1)
            for rt in ("onnxruntime", "torch")}
    a, b = outs["onnxruntime"], outs["torch"]
    assert a.shape == (h, w, 3)
    assert np.abs(a - b).max() <= 1e-4
    assert np.abs(a - fused).max() > 0.05  # the network did change the image
    # the written 8-bit images agree too (a value sitting exactly on a rounding edge may flip by one step)
    qa, qb = np.rint(a * 255).astype(int), np.rint(b * 255).astype(int)
    assert np.abs(qa - qb).max() <= 1 and (qa != qb).mean() < 1e-4


def test_graph_is_exported_once_per_weights_and_cached_atomically(weights_dir, tmp_path, monkeypatch):
    import blendfix.runtime as rt

    weights = _export_folder(_tiny(), tmp_path / "export")
    orig, fused = np.random.default_rng(0).random((2, 70, 90, 3), dtype=np.float32)
    first = clean(orig, fused, method="network", weights=weights, threads=1)
    cached = sorted((weights_dir / "onnx").iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".onnx"
    assert f"blendfix{rt.__version__}" in cached[0].name and not cached[0].name.startswith(".")

    def no_export(*a, **k):
        raise AssertionError("exported again although the graph is cached")

    monkeypatch.setattr(rt, "export_raw", no_export)
    again = clean(orig, fused, method="network", weights=weights, threads=1)
    assert np.array_equal(first, again)
    monkeypatch.undo()
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(weights_dir))
    _export_folder(_tiny(seed=1), tmp_path / "export")  # new weights in the same place: a new graph
    changed = clean(orig, fused, method="network", weights=weights, threads=1)
    assert len(list((weights_dir / "onnx").iterdir())) == 2 and not np.array_equal(first, changed)


def test_below_identity_export_warns_once_in_onnxruntime(weights_dir, tmp_path, recwarn):
    folder = tmp_path / "export"
    _export_folder(_tiny(), folder)
    meta = json.loads((folder / "cleaner.json").read_text())
    (folder / "cleaner.json").write_text(json.dumps({**meta, "below_identity": True}))
    for _ in range(2):  # the cache miss (export) and the cache hit both warn, once each
        recwarn.clear()
        Cleaner(CleanConfig(method="network", weights=str(folder), threads=1))
        assert len([w for w in recwarn if "below its own input" in str(w.message)]) == 1


def test_unwritable_cache_warns_and_still_runs(weights_dir, tmp_path, monkeypatch):
    import blendfix.io

    def refuse(path, encode):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(blendfix.io, "atomic_write", refuse)
    weights = _export_folder(_tiny(), tmp_path / "export")
    orig, fused = np.random.default_rng(1).random((2, 64, 64, 3), dtype=np.float32)
    with pytest.warns(UserWarning, match="could not cache the ONNX graph"):
        out = clean(orig, fused, method="network", weights=weights, threads=1)
    ref = clean(orig, fused, method="network", weights=weights, runtime="torch")
    assert np.abs(out - ref).max() <= 1e-4


def test_onnx_file_is_accepted_as_weights_and_never_unpickled(tmp_path, monkeypatch):
    from blendfix.onnx_graph import export_graph
    from blendfix.train.export import OnnxCleaner

    net = _tiny()
    axes = {0: "batch", 2: "size", 3: "size"}
    graph = export_graph(OnnxCleaner(net), (torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)),
                         ["fused", "original"], ["clean"], {"fused": axes, "original": axes, "clean": axes})
    path = tmp_path / "cleaner.onnx"
    path.write_bytes(graph)

    def no_unpickling(*a, **k):
        raise AssertionError("an .onnx file went through torch.load")

    monkeypatch.setattr(torch, "load", no_unpickling)
    orig, fused = np.random.default_rng(2).random((2, 100, 80, 3), dtype=np.float32)
    c = Cleaner(CleanConfig(method="network", weights=str(path), threads=1))
    assert c.runtime_name == "onnxruntime" and c.parameters > 0
    out = c([orig], [fused])[0]
    ref = clean(orig, fused, network=_tiny(), runtime="torch")
    assert np.abs(out - ref).max() <= 1e-4
    # the export folder holding only cleaner.onnx works the same way
    assert np.array_equal(clean(orig, fused, method="network", weights=str(tmp_path), threads=1), out)
    with pytest.raises(ValueError, match="runs in onnxruntime"):
        Cleaner(CleanConfig(method="network", weights=str(path), runtime="torch"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph at all")
    with pytest.raises(BlendfixError, match="bad.onnx: not a readable ONNX graph"):
        Cleaner(CleanConfig(method="network", weights=str(bad)))


def test_runtime_choice(monkeypatch):
    import blendfix.runtime as rt

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_runtime("auto", cpu, torch.float32) == "onnxruntime"
    assert resolve_runtime("auto", cpu, torch.float32, from_file=False) == "torch"  # an in-memory module
    assert resolve_runtime("auto", cpu, torch.bfloat16) == "torch"
    assert resolve_runtime("auto", cuda, torch.float16) == "torch"
    with pytest.raises(ValueError, match="CPU in fp32"):
        resolve_runtime("onnxruntime", cuda, torch.float16)
    with pytest.raises(ValueError, match="runtime must be one of"):
        resolve_runtime("tensorrt", cpu, torch.float32)
    monkeypatch.setattr(rt, "onnxruntime_available", lambda: False)
    assert resolve_runtime("auto", cpu, torch.float32) == "torch"
    with pytest.raises(ValueError, match="pip install onnx onnxruntime"):
        resolve_runtime("onnxruntime", cpu, torch.float32)


def test_module_runs_in_onnxruntime_when_asked():
    orig, fused = np.random.default_rng(3).random((2, 40, 72, 3), dtype=np.float32)
    c = Cleaner(CleanConfig(runtime="onnxruntime", threads=1), network=_tiny())
    assert isinstance(c.net, OrtNetwork) and c.parameters == sum(p.numel() for p in _tiny().parameters())
    ref = clean(orig, fused, network=_tiny())  # auto keeps a handed-over module in PyTorch
    assert np.abs(c([orig], [fused])[0] - ref).max() <= 1e-4


def test_cli_runtime_and_threads(weights_dir, tmp_path):
    weights = _export_folder(_tiny(), tmp_path / "export")
    for d in ("o", "f"):
        (tmp_path / d).mkdir()
    rng = np.random.default_rng(4)
    for i, (h, w) in enumerate([(64, 64), (48, 80), (64, 64)]):
        write_image(tmp_path / "o" / f"p{i}.png", rng.random((h, w, 3), dtype=np.float32))
        write_image(tmp_path / "f" / f"p{i}.png", rng.random((h, w, 3), dtype=np.float32))
    runs = {}
    for runtime in ("onnxruntime", "torch"):
        out = tmp_path / runtime
        assert main(["clean", "-i", str(tmp_path / "o"), "--fused", str(tmp_path / "f"), "-o", str(out),
                     "--weights", weights, "--runtime", runtime, "--threads", "1", "--batch-size", "2"]) == 0
        assert json.loads((out / "runtime.json").read_text())["runtime"] == runtime
        runs[runtime] = {i: read_image(out / f"p{i}.png") for i in range(3)}
    for i in range(3):
        assert np.abs(runs["onnxruntime"][i] - runs["torch"][i]).max() <= 1 / 255
