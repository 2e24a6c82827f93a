"""The training-set Dataset: what a sample holds, aligned augmentations, deterministic split and order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from blend_toyset import make_toy_set

from blendfix.data import layout
from blendfix.data.dataset import BlendDataset, InfiniteSampler, collate, in_validation
from blendfix.io import write_image


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_set(tmp_path_factory.mktemp("toy"), n=10, size=64)


def test_sample_holds_aligned_unit_range_images_and_attribute(toy):
    ds = BlendDataset(toy, "all")
    s = ds[0]
    for k in ("original", "fused", "target"):
        assert s[k].shape == (3, 64, 64) and s[k].dtype == torch.float32
        assert float(s[k].min()) >= 0 and float(s[k].max()) <= 1
    assert s["attribute"] == "smile" and s["id"] == "item000"
    torch.testing.assert_close(s["target"], s["original"])  # the toy set's target is the original


def test_crop_and_flip_keep_the_three_images_aligned(toy):
    ds = BlendDataset(toy, "all", crop=32, flip=True)
    full = BlendDataset(toy, "all")[3]
    flips = 0
    for seed in range(12):
        s = ds[(3, seed)]
        assert s["original"].shape == (3, 32, 32)
        torch.testing.assert_close(s["target"], s["original"])
        # locate the crop in the full image (flipped or not) using the original, check fused matches there
        for flipped in (False, True):
            ref_o = full["original"].flip(-1) if flipped else full["original"]
            ref_f = full["fused"].flip(-1) if flipped else full["fused"]
            hits = [(t, l) for t in range(33) for l in range(33)
                    if torch.equal(ref_o[:, t:t + 32, l:l + 32], s["original"])]
            if hits:
                t, l = hits[0]
                assert torch.equal(ref_f[:, t:t + 32, l:l + 32], s["fused"])
                flips += flipped
                break
        else:
            pytest.fail("crop not found in the full image")
    assert 0 < flips < 12  # both flipped and unflipped samples occur
    assert torch.equal(ds[(3, 5)]["fused"], ds[(3, 5)]["fused"])  # a key always gives the same sample


def test_split_is_deterministic_disjoint_and_stable(toy, tmp_path):
    train, val = BlendDataset(toy, "train", val_fraction=0.3), BlendDataset(toy, "val", val_fraction=0.3)
    ids_t, ids_v = {p.name for p in train.items}, {p.name for p in val.items}
    assert ids_t.isdisjoint(ids_v) and len(ids_t | ids_v) == 10 and ids_v
    assert ids_v == {p.name for p in BlendDataset(toy, "val", val_fraction=0.3).items}
    # adding items never moves an existing item to the other split
    assert all(in_validation(i, 0.3) for i in ids_v) and not any(in_validation(i, 0.3) for i in ids_t)
    other_seed = {p.name for p in BlendDataset(toy, "val", val_fraction=0.3, split_seed=1).items}
    assert other_seed != ids_v or len(ids_v) == 0


def test_incomplete_items_and_bad_settings(toy, tmp_path):
    root = make_toy_set(tmp_path / "set", n=3, size=64)
    (root / layout.ITEMS / "item001" / layout.TARGET).unlink()
    (root / layout.ITEMS / ".item009.tmp").mkdir()
    assert [p.name for p in BlendDataset(root, "all").items] == ["item000", "item002"]
    write_image(root / layout.ITEMS / "item002" / layout.FUSED, np.zeros((40, 40, 3), np.float32))
    with pytest.raises(ValueError, match="differ in size"):
        BlendDataset(root, "all")[1]
    with pytest.raises(ValueError, match="larger than the images"):
        BlendDataset(root, "all", crop=128)[(0, 1)]
    with pytest.raises(FileNotFoundError, match="blendfix synth"):
        BlendDataset(tmp_path / "nothing")
    with pytest.raises(ValueError, match="split"):
        BlendDataset(root, "test")


def test_sampler_is_a_pure_function_of_step(toy):
    full = InfiniteSampler(10, batch_size=4, seed=3)
    it = iter(full)
    seq = [next(it) for _ in range(40)]
    later = iter(InfiniteSampler(10, batch_size=4, seed=3, start_step=5))
    assert [next(later) for _ in range(20)] == seq[20:40]
    # every epoch visits each item once
    assert sorted(i for i, _ in seq[:10]) == list(range(10))
    # two ranks split each global step without overlap
    r0 = iter(InfiniteSampler(10, 2, seed=3, rank=0, world=2))
    r1 = iter(InfiniteSampler(10, 2, seed=3, rank=1, world=2))
    assert [next(r0), next(r0), next(r1), next(r1)] == seq[:4]


def test_collate_stacks_images(toy):
    ds = BlendDataset(toy, "all")
    batch = collate([ds[0], ds[1]])
    assert batch["fused"].shape == (2, 3, 64, 64) and batch["attribute"] == ["smile", "beard"]


def test_items_come_from_the_manifest_when_there_is_one(tmp_path):
    import json

    root = make_toy_set(tmp_path / "set", n=4, size=64)
    lines = [json.dumps({"id": "item002"}), json.dumps({"id": "item000"}), json.dumps({"id": "item000"})]
    (root / layout.MANIFEST).write_text("\n".join(lines) + '\n{"id": "item00')  # killed mid-append
    assert [p.name for p in BlendDataset(root, "all").items] == ["item000", "item002"]
    (root / layout.MANIFEST).write_text("not json\n" + "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="line 1"):
        BlendDataset(root, "all")
