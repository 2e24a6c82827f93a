"""Diff-CAM training on generator-made pairs: classes, sampler, loss goes down, checkpoints load back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from blendfix.cli import main
from blendfix.errors import BlendfixError
from blendfix.nets.diffcam import DiffCAM, load_diffcam, resnet_to_diffcam
from blendfix.nets.stylegan2 import Generator
from blendfix.train.diffcam import (
    DiffCAMTrainConfig,
    PairSampler,
    assign_classes,
    cosine_lr,
    direction_files,
    evaluate,
    load_bank,
    train_diffcam,
)

TINY_NET = {"layers": (1, 1, 2, 1), "width": 4, "split": 1}


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(32, style_dim=16, n_mlp=2, channel_multiplier=1, max_channels=16).eval()


@pytest.fixture
def dir_folder(tmp_path):
    folder = tmp_path / "dirs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.save(folder / "Beard.npy", rng.standard_normal((8, 16)))  # EOGI name: class 12
    np.save(folder / "Old.npy", rng.standard_normal((8, 16)))  # EOGI name: class 16
    torch.save(torch.randn(1, 16), folder / "custom.pt")  # W direction, takes the first free class (0)
    return folder


def test_class_assignment_keeps_eogi_indices():
    assert assign_classes(["Beard", "Old", "custom", "more"], 17) == [12, 16, 0, 1]
    assert assign_classes(sorted(["Bushy_Eyebrows", "Smiling"]), 17) == [6, 15]
    with pytest.raises(BlendfixError):
        assign_classes(["a", "b", "c"], 2)
    assert cosine_lr(0, 100, 1e-4, 1e-7) == pytest.approx(1e-4)
    assert cosine_lr(100, 100, 1e-4, 1e-7) == pytest.approx(1e-7)


def test_sampler_makes_edit_pairs(dir_folder):
    g = tiny_generator()
    cfg = DiffCAMTrainConfig(image_size=32, randomize_noise=False, alpha=20.0)
    bank = load_bank(direction_files(str(dir_folder)), g.n_latent, g.style_dim, 17)
    assert bank.classes.tolist() == [12, 16, 0]
    assert torch.allclose(bank.directions.flatten(1).norm(dim=1), torch.ones(3))
    x, y = PairSampler(g, bank, cfg).sample(4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 6, 32, 32) and set(y.tolist()) <= {0, 12, 16}
    assert (x[:, :3] - x[:, 3:]).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # T differs from I'
    cfg0 = DiffCAMTrainConfig(image_size=32, randomize_noise=False, alpha=0.0)
    x0, _ = PairSampler(g, bank, cfg0).sample(2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x0[:, :3], x0[:, 3:])  # alpha 0: no edit, same noise -> identical pair


def test_training_lowers_loss_and_writes_loadable_checkpoints(dir_folder, tmp_path):
    g = tiny_generator()
    cfg = DiffCAMTrainConfig(directions=str(dir_folder), steps=30, batch_size=6, lr=1e-3, image_size=32,
                             randomize_noise=False, log_every=10, save_every=15, device="cpu", **TINY_NET)
    torch.manual_seed(0)
    model = DiffCAM(17, **TINY_NET)
    bank = load_bank(direction_files(cfg.directions), g.n_latent, g.style_dim, 17)
    rng = torch.Generator().manual_seed(123)
    held_out = [PairSampler(g, bank, cfg).sample(8, rng) for _ in range(2)]
    before, _ = evaluate(model, held_out)
    final = train_diffcam(cfg, tmp_path / "run", generator=g, model=model)
    after, _ = evaluate(model, held_out)
    assert after < before - 0.3, (before, after)
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000015.pt", "step_00000030.pt"]
    assert json.loads((run / "classes.json").read_text()).keys() == {"12", "16", "0"}
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["steps"] == 30 and saved["layers"] == [1, 1, 2, 1]
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [10, 20, 30]
    loaded = load_diffcam(final)  # strict load, architecture read from the file
    with torch.no_grad():
        torch.testing.assert_close(loaded(held_out[0][0]), model.eval()(held_out[0][0]))
    with pytest.raises(BlendfixError, match="already holds"):
        train_diffcam(cfg, run, generator=g)


def test_cli_trains_from_generator_file(dir_folder, tmp_path):
    g = tiny_generator(1)
    torch.save({"g_ema": g.state_dict()}, tmp_path / "g.pt")
    out = tmp_path / "cli_run"
    code = main(["train-diffcam", "-o", str(out), "-i", str(dir_folder), "--generator", str(tmp_path / "g.pt"),
                 "--steps", "2", "--batch-size", "2", "--device", "cpu", "--set", "image_size=32",
                 "--set", "layers=[1, 1, 2, 1]", "--set", "width=4", "--set", "split=1", "--set", "log_every=1"])
    assert code == 0
    assert load_diffcam(out / "diffcam.pt").num_classes == 17
    assert main(["train-diffcam", "-o", str(tmp_path / "bad"), "-i", str(tmp_path / "missing"),
                 "--generator", str(tmp_path / "g.pt"), "--steps", "1", "--device", "cpu"]) == 1


def test_resnet_state_maps_to_diffcam_layout():
    torch.manual_seed(0)
    ref = DiffCAM(5, **TINY_NET)
    tv = {}  # a torchvision-named copy of ref's backbone (+ an ImageNet-sized fc that must be dropped)
    for k, v in ref.state_dict().items():
        parts = k.split(".")
        if parts[0] == "fc":
            continue
        if parts[0] == "shared":
            i = int(parts[1])
            name = {0: "conv1", 1: "bn1", 4: "layer1", 5: "layer2"}.get(i)
            tv[(f"{name}." if name else f"layer3.{i - 6}.") + ".".join(parts[2:])] = v
        else:
            i = int(parts[1])
            tv[(f"layer3.{i + 1}." if i < 1 else "layer4.") + ".".join(parts[2:])] = v
    tv["fc.weight"], tv["fc.bias"] = torch.zeros(1000, 128), torch.zeros(1000)
    mapped = resnet_to_diffcam(tv, split=1, layers=(1, 1, 2, 1))
    assert mapped.keys() == {k for k in ref.state_dict() if not k.startswith("fc.")}
    assert all(torch.equal(mapped[k], ref.state_dict()[k]) for k in mapped)
