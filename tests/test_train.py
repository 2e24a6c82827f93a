"""Training: bit-exact resume, loss presets, the no-VGG warning, run folders and the train CLI."""

from __future__ import annotations

import pytest
import torch
import yaml
from blend_toyset import make_toy_set
from torch import nn

from blendfix.cli import main
from blendfix.config import from_dict
from blendfix.train.config import LOSS_PRESETS, LossConfig, TrainConfig, check, effective_weights
from blendfix.train.runs import checkpoints, metrics_history, numbered_runs
from blendfix.train.trainer import Trainer

TINY = {"model": {"widths": [16, 16, 16, 16], "blocks": [1, 1, 1, 1], "head_width": 8, "imagenet_init": "off"},
        "data": {"crop": 32, "workers": 0, "val_fraction": 0.25, "val_max": 2},
        "optim": {"iterations": 6, "batch_size": 2}, "loss": {"adversarial": 0, "perceptual": 0},
        "threads": 1, "device": "cpu", "log_every": 1, "val_every": 2, "ckpt_every": 100}


class TinyDisc(nn.Module):
    """A small conv discriminator: (B, 3, S, S) -> (B, 1) logits (stands in for StyleGAN2's in tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, 2, 1),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def tiny_disc(size: int, cfg: TrainConfig) -> nn.Module:
    return TinyDisc()


def config(**extra) -> TrainConfig:
    data = yaml.safe_load(yaml.safe_dump(TINY))
    for k, v in extra.items():
        data.setdefault(k, {}).update(v) if isinstance(v, dict) else data.__setitem__(k, v)
    return from_dict(TrainConfig, data)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_set(tmp_path_factory.mktemp("toy"), n=8, size=48)


def _all_state(tr: Trainer) -> dict[str, torch.Tensor]:
    out = {f"g.{k}": v for k, v in tr.model.state_dict().items()}
    out.update({f"d.{k}": v for k, v in tr.disc.state_dict().items()})
    for name, opt in (("og", tr.opt_g), ("od", tr.opt_d)):
        for pid, st in opt.state_dict()["state"].items():
            out.update({f"{name}.{pid}.{k}": v for k, v in st.items() if isinstance(v, torch.Tensor)})
    return out


def test_resume_is_bit_exact_on_cpu(toy, tmp_path):
    """N steps straight == N/2 steps, stop, resume from the checkpoint, N/2 steps (adversarial on, dropout on)."""
    cfg = config(loss={"adversarial": 0.1, "gradient": 0.5})
    straight = Trainer(cfg, toy, tmp_path / "a", disc_factory=tiny_disc)
    assert straight.fit() == 6
    half = Trainer(config(loss={"adversarial": 0.1, "gradient": 0.5}), toy, tmp_path / "b", disc_factory=tiny_disc)
    assert half.fit(max_steps=3) == 3
    ckpt = checkpoints(tmp_path / "b")[-1]
    resumed = Trainer(config(loss={"adversarial": 0.1, "gradient": 0.5}), toy, tmp_path / "b", resume=ckpt,
                      disc_factory=tiny_disc)
    assert resumed.step == 3 and resumed.fit() == 6
    a, b = _all_state(straight), _all_state(resumed)
    assert a.keys() == b.keys()
    unequal = [k for k in a if not torch.equal(a[k], b[k])]
    assert not unequal, unequal[:5]
    assert straight.sched_g.get_last_lr() == resumed.sched_g.get_last_lr()
    # and training did change the weights
    fresh = Trainer(config(loss={"adversarial": 0.1}), toy, tmp_path / "c", disc_factory=tiny_disc)
    assert not torch.equal(fresh.model.finalconv3.weight, straight.model.finalconv3.weight)


def test_checkpoint_holds_everything_needed(toy, tmp_path):
    from blendfix.train.runs import load_training_checkpoint

    tr = Trainer(config(loss={"adversarial": 0.1}), toy, tmp_path, disc_factory=tiny_disc)
    tr.fit(max_steps=2)
    state = load_training_checkpoint(checkpoints(tmp_path)[-1])
    assert {"model", "disc", "opt_g", "opt_d", "sched_g", "sched_d", "scaler_g", "scaler_d", "step", "rng",
            "model_config"} <= set(state)
    assert state["step"] == 2 and state["sched_g"]["last_epoch"] == 2


def test_cosine_schedule_reaches_lr_min(toy, tmp_path):
    tr = Trainer(config(), toy, tmp_path)
    lrs = []
    for _ in range(6):
        tr.fit(max_steps=1)
        lrs.append(tr.sched_g.get_last_lr()[0])
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(1e-7)
    assert tr.opt_g.defaults["betas"] == (0.9, 0.999)


def test_loss_presets_give_the_documented_effective_weights():
    paper = effective_weights(LossConfig())
    assert paper == {"mse": 0.1, "perceptual": 1.0, "adversarial": 0.1, "gradient": 0.0}
    released = effective_weights(LossConfig(preset="released"))
    assert released["mse"] == 2.0
    assert released["perceptual"] == pytest.approx(0.01) and released["adversarial"] == pytest.approx(0.005)
    # explicit weights beat the preset
    assert effective_weights(LossConfig(preset="released", mse=1.0))["mse"] == 1.0
    assert set(LOSS_PRESETS) == {"paper", "released"}
    with pytest.raises(ValueError, match="preset"):
        effective_weights(LossConfig(preset="mine"))
    with pytest.raises(ValueError, match="multiple of 32"):
        check(config(data={"crop": 40}))


def test_missing_vgg_drops_perceptual_term_loudly_and_records_it(toy, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path / "no_weights"))
    with pytest.warns(UserWarning, match="PERCEPTUAL LOSS DISABLED"):
        tr = Trainer(config(loss={"perceptual": 1.0}), toy, tmp_path / "run")
    assert "PERCEPTUAL LOSS DISABLED" in capsys.readouterr().err
    tr.save_run_config()
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert any("PERCEPTUAL LOSS DISABLED" in w for w in saved["run"]["warnings"])
    assert saved["run"]["effective_loss_weights"]["perceptual"] == 0.0
    assert saved["loss"]["perceptual"] == 1.0  # the config still says what was asked for
    terms = tr.train_step(next(iter(tr.loader())))
    assert "perceptual" not in terms and "mse" in terms
    # an explicitly named VGG file that is missing is an error, not a silent drop
    with pytest.raises(FileNotFoundError):
        Trainer(config(loss={"perceptual": 1.0, "vgg_weights": str(tmp_path / "vgg16.pth")}), toy, tmp_path / "run2")


def test_perceptual_term_is_used_when_vgg_is_present(toy, tmp_path, monkeypatch):
    from blendfix.nets.vgg16 import VGG16Features

    path = tmp_path / "my_vgg.pth"
    torch.save(VGG16Features().state_dict(), path)
    tr = Trainer(config(loss={"perceptual": 1.0, "vgg_weights": str(path)}), toy, tmp_path / "run")
    assert not tr.warnings
    terms = tr.train_step(next(iter(tr.loader())))
    assert terms["perceptual"] > 0


def test_cli_numbered_runs_resume_auto_and_validation_log(toy, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "runs"
    args = ["train", "--data", str(toy), "--out", str(out), "--config", str(cfg)]
    assert main([*args, "--steps", "2"]) == 0
    assert main(["train", "--data", str(toy), "--out", str(out), "--resume", "auto"]) == 0
    runs = numbered_runs(out)
    assert [r.name for r in runs] == ["run-001"]
    assert [p.name for p in checkpoints(runs[0])] == ["step_00000002.pt", "step_00000006.pt"]
    val = metrics_history(runs[0])
    assert [r["step"] for r in val] == [0, 2, 4, 6] and all("psnr" in r and "psnr_input" in r for r in val)
    assert (runs[0] / "val" / "step_00000006.png").is_file() and list((runs[0] / "tb").iterdir())
    saved = yaml.safe_load((runs[0] / "config.yaml").read_text())
    assert saved["model"]["widths"] == [16, 16, 16, 16] and saved["run"]["resumed_from"].endswith("step_00000002.pt")
    # a fresh run gets the next number; a config cannot be changed on resume
    assert main([*args, "--steps", "1"]) == 0
    assert [r.name for r in numbered_runs(out)] == ["run-001", "run-002"]
    assert main([*args, "--resume", "auto", "--set", "seed=5"]) != 0


def test_default_stylegan2_discriminator_trains(toy, tmp_path):
    """With the adversarial term on, the StyleGAN2 discriminator is built at the crop size and updated."""
    from blendfix.nets.stylegan2 import Discriminator

    cfg = config(loss={"adversarial": 0.1}, disc={"channel_multiplier": 1, "options": {"max_channels": 16}})
    tr = Trainer(cfg, toy, tmp_path)
    assert isinstance(tr.disc, Discriminator) and tr.disc.size == 32
    before = [p.detach().clone() for p in tr.disc.parameters()]
    terms = tr.train_step(next(iter(tr.loader())))
    assert terms["adversarial"] > 0 and terms["loss_d"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.disc.parameters(), strict=True))
    assert all(p.requires_grad for p in tr.disc.parameters())


def test_sizes_the_networks_cannot_take_are_refused_up_front(toy, tmp_path):
    with pytest.raises(ValueError, match="set data.crop"):
        Trainer(config(data={"crop": None}), toy, tmp_path / "a")  # 48x48 images, not a multiple of 32
    big = make_toy_set(tmp_path / "big", n=4, size=96)
    with pytest.raises(ValueError, match="power-of-two"):
        Trainer(config(data={"crop": 96}, loss={"adversarial": 0.1}), big, tmp_path / "b")


def test_imagenet_init_auto_uses_the_resnet34_file_when_present(tmp_path, monkeypatch):
    from blendfix.nets.maresunet import MAResUNet
    from blendfix.train.builders import build_model

    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path))
    cfg = from_dict(TrainConfig, {})
    model, notes = build_model(cfg)
    assert notes and "randomly" in notes[0]
    enc = {k: v for k, v in MAResUNet().state_dict().items() if k.startswith(("firstbn.", "encoder"))}
    tv = {("bn1." + k[8:] if k.startswith("firstbn.") else "layer" + k[7] + k[8:]): torch.full_like(v, 0.5)
          for k, v in enc.items() if v.is_floating_point()}
    torch.save(tv, tmp_path / "resnet34-b627a593.pth")
    model, notes = build_model(cfg)
    assert not notes and float(model.encoder4[2].conv2.weight.detach().mean()) == 0.5
    assert float(model.firstconv.weight.detach().mean()) != 0.5


def test_cli_refuses_an_empty_set_without_leaving_a_run_folder(tmp_path):
    (tmp_path / "set" / "items").mkdir(parents=True)
    assert main(["train", "--data", str(tmp_path / "set"), "--out", str(tmp_path / "runs")]) == 1
    assert not (tmp_path / "runs").exists()
