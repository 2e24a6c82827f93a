"""The released code's fusion (mouth wholly from T) and Diff-CAM smoothing options (aug/eigen)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blendfix.blend.fuse import fuse, fusion_weight
from blendfix.edit.base import EditResult
from blendfix.edit.fusion import apply_fusion
from blendfix.nets.diffcam import DiffCAM, diffcam_mask, eigen_modulate, released_cam_options, smoothed_heatmap
from blendfix.parsing.labels import LABEL

TINY = {"num_classes": 17, "layers": (1, 1, 2, 1), "width": 4, "split": 1}


def _triple(seed: int = 0, size: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.random((size, size, 3), dtype=np.float32), rng.random((size, size, 3), dtype=np.float32),
            rng.random((size, size), dtype=np.float32))


def test_released_formula_equals_paper_fusion_with_the_weight() -> None:
    t, i, h = _triple()
    r = np.zeros_like(h)
    r[10:20, 5:30] = 1  # the mouth
    m2 = 1 - r
    released = t * (h * m2 + (1 - m2))[..., None] + i * (m2 * (1 - h))[..., None]
    np.testing.assert_allclose(fuse(t, i, h, from_edited=r), released, atol=1e-6)
    np.testing.assert_allclose(fuse(t, i, fusion_weight(h, r)), released, atol=1e-6)
    assert np.array_equal(fuse(t, i, h, from_edited=r)[r > 0], t[r > 0])  # mouth wholly from T
    np.testing.assert_allclose(fuse(t, i, h, from_edited=np.zeros_like(h)), fuse(t, i, h), atol=1e-7)


def test_fusion_weight_tensor_matches_numpy_and_is_differentiable() -> None:
    _, _, h = _triple(1)
    r = (np.arange(40)[:, None] + np.zeros((1, 40)) > 25).astype(np.float32)
    ht = torch.from_numpy(h)[None, None].requires_grad_(True)
    wt = fusion_weight(ht, torch.from_numpy(r)[None, None])
    np.testing.assert_allclose(wt.detach()[0, 0].numpy(), fusion_weight(h, r), atol=1e-7)
    wt.sum().backward()
    assert torch.equal(ht.grad[0, 0] == 0, torch.from_numpy(r > 0))  # no gradient where T is taken whole
    with pytest.raises(ValueError, match="does not match"):
        fusion_weight(h, r[:10])


class _FakeParser:
    """Labels: mouth at rows 10-14 in I, lips at rows 16-19 in T (the edit moved the mouth)."""

    def parse(self, image: np.ndarray, source: str | None = None) -> np.ndarray:
        labels = np.full(image.shape[:2], LABEL["skin"], np.int64)
        if str(source).startswith("T of"):
            labels[16:20, 8:30] = LABEL["u_lip"]
        else:
            labels[10:15, 8:30] = LABEL["mouth"]
        return labels


def _result(attribute: str) -> EditResult:
    t, i, h = _triple(2)
    return EditResult(original=i, inverted=t, edited=t, mask=h, attribute=attribute, info={"editor": "test"})


def test_apply_fusion_takes_the_union_of_both_mouths_for_smile() -> None:
    res = _result("smile")
    out = apply_fusion(res, "released", _FakeParser(), source="photo.png")
    union = np.zeros((40, 40), bool)
    union[10:15, 8:30] = union[16:20, 8:30] = True
    assert (out.mask[union] == 1).all()
    np.testing.assert_array_equal(out.mask[~union], res.mask[~union])
    assert out.info["fusion"] == "released" and out.info["mouth_fraction"] == pytest.approx(union.mean())
    np.testing.assert_array_equal(out.fused[union], res.edited[union])


@pytest.mark.parametrize(("attribute", "fusion"), [("beard", "released"), ("eyebrows", "released"),
                                                    ("smile", "paper")])
def test_apply_fusion_leaves_other_cases_alone(attribute: str, fusion: str) -> None:
    res = _result(attribute)
    out = apply_fusion(res, fusion, _FakeParser())
    np.testing.assert_array_equal(out.mask, res.mask)
    assert out.info["fusion"] == fusion


def test_apply_fusion_rejects_unknown_fusion() -> None:
    with pytest.raises(ValueError, match="paper, released"):
        apply_fusion(_result("smile"), "average", _FakeParser())


def test_eigen_modulate_on_rank_one_activations() -> None:
    """A_c = w_c * P: u1 is P up to sign and offset, so the result is minmax(P) * (sum w) * P."""
    rng = np.random.default_rng(3)
    p = torch.from_numpy(rng.random((5, 6))).float()
    w = torch.tensor([0.5, 1.0, -0.2, 0.3])
    weighted = (w[:, None, None] * p)[None]
    expected = (p - p.min()) / (p.max() - p.min() + 1e-8) * w.sum() * p
    torch.testing.assert_close(eigen_modulate(weighted)[0], expected.clamp(min=0), atol=1e-5, rtol=1e-4)


def test_aug_smooth_is_mirror_equivariant_and_in_range() -> None:
    torch.manual_seed(0)
    model = DiffCAM(**TINY)
    x = torch.rand(2, 6, 64, 64) * 2 - 1
    for eigen in (False, True):
        heat = smoothed_heatmap(model, x, "smile", aug_smooth=True, eigen_smooth=eigen)
        mirrored = smoothed_heatmap(model, x.flip(-1), "smile", aug_smooth=True, eigen_smooth=eigen)
        assert heat.shape == (2, 64, 64) and heat.min() >= 0 and heat.max() <= 1
        torch.testing.assert_close(mirrored, heat.flip(-1), atol=1e-5, rtol=1e-4)
    plain = smoothed_heatmap(model, x, "smile")
    assert not torch.allclose(plain, smoothed_heatmap(model, x, "smile", aug_smooth=True))


def test_released_cam_options_and_mask_api() -> None:
    assert released_cam_options("smile") == {"aug_smooth": True, "eigen_smooth": True}
    assert released_cam_options("aging") == {"aug_smooth": True, "eigen_smooth": False}
    torch.manual_seed(1)
    model = DiffCAM(**TINY)
    inv, edi = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    m = diffcam_mask(model, inv, edi, "smile", input_size=64, **released_cam_options("smile"))
    assert m.shape == (1, 1, 64, 64) and 0 <= float(m.min()) and float(m.max()) <= 1


def test_synth_and_edit_with_released_fusion_take_the_mouth_from_t(faces_dir, tmp_path) -> None:
    """A real face, smile: in the item the mouth is T's, mask.png is the fusion weight (1 there), and
    F = T*M + I*(1-M) still holds for the files; `edit --fusion released` writes the same kind of files."""
    import json

    from conftest import need

    from blendfix.cli import main
    from blendfix.io import read_image, read_mask
    from blendfix.parsing import get_parser, region

    photo = need(faces_dir / "celebamask_hq_512" / "0.jpg", "celebamask_hq_512/0.jpg")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "0.jpg").symlink_to(photo)
    out = tmp_path / "set"
    assert main(["synth", "-i", str(tmp_path / "p"), "-o", str(out), "--resolution", "128", "--attributes",
                 "smile", "--fusion", "released"]) == 0
    item = next((out / "items").iterdir())
    orig, edited, fused = (read_image(item / f"{n}.png") for n in ("original", "edited", "fused"))
    mask = read_mask(item / "mask.png")
    mouth = region(get_parser("landmarks").parse(orig, "I"), ("mouth", "u_lip", "l_lip"))
    assert mouth.sum() > 20
    assert (mask[mouth] == 1).all()
    np.testing.assert_allclose(fused[mouth], edited[mouth], atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(fused, edited * mask[..., None] + orig * (1 - mask[..., None]), atol=2 / 255)
    rec = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert rec["editor_info"]["fusion"] == "released" and rec["editor_info"]["mouth_fraction"] > 0
    assert "fusion: released" in (out / "config.yaml").read_text()

    for fusion in ("paper", "released"):
        assert main(["edit", "-i", str(photo), "-a", "smile", "--resolution", "128", "--fusion", fusion,
                     "-o", str(tmp_path / fusion)]) == 0
    paper_m, released_m = (read_mask(tmp_path / f / "0_mask.png") for f in ("paper", "released"))
    assert (released_m >= paper_m - 1e-6).all() and released_m.sum() > paper_m.sum()
