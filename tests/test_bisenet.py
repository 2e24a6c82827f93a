"""BiSeNet face parser: the fixture proves the 79999_iter.pth layout, the function and the preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blendfix.errors import MissingWeightsError
from blendfix.nets.bisenet import BISENET_CLASSES, BiSeNet
from blendfix.parsing import get_parser
from blendfix.parsing.bisenet_parser import BiSeNetParser, preprocess
from blendfix.registry import CHECKPOINTS

HEADS = ("conv_out", "conv_out16", "conv_out32")


@pytest.fixture(scope="module")
def bisenet(fixture):
    fx = fixture("bisenet")
    torch.manual_seed(0)
    net = BiSeNet(n_classes=19).eval()
    state = fx.state_dict()
    net.load_state_dict(state, strict=True)  # the published layout, key for key
    fx.cached_state = state
    return fx, net


@pytest.mark.parametrize("name", ["smooth", "face"])
def test_fixture_outputs(bisenet, name):
    fx, net = bisenet
    x = torch.from_numpy(fx.inputs[f"x_{name}"])
    with torch.no_grad():
        heads = net.heads(x)
        logits = net(x)[0]
    for head, got in zip(HEADS, heads, strict=True):
        np.testing.assert_allclose(got.numpy(), fx.outputs[f"{name}_{head}_prefinal"], atol=1e-5, rtol=1e-4)
    stored = fx.outputs[f"{name}_logits_f16"].astype(np.float32)
    assert np.abs(logits.numpy() - stored).max() <= 2e-3
    stable = fx.outputs[f"{name}_labels_stable"].astype(bool)
    labels = logits.argmax(1).numpy()
    assert (labels == fx.outputs[f"{name}_labels"])[stable].all()


def test_state_dict_order_matches_checkpoint(bisenet):
    fx, net = bisenet
    assert list(net.state_dict()) == list(fx.cached_state)
    assert not any(k.startswith(("sp.", "fc.", "module.")) for k in net.state_dict())


def test_preprocessing_matches_test_py(bisenet):
    fx, _ = bisenet
    x = preprocess(fx.inputs["face_rgb_uint8"], size=256)
    np.testing.assert_allclose(x.numpy(), fx.inputs["x_face"], atol=1e-6)
    # float input in [0, 1] is the same photo
    x2 = preprocess(fx.inputs["face_rgb_uint8"].astype(np.float32) / 255.0, size=256)
    np.testing.assert_allclose(x2.numpy(), x.numpy(), atol=1e-6)


def test_parser_label_map(bisenet):
    fx, net = bisenet
    parser = get_parser("bisenet", model=net, size=256, device="cpu")
    labels = parser.parse(fx.inputs["face_rgb_uint8"])
    assert labels.shape == (256, 256) and labels.dtype == np.int64
    stable = fx.outputs["face_labels_stable"][0].astype(bool)
    assert (labels == fx.outputs["face_labels"][0])[stable].all()
    # another input size: labels come back at the input's size
    small = fx.inputs["face_rgb_uint8"][:200, :150]
    assert parser.parse(small).shape == (200, 150)


def test_odd_sizes_run(bisenet):
    """Inner nearest upsampling targets explicit sizes, so sizes not divisible by 32 work."""
    _, net = bisenet
    with torch.no_grad():
        outs = net(torch.randn(1, 3, 97, 130))
    assert [tuple(o.shape) for o in outs] == [(1, 19, 97, 130)] * 3


def test_missing_checkpoint_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="79999_iter.pth") as e:
        BiSeNetParser(device="cpu")
    assert str(tmp_path) in str(e.value)


def test_registry_entry_and_classes():
    entry = CHECKPOINTS["bisenet-face-parsing"]
    assert entry.filename == "79999_iter.pth" and entry.url.startswith("https://") and "MIT" in entry.licence
    assert len(BISENET_CLASSES) == 19 and BISENET_CLASSES[1] == "skin" and BISENET_CLASSES[17] == "hair"


def test_bad_input_shape():
    net = BiSeNet(n_classes=19).eval()
    with pytest.raises(ValueError, match="B, 3, H, W"):
        net(torch.zeros(1, 1, 64, 64))


def test_checkpoint_file_loads_like_79999_iter(bisenet, tmp_path):
    """A raw state_dict file (the published format) loads strictly through the safe loader."""
    fx, net = bisenet
    path = tmp_path / "79999_iter.pth"
    torch.save(fx.cached_state, path)
    parser = BiSeNetParser(checkpoint=str(path), device="cpu", size=256)
    labels = parser.parse(fx.inputs["face_rgb_uint8"])
    stable = fx.outputs["face_labels_stable"][0].astype(bool)
    assert (labels == fx.outputs["face_labels"][0])[stable].all()


def test_cli_bisenet_without_weights_is_one_clear_error(data_dir, tmp_path, monkeypatch, capsys):
    from blendfix.cli import main

    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path / "weights"))
    face = data_dir / "faces" / "celebamask_hq_512" / "0.jpg"
    rc = main(["mask", "-i", str(face), "--parser", "bisenet", "--device", "cpu", "-o", str(tmp_path / "out")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "79999_iter.pth" in err and "Traceback" not in err
