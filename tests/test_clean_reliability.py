"""Reliability of `blendfix clean`: tile-bounded memory, one failing pair never stops a folder run,
malformed cleaner weights refused with one clear error, one writer per output folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blendfix.cleaning import CleanConfig, Cleaner
from blendfix.cli import main
from blendfix.io import read_image, write_image
from blendfix.nets.maresunet import MAResUNet
from blendfix.tiling import crop, pad_square, padded_side, run_padded, tiled

TINY_NET = {"widths": (16, 16, 16, 16), "blocks": (1, 1, 1, 1), "head_width": 8}


def _tiny_maresunet(seed: int = 0) -> MAResUNet:
    torch.manual_seed(seed)
    return MAResUNet(**TINY_NET).eval()


class Recording(torch.nn.Module):
    """Wraps a network and records the shape of every input it is given."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.seen = net, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return self.net(x)


def _old_padded_then_tiled(net, x, tile, overlap):
    """The former rule: pad the whole image to a square, then tile that square."""
    p, size = pad_square(x)
    if p.shape[-1] <= tile:
        return crop(net(p), size)
    t = padded_side(tile, tile)
    return crop(tiled(net, p, t, min(overlap, t // 2), out_channels=3), size)


@torch.no_grad()
def test_tiles_are_padded_one_by_one_and_equal_padding_the_whole_image():
    net = _tiny_maresunet()
    g = torch.Generator().manual_seed(1)
    for h, w in [(640, 40), (40, 300), (200, 170)]:  # elongated both ways, and one padded with reflection
        x = torch.rand(1, 6, h, w, generator=g) * 2 - 1
        rec = Recording(net)
        new = run_padded(rec, x, tile=128, overlap=32, out_channels=3)
        assert new.shape == (1, 3, h, w)
        assert torch.equal(new, _old_padded_then_tiled(net, x, 128, 32))
        assert set(rec.seen) == {(1, 6, 128, 128)}  # never the padded square of the longer side
    # an image that fits one tile is run untiled, exactly as before
    x = torch.rand(2, 6, 50, 70, generator=g)
    whole = crop(net(pad_square(x)[0]), (50, 70))
    assert torch.equal(run_padded(net, x, tile=1024, overlap=128, out_channels=3), whole)


def test_a_very_elongated_image_needs_tile_sized_inputs_only():
    """4000x32 used to become a 4000x4000 input (30000x32: 21.6 GB); now tiles of the tile size, and
    only the ones that touch the image (a number that grows with the long side, not its square)."""
    rec = Recording(_tiny_maresunet())
    rng = np.random.default_rng(0)
    orig, fused = (rng.random((4000, 32, 3), dtype=np.float32) for _ in range(2))
    cleaner = Cleaner(CleanConfig(device="cpu", tile=512, overlap=128), network=rec)
    out = cleaner([orig], [fused])[0]
    assert out.shape == (4000, 32, 3) and np.isfinite(out).all()
    assert set(rec.seen) == {(1, 6, 512, 512)}
    assert len(rec.seen) == 11  # ceil((4000 - 512) / 384) + 1 tiles along the long side, one across


class FailsOnLargeInputs(torch.nn.Module):
    """Stands in for a network that runs out of memory on one pair of a folder."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(6, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 128:
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 21600000000 bytes.")
        return torch.tanh(self.conv(x))


def test_one_failing_pair_never_stops_a_folder_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("blendfix.cleaning.load_network", lambda weights, device: FailsOnLargeInputs())
    rng = np.random.default_rng(0)
    sizes = {"a": (64, 64), "b": (40, 300), "c": (64, 64), "d": (96, 80)}
    for d in ("orig", "fused"):
        (tmp_path / d).mkdir()
        for stem, (h, w) in sizes.items():
            write_image(tmp_path / d / f"{stem}.png", rng.random((h, w, 3), dtype=np.float32))
    code = main(["clean", "-i", str(tmp_path / "orig"), "--fused", str(tmp_path / "fused"), "-o",
                 str(tmp_path / "out"), "--method", "network", "--weights", "any", "--device", "cpu",
                 "--runtime", "torch"])
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png", "c.png", "d.png"]
    err = capsys.readouterr().err
    assert "b.png: could not be cleaned (RuntimeError" in err and "--tile" in err and "internal error" not in err
    assert read_image(tmp_path / "out" / "d.png").shape == (96, 80, 3)


def _tiny_state() -> dict[str, torch.Tensor]:
    return _tiny_maresunet().state_dict()


def _save_export(folder, state, model=None, raw_json=None):
    """A ``cleaner.safetensors`` + ``cleaner.json`` pair as `blendfix export` writes it."""
    import json

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "cleaner.safetensors"))
    meta = {"architecture": "maresunet", "model": model if model is not None else dict(TINY_NET, residual=False)}
    (folder / "cleaner.json").write_text(raw_json if raw_json is not None else json.dumps(meta, default=list))
    return folder / "cleaner.safetensors"


def _malformed(kind: str, tmp):
    """Writes one malformed cleaner of the given kind; returns (path to pass, the file the error must name)."""
    state = _tiny_state()
    if kind in ("int32", "uint8"):
        dt = getattr(torch, kind)
        p = _save_export(tmp, {k: (v * 100).to(dt) if v.is_floating_point() else v for k, v in state.items()})
        return p, p
    if kind == "wrong_shapes":
        p = _save_export(tmp, state, model=dict(TINY_NET, widths=[16, 16, 16, 32]))
        return p, p
    if kind == "missing_keys":
        p = _save_export(tmp, {k: v for k, v in state.items() if not k.startswith("decoder1.")})
        return p, p
    if kind == "nan":
        state["finalconv3.bias"] = torch.full_like(state["finalconv3.bias"], float("nan"))
        p = _save_export(tmp, state)
        return p, p
    if kind == "raw_tensor":
        torch.save(torch.zeros(3, 3), tmp / "weights.pt")
        return tmp / "weights.pt", tmp / "weights.pt"
    if kind == "text_file":
        (tmp / "weights.pt").write_text("these are not weights\n")
        return tmp / "weights.pt", tmp / "weights.pt"
    if kind == "truncated":
        p = _save_export(tmp, state)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        return p, p
    if kind == "json_without_model":
        p = _save_export(tmp, state, raw_json='{"architecture": "maresunet"}')
        return p, tmp / "cleaner.json"
    if kind == "json_invalid":
        p = _save_export(tmp, state, raw_json='{"model": {"widths": [16, 16')
        return p, tmp / "cleaner.json"
    if kind == "huge_declared":  # a small file whose config asks for a network of many GB
        p = _save_export(tmp, state, model={"widths": [2048] * 4, "blocks": [64] * 4, "head_width": 1024})
        return p, tmp / "cleaner.json"
    if kind == "checkpoint_huge_config":
        torch.save({"step": 1, "model": state, "model_config": {"widths": [4096] * 4}}, tmp / "step_00000001.pt")
        return tmp / "step_00000001.pt", tmp / "step_00000001.pt"
    raise AssertionError(kind)


MALFORMED = ["int32", "uint8", "wrong_shapes", "missing_keys", "nan", "raw_tensor", "text_file", "truncated",
             "json_without_model", "json_invalid", "huge_declared", "checkpoint_huge_config"]


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_cleaner_weights_give_one_clear_error_naming_the_file(kind, tmp_path, monkeypatch, capsys):
    import blendfix.nets.maresunet as mn

    (tmp_path / "w").mkdir()
    src, named = _malformed(kind, tmp_path / "w")
    built_for_real = []
    real_init = mn.MAResUNet.__init__

    def spy(self, *a, **kw):  # a network built outside the meta device is a real allocation
        if torch.empty(0).device.type != "meta":
            built_for_real.append(kw)
        real_init(self, *a, **kw)

    monkeypatch.setattr(mn.MAResUNet, "__init__", spy)
    rng = np.random.default_rng(0)
    write_image(tmp_path / "o.png", rng.random((64, 64, 3), dtype=np.float32))
    write_image(tmp_path / "f.png", rng.random((64, 64, 3), dtype=np.float32))
    code = main(["clean", "-i", str(tmp_path / "o.png"), "--fused", str(tmp_path / "f.png"), "-o",
                 str(tmp_path / "out"), "--method", "network", "--weights", str(src), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"error: {named}:" in err and "internal error" not in err
    assert len(err.strip().splitlines()) == 1
    assert not built_for_real  # every check ran before a network was allocated
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.png"))


def test_well_formed_weights_still_load_and_fp16_ones_too(tmp_path):
    from blendfix.train.export import load_cleaner

    state = _tiny_state()
    for name, st in (("fp32", state), ("fp16", {k: v.half() if v.is_floating_point() else v
                                                for k, v in state.items()})):
        net = load_cleaner(_save_export(tmp_path / name, st))
        assert torch.equal(net.finalconv3.weight, st["finalconv3.weight"].float())
    torch.manual_seed(0)
    skip = MAResUNet(**TINY_NET, residual=True, input_skip=True)  # the options change finalconv2's shape
    net = load_cleaner(_save_export(tmp_path / "skip", skip.state_dict(), model=skip.config))
    assert net.input_skip and net.residual and torch.equal(net.finalconv2.weight, skip.finalconv2.weight)


class Gate(torch.nn.Module):
    """A network that waits (inside the first run's forward) until the test lets it go on."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.inside, self.go = threading.Event(), threading.Event()
        self.conv = torch.nn.Conv2d(6, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inside.set()
        assert self.go.wait(60)
        return x[:, :3]


def test_a_second_clean_run_into_the_same_folder_is_refused(tmp_path, monkeypatch, capsys):
    import json
    import threading

    gate = Gate()
    monkeypatch.setattr("blendfix.cleaning.load_network", lambda weights, device: gate)
    rng = np.random.default_rng(0)
    for d in ("orig", "fused"):
        (tmp_path / d).mkdir()
        for i in range(3):
            write_image(tmp_path / d / f"x{i}.png", rng.random((64, 64, 3), dtype=np.float32))
    common = ["clean", "-i", str(tmp_path / "orig"), "--fused", str(tmp_path / "fused"), "-o", str(tmp_path / "out"),
              "--device", "cpu"]
    codes = {}
    first = threading.Thread(target=lambda: codes.setdefault("network", main([*common, "--method", "network",
                                                                              "--weights", "w", "--runtime", "torch"])))
    first.start()
    try:
        assert gate.inside.wait(60)  # the first run is writing the folder now
        codes["fused"] = main([*common, "--method", "fused"])
    finally:
        gate.go.set()
        first.join(60)
    assert codes == {"network": 0, "fused": 1}
    assert "another blendfix clean run is writing into this folder" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "runtime.json").read_text())["method"] == "network"
    for i in range(3):  # every output is the first run's (the gate returns F)
        assert np.array_equal(read_image(tmp_path / "out" / f"x{i}.png"), read_image(tmp_path / "fused" / f"x{i}.png"))
    # once the first run is done, the folder is free (for the same method: another one would mix with it)
    assert main([*common, "--method", "network", "--weights", "w", "--runtime", "torch"]) == 0


def test_a_later_run_of_another_method_into_a_flat_folder_is_refused_and_changes_nothing(tmp_path, capsys):
    rng = np.random.default_rng(0)
    orig = rng.random((64, 48, 3)).astype(np.float32)
    write_image(tmp_path / "o.png", orig)
    write_image(tmp_path / "f.png", np.clip(orig + 0.1, 0, 1))
    out = tmp_path / "out"
    args = ["clean", "-i", str(tmp_path / "o.png"), "--fused", str(tmp_path / "f.png"), "-o", str(out)]
    assert main([*args, "--method", "fused"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main([*args, "--method", "network"]) != 0
    err = capsys.readouterr().err
    assert "--method fused" in err and "runtime.json" in err and str(out) in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing overwritten
    assert main([*args, "--method", "fused"]) == 0  # the same method again is a rerun, allowed
