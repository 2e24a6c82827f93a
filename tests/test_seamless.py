"""Poisson cloning against OpenCV 5.0's reference outputs (fixture seamless_clone), both backends."""

from __future__ import annotations

import json
import warnings

import cv2
import numpy as np
import pytest
import torch

from blendfix.blend import poisson_torch as pt
from blendfix.blend import seamless_clone


@pytest.fixture(scope="module")
def sc(fixture):
    fx = fixture("seamless_clone")
    fx.cases = json.loads((fx.path / "cases.json").read_text())["cases"]
    tol = {"max_abs": 1, "max_frac": 0.03}  # the fixture README's recommended check
    fx.tol = tol
    return fx


def _case(sc, k):
    return sc.inputs[f"case{k}_src"], sc.inputs[f"case{k}_dst"], sc.inputs[f"case{k}_mask"]


def _roi_outside(shape, roi):
    x, y, w, h = roi
    out = np.ones(shape[:2], bool)
    out[y:y + h, x:x + w] = False
    return out


def _assert_close(ours, ref, tol, what):
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert diff.max() <= tol["max_abs"], f"{what}: max diff {diff.max()}"
    assert (diff > 0).mean() <= tol["max_frac"], f"{what}: {(diff > 0).mean():.2%} of values differ"


def _smooth(rng, h, w):
    noise = rng.normal(size=(h, w, 3)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), 4)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).round().astype(np.uint8)


def _ellipse(h, w, cx, cy, ax, ay):
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (cx, cy), (ax, ay), 0, 0, 360, 255, -1)
    return m


# ---- opencv backend ---------------------------------------------------------------------------

def test_opencv_raw_center_reproduces_every_reference_bit_for_bit(sc):
    for c in sc.cases:
        k = c["case"]
        s, d, m = _case(sc, k)
        out = seamless_clone(s, d, m, backend="opencv", center="bbox_raw")
        assert np.array_equal(out, sc.outputs[f"case{k}_out"]), c["name"]


def test_opencv_paper_center_reproduces_every_blending_reference(sc):
    for c in sc.cases:
        k = c["case"]
        s, d, m = _case(sc, k)
        out = seamless_clone(s, d, m, backend="opencv", center="paper")
        assert np.array_equal(out, sc.outputs[f"case{k}_out_blending_center"]), c["name"]


def test_opencv_bbox_center_is_the_reference_and_never_shifts(sc):
    for c in sc.cases:
        k = c["case"]
        s, d, m = _case(sc, k)
        m_before = m.copy()
        out = seamless_clone(s, d, m, backend="opencv")
        assert np.array_equal(m, m_before), "the caller's mask was modified"
        if not c["shifted"]:
            assert np.array_equal(out, sc.outputs[f"case{k}_out"]), c["name"]
        elif c["offset_vs_mask_blending"] == [0, 0]:
            # the paper's center happens to paste this border-touching mask in place: same result
            assert np.array_equal(out, sc.outputs[f"case{k}_out_blending_center"]), c["name"]


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_border_touching_mask_is_cloned_in_place(sc, backend):
    """Clone dst into itself: in place it returns dst (+-1); shifted by a pixel it would not."""
    shifted = [c for c in sc.cases if c["shifted"]]
    assert shifted, "the fixture has a border-touching case"
    for c in shifted:
        _, d, m = _case(sc, c["case"])
        out = seamless_clone(d, d, m, backend=backend)
        assert np.abs(out.astype(int) - d).max() <= 1
        raw = seamless_clone(d, d, m, backend="opencv", center="bbox_raw")
        assert np.abs(raw.astype(int) - d).max() > 1  # what the plain OpenCV call does


@pytest.mark.parametrize("backend", ["opencv", "torch"])
@pytest.mark.parametrize("region", [(slice(None), slice(0, 21)), (slice(3, 30), slice(27, None)),
                                    (slice(None), slice(None)), (slice(0, 13), slice(4, 40))])
def test_synthetic_border_masks_stay_in_place(backend, region):
    rng = np.random.default_rng(8)
    d = _smooth(rng, 40, 48)
    m = np.zeros((40, 48), np.uint8)
    m[region] = 255
    out = seamless_clone(d, d, m, backend=backend)  # dst into itself: in place gives dst back (+-1)
    assert np.abs(out.astype(int) - d).max() <= 1


# ---- torch backend ----------------------------------------------------------------------------

def test_torch_matches_opencv_on_every_unshifted_case(sc):
    for c in sc.cases:
        k = c["case"]
        s, d, m = _case(sc, k)
        ours = seamless_clone(s, d, m, backend="torch")
        ref = sc.outputs[f"case{k}_out"] if not c["shifted"] else seamless_clone(s, d, m, backend="opencv")
        _assert_close(ours, ref, sc.tol, c["name"])
        roi = c["roi_d"] if not c["shifted"] else c["boundingRect_after_frame_zeroing"]
        outside = _roi_outside(d.shape, roi)
        assert np.array_equal(ours[outside], d[outside]), f"{c['name']}: changed outside the rectangle"


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 2e-4), (torch.float32, 1e-2)])
def test_torch_solution_satisfies_the_poisson_equation(sc, dtype, tol):
    """lap(u) = div(v) before quantisation, to well under the 0.06-level margin truncation cares about.

    (float64 is not exact to 1e-12 because the eigenvalues are rounded to float32 as OpenCV does.)
    """
    s, d, m = _case(sc, 0)
    src = torch.from_numpy(s).permute(2, 0, 1)[None].to(dtype)
    dst = torch.from_numpy(d).permute(2, 0, 1)[None].to(dtype)
    w = torch.from_numpy(m)[None, None].to(dtype) / 255
    (x, y, rw, rh), = pt.bounding_rects(pt.mask_support(w))
    patch, dc, wc = (t[..., y:y + rh, x:x + rw] for t in (src, dst, w))
    weights = pt.erode7(wc)
    rhs = pt.poisson_rhs(patch, dc, weights)
    u = pt.solve_dirichlet(rhs)
    residual = pt.laplacian_residual(u, patch, dc, weights)
    assert residual.abs().max() < tol  # levels; the divergence itself reaches hundreds
    assert rhs.abs().max() > 100


@pytest.mark.parametrize("h, w", [(3, 3), (4, 5), (5, 4), (7, 12), (16, 9), (31, 30), (40, 57)])
def test_torch_matches_opencv_on_small_and_odd_rectangles(h, w):
    """Every rectangle size (odd and even DST lengths, down to a 1-pixel interior) agrees with OpenCV."""
    rng = np.random.default_rng(h * 100 + w)
    s, d = rng.integers(0, 256, (64, 72, 3), dtype=np.uint8), rng.integers(0, 256, (64, 72, 3), dtype=np.uint8)
    m = np.zeros((64, 72), np.uint8)
    m[5:5 + h, 9:9 + w] = 255
    m[5 + h // 2, 9 + w // 2] = 200  # a soft value inside
    ours, ref = seamless_clone(s, d, m), seamless_clone(s, d, m, backend="opencv")
    _assert_close(ours, ref, {"max_abs": 1, "max_frac": 0.01}, f"{h}x{w}")
    if h > 7 and w > 7:
        assert np.abs(ours.astype(int) - d).max() > 10  # something was cloned


def test_erosion_is_a_7x7_minimum_with_zero_outside():
    m = torch.zeros(1, 1, 20, 20)
    m[..., 2:18, 2:18] = 1.0
    e = pt.erode7(m)
    ref = cv2.erode((m[0, 0].numpy() * 255).astype(np.uint8), np.ones((3, 3), np.uint8), iterations=3,
                    borderType=cv2.BORDER_CONSTANT, borderValue=0)
    assert np.array_equal((e[0, 0].numpy() * 255).astype(np.uint8), ref)


def _batch_inputs(rng, n=4, h=48, w=64):
    src = np.stack([_smooth(rng, h, w) for _ in range(n)])
    dst = np.stack([_smooth(rng, h, w) for _ in range(n)])
    masks = np.stack([_ellipse(h, w, 30, 24, 14, 12), _ellipse(h, w, 34, 20, 14, 12),  # same rect size
                      _ellipse(h, w, 50, 30, 20, 25),  # touches the border
                      _ellipse(h, w, 20, 22, 9, 15)])[:n]
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    return to_t(src), to_t(dst), torch.from_numpy(masks)[:, None].float() / 255


def _u8(t):
    return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def test_batch_equals_per_image_and_numpy_api():
    rng = np.random.default_rng(1)
    src, dst, mask = _batch_inputs(rng)
    batch = seamless_clone(src, dst, mask)
    for b in range(src.shape[0]):
        one = seamless_clone(src[b:b + 1], dst[b:b + 1], mask[b:b + 1])
        assert torch.equal(batch[b:b + 1], one)
        np_out = seamless_clone(_u8(src[b]), _u8(dst[b]), (mask[b, 0].numpy() * 255).round().astype(np.uint8))
        diff = np.abs(np_out.astype(int) - (batch[b].permute(1, 2, 0).numpy() * 255).round())
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float x/255*255 may sit an ulp off a level


def test_tensor_output_is_dst_outside_the_rectangle_and_quantised_inside():
    rng = np.random.default_rng(2)
    src, dst, mask = _batch_inputs(rng, n=2)
    dst = (dst + torch.rand_like(dst) * 1e-3).clamp(0, 1)  # values between 8-bit levels must survive
    out = seamless_clone(src, dst, mask)
    rects = pt.bounding_rects(pt.mask_support(mask))
    for b, (x, y, w, h) in enumerate(rects):
        inside = torch.zeros(out.shape[-2:], dtype=torch.bool)
        inside[y + 1:y + h - 1, x + 1:x + w - 1] = True
        assert torch.equal(out[b][:, ~inside], dst[b][:, ~inside])
        levels = out[b][:, inside] * 255
        assert torch.allclose(levels, levels.round(), atol=1e-4)
        assert out.min() >= 0 and out.max() <= 1


def test_gradients_flow_without_quantisation():
    rng = np.random.default_rng(3)
    src, dst, mask = _batch_inputs(rng, n=1, h=20, w=24)
    mask = torch.from_numpy(_ellipse(20, 24, 12, 10, 9, 8))[None, None].float() / 255
    src64, dst64 = src.double().requires_grad_(), dst.double().requires_grad_()
    out = seamless_clone(src64, dst64, mask.double(), quantize=False)
    assert out.requires_grad and not torch.equal(out, out.floor())
    out.square().sum().backward()
    assert src64.grad.abs().sum() > 0 and dst64.grad.abs().sum() > 0
    soft = mask.double().mul(0.8).requires_grad_()  # weights (eroded mask) get gradients too
    seamless_clone(src64.detach(), dst64.detach(), soft, quantize=False).square().sum().backward()
    assert soft.grad.abs().sum() > 0
    fn = lambda s, d: seamless_clone(s, d, mask.double(), quantize=False)  # noqa: E731
    s2, d2 = src64.detach().requires_grad_(), dst64.detach().requires_grad_()
    assert torch.autograd.gradcheck(fn, (s2, d2), eps=1e-6, atol=1e-5, fast_mode=True)


def test_torch_center_paper_is_refused():
    x = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="backend='opencv'"):
        seamless_clone(x, x, np.zeros((8, 8), np.uint8), center="paper")


# ---- awkward masks ----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["opencv", "torch"])
@pytest.mark.parametrize("kind", ["empty", "tiny", "frame_only"])
def test_degenerate_masks_return_dst_with_a_warning(backend, kind):
    rng = np.random.default_rng(4)
    s, d = _smooth(rng, 40, 48), _smooth(rng, 40, 48)
    m = np.zeros((40, 48), np.uint8)
    if kind == "tiny":
        m[10:12, 10:30] = 255  # 2 rows: OpenCV itself crashes on this
    elif kind == "frame_only":
        m[0, :] = 255
    with pytest.warns(UserWarning, match="returning dst unchanged"):
        out = seamless_clone(s, d, m, backend=backend)
    assert np.array_equal(out, d)
    with pytest.warns(UserWarning, match="returning dst unchanged"):
        t = seamless_clone(torch.rand(2, 3, 40, 48), torch.rand(2, 3, 40, 48),
                           torch.from_numpy(np.stack([m, m]))[:, None].float() / 255, backend=backend)
    assert t.shape == (2, 3, 40, 48)


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_full_mask_and_soft_and_three_channel_masks(backend):
    rng = np.random.default_rng(5)
    s, d = _smooth(rng, 40, 48), _smooth(rng, 40, 48)
    full = seamless_clone(s, d, np.full((40, 48), 255, np.uint8), backend=backend)
    assert np.array_equal(full[0], d[0]) and np.array_equal(full[:, -1], d[:, -1])
    noisy = rng.integers(80, 176, s.shape, dtype=np.uint8)  # src's Laplacian inside, up to truncation/clipping
    full = seamless_clone(noisy, d, np.full((40, 48), 255, np.uint8), backend=backend)
    lap = lambda a: cv2.Laplacian(a.astype(np.float32), cv2.CV_32F)[5:-5, 5:-5]  # noqa: E731
    assert np.percentile(np.abs(lap(full) - lap(noisy)), 99) <= 4 < np.abs(lap(full) - lap(d)).mean()
    m = _ellipse(40, 48, 24, 20, 15, 14)
    three = seamless_clone(s, d, np.repeat(m[..., None], 3, axis=2), backend=backend)
    assert np.array_equal(three, seamless_clone(s, d, m, backend=backend))
    soft = seamless_clone(s, d, (m // 2).astype(np.uint8), backend=backend)  # weights 0.5: between
    hard = seamless_clone(s, d, m, backend=backend)
    assert 0 < np.abs(soft.astype(int) - d).sum() < np.abs(hard.astype(int) - d).sum()


def test_zero_one_uint8_mask_warns():
    x = np.zeros((40, 40, 3), np.uint8)
    m = _ellipse(40, 40, 20, 20, 10, 10) // 255
    with pytest.warns(UserWarning, match="maximum is 1"):
        seamless_clone(x, x, m)


def test_bad_arguments_raise_clear_errors():
    x = np.zeros((40, 48, 3), np.uint8)
    m = np.zeros((40, 48), np.uint8)
    with pytest.raises(ValueError, match="differ in size"):
        seamless_clone(x, np.zeros((40, 40, 3), np.uint8), m)
    with pytest.raises(ValueError, match="does not match"):
        seamless_clone(x, x, np.zeros((20, 24), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        seamless_clone(x.astype(np.float32), x, m)
    with pytest.raises(ValueError, match="backend"):
        seamless_clone(x, x, m, backend="scipy")


def test_opencv_backend_on_tensors_matches_numpy():
    rng = np.random.default_rng(6)
    src, dst, mask = _batch_inputs(rng, n=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = seamless_clone(src, dst, mask, backend="opencv")
    ref = seamless_clone(src, dst, mask, backend="torch")
    assert (out - ref).abs().max() <= 1 / 255 + 1e-6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(7)
    src, dst, mask = _batch_inputs(rng)
    cpu = seamless_clone(src, dst, mask)
    gpu = seamless_clone(src.cuda(), dst.cuda(), mask.cuda())
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max() <= 1 / 255 + 1e-6
    assert ((gpu.cpu() - cpu).abs() > 1e-6).float().mean() < 0.01
