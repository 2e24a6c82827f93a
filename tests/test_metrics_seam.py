"""Seam score and edit-kept score on constructed images whose right value is known."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from blendfix.metrics.seam import (
    band_overlay,
    band_radius,
    edit_kept,
    edit_region,
    seam_band,
    seam_score,
)

SIZE = 128
DELTA = np.array([0.25, 0.12, -0.15], np.float32)  # the edit: a colour change inside a disk


def _base(seed: int = 0) -> np.ndarray:
    """A photo-like texture: smooth ramps plus fine, low-amplitude grain, in [0.2, 0.8]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1.0)
    smooth = np.stack([0.5 + 0.2 * yy, 0.45 + 0.15 * xx, 0.4 + 0.1 * np.sin(4 * xx)], axis=2)
    grain = cv2.GaussianBlur(rng.normal(0, 0.03, (SIZE, SIZE, 3)).astype(np.float32), (0, 0), 0.8)
    return np.clip(smooth + grain, 0, 1).astype(np.float32)


def _disk(radius: float = 30.0) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return (((yy - 64) ** 2 + (xx - 60) ** 2) <= radius**2).astype(np.float32)


def _feathered(sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(_disk(), (0, 0), sigma)


@pytest.fixture()
def scene() -> dict[str, np.ndarray]:
    """I, a truth with a wide soft edit, F pasted with a hard mask, F pasted with a feathered mask."""
    orig = _base()
    hard, soft = _disk(), _feathered(8.0)
    truth = np.clip(orig + DELTA * soft[..., None], 0, 1)
    return {"I": orig, "truth": truth, "hard": np.clip(orig + DELTA * hard[..., None], 0, 1),
            "feathered": np.clip(orig + DELTA * _feathered(7.0)[..., None], 0, 1), "mask": hard}


def test_band_radius_scales_with_image_size() -> None:
    assert band_radius(256, 256) == 3
    assert band_radius(512, 384) == 5
    assert band_radius(1024, 1024) == 12
    assert band_radius(32, 32) == 1


def test_band_is_a_ring_of_width_2r_around_the_boundary() -> None:
    region = edit_region(_disk(30.0))
    band = seam_band(region, 3)
    yy, xx = np.nonzero(band)
    dist = np.hypot(yy - 64, xx - 60)
    assert dist.min() >= 30 - 3 - 1 and dist.max() <= 30 + 3 + 1
    # r pixels on each side: the ring's area is about 2*pi*R * 2r
    assert band.sum() == pytest.approx(2 * np.pi * 30 * 6, rel=0.05)


def test_region_threshold_is_half_the_maximum_so_folded_masks_work() -> None:
    m = _feathered(6.0)
    folded = np.where(m > 0.5, 1 - m, m) * 0  # a map with no region at all
    assert not edit_region(folded).any()
    half = 0.5 * m  # an EOGI-style mask that never exceeds 0.5
    assert (edit_region(half) == edit_region(m)).all()


def test_hard_step_scores_high_feathered_about_one(scene: dict[str, np.ndarray]) -> None:
    hard = seam_score(scene["hard"], scene["truth"], scene["mask"])
    feathered = seam_score(scene["feathered"], scene["truth"], scene["mask"])
    assert hard > 5.0
    assert 0.85 < feathered < 1.2
    # with I as the reference (no truth) the edit's own soft ramp adds a little energy, a step much more
    hard_i = seam_score(scene["hard"], scene["I"], scene["mask"])
    feathered_i = seam_score(scene["feathered"], scene["I"], scene["mask"])
    assert feathered_i < 2.0
    assert hard_i > 10 * feathered_i


def test_returning_the_reference_scores_exactly_one(scene: dict[str, np.ndarray]) -> None:
    assert seam_score(scene["truth"], scene["truth"], scene["mask"]) == pytest.approx(1.0, abs=1e-12)


def test_blurring_the_band_scores_below_one(scene: dict[str, np.ndarray]) -> None:
    blurred = cv2.GaussianBlur(scene["truth"], (0, 0), 2.0)
    assert seam_score(blurred, scene["truth"], scene["mask"]) < 0.5


def test_seam_score_within_restricts_the_band(scene: dict[str, np.ndarray]) -> None:
    # the hard step only on the left half of the disk; the right half is the truth
    mixed = scene["truth"].copy()
    mixed[:, :60] = scene["hard"][:, :60]
    left = np.zeros((SIZE, SIZE), np.float32)
    left[:, :55] = 1
    right = 1 - left
    right[:, :66] = 0
    assert seam_score(mixed, scene["truth"], scene["mask"], within=left) > 5.0
    assert seam_score(mixed, scene["truth"], scene["mask"], within=right) == pytest.approx(1.0, abs=1e-9)


def test_edit_kept_zero_for_original_one_for_truth(scene: dict[str, np.ndarray]) -> None:
    I, truth, mask = scene["I"], scene["truth"], scene["mask"]
    assert edit_kept(I, I, truth, mask) == 0.0
    assert edit_kept(truth, I, truth, mask) == pytest.approx(1.0)
    half = I + 0.5 * (truth - I)
    assert edit_kept(half, I, truth, mask) == pytest.approx(0.5, abs=0.01)
    # no truth: F is the reference, so returning F keeps all of it
    assert edit_kept(scene["hard"], I, scene["hard"], mask) == pytest.approx(1.0)


def test_undefined_cases_are_nan(scene: dict[str, np.ndarray]) -> None:
    I = scene["I"]
    empty = np.zeros((SIZE, SIZE), np.float32)
    assert math.isnan(seam_score(I, I, empty))
    assert math.isnan(edit_kept(I, I, scene["truth"], empty))
    assert math.isnan(edit_kept(I, I, I, scene["mask"]))  # nothing edited: nothing to keep


def test_uint8_inputs_match_float(scene: dict[str, np.ndarray]) -> None:
    u8 = {k: np.rint(v * 255).astype(np.uint8) for k, v in scene.items()}
    f = {k: v.astype(np.float32) / 255.0 for k, v in u8.items()}
    assert seam_score(u8["hard"], u8["truth"], u8["mask"]) == pytest.approx(
        seam_score(f["hard"], f["truth"], f["mask"]), rel=1e-6)
    assert edit_kept(u8["hard"], u8["I"], u8["truth"], u8["mask"]) == pytest.approx(
        edit_kept(f["hard"], f["I"], f["truth"], f["mask"]), rel=1e-6)


def test_bad_inputs_raise_with_the_reason(scene: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="differ in size"):
        seam_score(scene["I"][:64], scene["truth"], scene["mask"])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        seam_score(scene["I"], scene["truth"], scene["mask"] * 3)
    with pytest.raises(ValueError, match="RGB"):
        edit_kept(scene["I"][..., 0], scene["I"], scene["truth"], scene["mask"])


def test_band_overlay_marks_the_band_red(scene: dict[str, np.ndarray]) -> None:
    over = band_overlay(scene["I"], scene["mask"])
    band = seam_band(edit_region(scene["mask"]), band_radius(SIZE, SIZE))
    assert over.shape == scene["I"].shape
    assert (over[band][:, 0] > over[band][:, 1]).all()
    far = ~seam_band(edit_region(scene["mask"]), 8)
    outside = far & (scene["mask"] == 0)
    assert np.array_equal(over[outside], scene["I"][outside])  # untouched outside the region
    assert not np.array_equal(over[far], scene["I"][far])  # the eroded core is tinted


def test_change_field_seam_sees_a_paste_step_that_edges_of_the_photo_would_hide(scene) -> None:
    """With I given (what evaluate does), the score looks at the change out - I across the boundary."""
    I = scene["I"]
    hard = seam_score(scene["hard"], scene["truth"], scene["mask"], original=I)
    same = seam_score(scene["truth"], scene["truth"], scene["mask"], original=I)
    undone = seam_score(I, scene["truth"], scene["mask"], original=I)
    assert hard > 20.0 and same == pytest.approx(1.0, abs=1e-12) and undone < 0.1
    # a strong photo edge along the boundary (hair, a jaw line) in I, out and truth alike: unchanged scores
    edge = 0.6 * I + 0.2 * (scene["mask"] > 0.5)[..., None] * (np.arange(SIZE) % 2)[None, :, None]
    for name in ("hard", "truth"):
        moved = scene[name] - I + edge
        assert 0 <= moved.min() and moved.max() <= 1  # no clipping: the same change on another photo
        got = seam_score(moved, scene["truth"] - I + edge, scene["mask"], original=edge)
        want = seam_score(scene[name], scene["truth"], scene["mask"], original=I)
        assert got == pytest.approx(want, rel=1e-6)
        # the raw-image score (no original) is swamped by the photo's edge: the step hardly shows
        assert seam_score(moved, scene["truth"] - I + edge, scene["mask"]) < 0.5 * want or name == "truth"


def test_edit_kept_does_not_count_an_artifact_as_the_edit(scene) -> None:
    """A tint the truth does not have (orthogonal to the edit) neither adds to nor is the edit."""
    I, truth, m = scene["I"], scene["truth"], scene["mask"]
    change = truth - I
    direction = np.cross(DELTA, [1.0, 1.0, 1.0])  # a colour cast orthogonal to the edit's colour change
    tint = 0.05 * (direction / np.linalg.norm(direction))[None, None, :] * (m > 0.5)[..., None]
    assert abs(float((tint * change).sum())) < 1e-3 * float(np.abs(change).sum())
    assert edit_kept(I + tint, I, truth, m) == pytest.approx(0.0, abs=0.02)
    assert edit_kept(truth + tint, I, truth, m) == pytest.approx(1.0, abs=0.02)
    assert edit_kept(I + 0.5 * change, I, truth, m) == pytest.approx(0.5, abs=1e-6)
