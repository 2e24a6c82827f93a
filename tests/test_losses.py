"""Training losses against the released code's numbers (vgg16_perceptual and gan_loss fixtures)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blendfix.nets.vgg16 import IMAGENET_MEAN, IMAGENET_STD, VGG16Features, normalize_imagenet
from blendfix.train.losses import PERCEPTUAL_LAYERS, GANLoss, GeneratorLoss, PerceptualLoss, gradient_loss


@pytest.fixture(scope="module")
def vgg_fixture(fixture):
    fx = fixture("vgg16_perceptual")
    sd = fx.state_dict()
    vgg = VGG16Features()
    vgg.load_state_dict({k.replace("vgg.vgg_layers.", "features."): v for k, v in sd.items()
                         if k.startswith("vgg.vgg_layers.")}, strict=True)
    return vgg, fx, sd


def test_normalisation_constants_are_the_fixtures(vgg_fixture):
    _, _, sd = vgg_fixture
    np.testing.assert_array_equal(sd["vgg.mean"].flatten().numpy(), np.float32(IMAGENET_MEAN))
    np.testing.assert_array_equal(sd["vgg.std"].flatten().numpy(), np.float32(IMAGENET_STD))


def test_perceptual_loss_matches_released_code(vgg_fixture):
    vgg, fx, _ = vgg_fixture
    np.testing.assert_array_equal(sorted(PERCEPTUAL_LAYERS), fx.outputs["layer_indices"])
    np.testing.assert_allclose([PERCEPTUAL_LAYERS[i] for i in sorted(PERCEPTUAL_LAYERS)], fx.outputs["layer_weights"])
    loss = PerceptualLoss(vgg, inner_weight=0.01)
    x, y = torch.from_numpy(fx.inputs["x"]), torch.from_numpy(fx.inputs["y"])
    with torch.no_grad():
        for k in range(x.shape[0]):
            mse = loss.layer_mse(x[k], y[k])
            np.testing.assert_allclose([float(mse[i]) for i in sorted(mse)], fx.outputs["layer_mse"][k], rtol=1e-4)
            np.testing.assert_allclose(float(loss(x[k], y[k])), fx.outputs["total"][k], rtol=1e-4)
        np.testing.assert_allclose(float(loss(x[:, 0], y[:, 0])), fx.outputs["total_batched"], rtol=1e-4)
        feats = vgg(normalize_imagenet((x[0] + 1) / 2), (12, 21, 30))
    for i in (12, 21, 30):
        np.testing.assert_allclose(feats[i].numpy(), fx.outputs[f"feat_x0_{i}"], atol=1e-5, rtol=1e-4)


def test_perceptual_gradient_reaches_prediction_not_target(vgg_fixture):
    vgg, fx, _ = vgg_fixture
    x = torch.from_numpy(fx.inputs["x"][1]).requires_grad_(True)
    y = torch.from_numpy(fx.inputs["y"][1]).requires_grad_(True)
    PerceptualLoss(vgg)(x, y).backward()
    assert x.grad.abs().sum() > 0 and y.grad is None
    assert all(p.grad is None for p in vgg.parameters())


def test_gan_loss_matches_released_code(fixture):
    fx = fixture("gan_loss")
    gan = GANLoss(weight=1e-2)
    for name, arr in fx.inputs.items():
        logits = torch.from_numpy(arr)
        for suffix, args in [("g", (True, False)), ("d_real", (True, True)), ("d_fake", (False, True)),
                             ("g_fake_label", (False, False))]:
            np.testing.assert_allclose(float(gan(logits, *args)), fx.outputs[f"{name}__{suffix}"],
                                       rtol=1e-5, atol=1e-7, err_msg=f"{name}__{suffix}")
    a, b = torch.from_numpy(fx.inputs["logits_a"]), torch.from_numpy(fx.inputs["logits_b"])
    np.testing.assert_allclose(0.5 * float(gan.generator(a)), fx.outputs["train_g_adv"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(float(gan.discriminator(b, a)), fx.outputs["train_loss_d"], rtol=1e-5, atol=1e-7)


def test_gradient_loss_sees_seams_but_not_offsets():
    """A constant offset keeps the gradients (Poisson-equivalent); a seam does not."""
    torch.manual_seed(0)
    t = torch.rand(1, 3, 16, 16)
    assert float(gradient_loss(t + 0.2, t)) < 1e-6
    seam = t.clone()
    seam[..., :, 8:] += 0.3
    assert float(gradient_loss(seam, t)) > 1e-3


def test_generator_loss_weights_and_terms():
    torch.manual_seed(0)
    pred, target = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    logits = torch.tensor([[0.3], [-0.2]])
    loss = GeneratorLoss(mse=2.0, perceptual=1.0, adversarial=0.5, gradient=0.0,
                         perceptual_loss=None, gan=GANLoss(0.01))
    total, terms = loss(pred, target, disc=lambda img: logits)
    assert set(terms) == {"mse", "adversarial"}  # no VGG: the perceptual term is dropped
    expected = 2.0 * torch.mean((pred - target) ** 2) + 0.5 * 0.01 * GANLoss()(logits, True)
    torch.testing.assert_close(total, expected)
    with pytest.raises(ValueError, match="discriminator"):
        loss(pred, target)


def test_vgg_weights_missing_or_corrupt_say_so(tmp_path, monkeypatch):
    from blendfix.errors import ChecksumError, MissingWeightsError
    from blendfix.nets.vgg16 import load_vgg16

    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth"):
        load_vgg16()
    torch.save(VGG16Features().state_dict(), tmp_path / "vgg16-397923af.pth")
    with pytest.raises(ChecksumError, match="397923af"):
        load_vgg16()


def test_vgg_loads_a_torchvision_layout_file(tmp_path):
    from blendfix.nets.vgg16 import load_vgg16

    sd = VGG16Features().state_dict()
    sd["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision files also hold the classifier
    torch.save(sd, tmp_path / "my_vgg16.pth")
    vgg = load_vgg16(tmp_path / "my_vgg16.pth")
    assert not vgg.training and not any(p.requires_grad for p in vgg.parameters())
    torch.testing.assert_close(vgg.features[28].weight, sd["features.28.weight"])
