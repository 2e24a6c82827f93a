"""Export of a trained cleaner (safetensors, ONNX checked in onnxruntime) and load_cleaner round trips."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from blend_toyset import make_toy_set

from blendfix.cli import main
from blendfix.nets.maresunet import MAResUNet
from blendfix.train.export import export_onnx, export_safetensors, load_cleaner
from blendfix.train.runs import checkpoints, numbered_runs

TINY = {"model": {"widths": [16, 16, 16, 32], "blocks": [1, 1, 1, 1], "head_width": 8, "imagenet_init": "off"},
        "loss": {"adversarial": 0, "perceptual": 0}, "data": {"crop": 32, "workers": 0, "val_fraction": 0},
        "optim": {"iterations": 2, "batch_size": 2}, "threads": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    toy = make_toy_set(root / "toy", n=4, size=32)
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    assert main(["train", "--data", str(toy), "--out", str(root / "runs"), "--config", str(root / "tiny.yaml")]) == 0
    return numbered_runs(root / "runs")[0]


def _trained(run) -> MAResUNet:
    from blendfix.train.runs import load_training_checkpoint

    state = load_training_checkpoint(checkpoints(run)[-1])
    cfg = state["model_config"]  # training's defaults (e.g. residual) decide the architecture
    model = MAResUNet(widths=(16, 16, 16, 32), blocks=(1, 1, 1, 1), head_width=8, residual=cfg.get("residual", False),
                      input_skip=cfg.get("input_skip", False))
    model.load_state_dict(state["model"])
    return model.eval()


def test_safetensors_round_trip(run, tmp_path):
    path = export_safetensors(run, tmp_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["model"]["widths"] == [16, 16, 16, 32] and meta["step"] == 2
    ref, loaded = _trained(run), load_cleaner(tmp_path)
    assert not loaded.training
    f, o = torch.rand(1, 3, 48, 40), torch.rand(1, 3, 48, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded.clean(o, f), ref.clean(o, f), rtol=0, atol=0)
    # the run folder and the checkpoint itself load the same network
    for source in (run, run.parent, checkpoints(run)[-1]):
        with torch.no_grad():
            torch.testing.assert_close(load_cleaner(source).clean(o, f), ref.clean(o, f), rtol=0, atol=0)


def test_fp16_safetensors_halves_the_file_and_stays_close(run, tmp_path):
    full = export_safetensors(run, tmp_path)
    half = export_safetensors(run, tmp_path, fp16=True)
    assert half.name == "cleaner_fp16.safetensors" and half.stat().st_size < 0.6 * full.stat().st_size
    f, o = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        diff = (load_cleaner(half).clean(o, f) - load_cleaner(full).clean(o, f)).abs().max()
    assert diff < 1e-2


def test_released_raw_state_dict_loads(tmp_path):
    model = MAResUNet()
    torch.save(model.state_dict(), tmp_path / "iter_200000")
    loaded = load_cleaner(tmp_path / "iter_200000")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values(),
                                                  strict=True))


@pytest.mark.parametrize("fp16", [False, True])
def test_onnx_export_matches_pytorch_in_onnxruntime(run, tmp_path, fp16):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    path, diff = export_onnx(run, tmp_path, fp16=fp16, check_size=32)
    assert diff < (2e-2 if fp16 else 1e-4)
    # an independent check at another batch size and side
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    f, o = torch.rand(3, 3, 96, 96), torch.rand(3, 3, 96, 96)
    got = torch.from_numpy(sess.run(None, {"fused": f.numpy(), "original": o.numpy()})[0])
    with torch.no_grad():
        ref = _trained(run).clean(o, f)
    assert got.shape == (3, 3, 96, 96)
    torch.testing.assert_close(got, ref, rtol=0, atol=2e-2 if fp16 else 1e-4)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-written .part left


def test_exports_are_written_atomically_with_normal_permissions(run, tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    path = export_safetensors(run, tmp_path)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual file mode, not a private temp file's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cleaner.json", "cleaner.safetensors"]


def test_export_cli(run):
    assert main(["export", "--run", str(run.parent), "--format", "safetensors"]) == 0
    assert (run / "export" / "cleaner.safetensors").is_file() and (run / "export" / "cleaner.json").is_file()
    assert main(["export", "--run", str(run), "--format", "onnx", "--check-size", "32"]) == 0
    assert (run / "export" / "cleaner.onnx").is_file()
    assert main(["export", "--run", str(run), "--format", "onnx", "--check-size", "40"]) != 0


def test_load_cleaner_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_cleaner(tmp_path / "nothing.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "cleaner.safetensors"))
    with pytest.raises(FileNotFoundError, match="cleaner.json"):
        load_cleaner(tmp_path / "cleaner.safetensors")
