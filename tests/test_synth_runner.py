"""The synth runner with a small fake item maker: resume, kill-safety, determinism, shards, merge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from synth_fakes import fake_factory

from blendfix.data import imageset, layout
from blendfix.errors import BlendfixError
from blendfix.io import write_image
from blendfix.synth.config import SynthConfig, choose_attribute, item_id, item_seed, parse_shard, shard_of
from blendfix.synth.merge import merge_datasets
from blendfix.synth.runner import SKIPPED, dataset_lock, run_synth

ROOT = Path(__file__).resolve().parents[1]
GOOD = ["a/one.png", "a/two.jpg", "b/three.png", "b/c/four.png", "five.png", "six.png", "seven.jpg", "eight.png"]


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for rel in [*GOOD, "noface.png"]:
        write_image(root / rel, rng.random((40, 40, 3), dtype=np.float32))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "notes.txt").write_text("not a photo")
    return root


def run(photos: Path, out: Path, **kw):
    cfg = SynthConfig(input=str(photos), seed=kw.pop("seed", 3))
    return run_synth(cfg, out, factory=fake_factory, progress=False, **kw)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def calls(log: Path) -> list[str]:
    return log.read_text().split("\n")[:-1] if log.exists() else []


def test_seeds_attributes_ids_and_shards_depend_only_on_seed_and_path():
    rels = [f"dir/{i}.png" for i in range(400)]
    assert item_seed(0, "x/a.png") == item_seed(0, "x/a.png")
    assert item_seed(0, "x/a.png") != item_seed(1, "x/a.png")
    assert len({item_seed(0, r) for r in rels}) == len(rels)
    counts = {a: sum(choose_attribute(0, r, ("eyebrows", "beard", "aging", "smile")) == a for r in rels)
              for a in ("eyebrows", "beard", "aging", "smile")}
    assert all(60 < n < 140 for n in counts.values()), counts
    assert {choose_attribute(5, r, ("smile",)) for r in rels} == {"smile"}
    ids = {item_id(r) for r in [*rels, "a/b.png", "a_b.png", "a/b.jpg", "é/ü.png"]}
    assert len(ids) == len(rels) + 4 and all("/" not in i and not i.startswith(".") for i in ids)
    assert sorted({shard_of(r, 4) for r in rels}) == [0, 1, 2, 3]
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_builds_the_layout_lists_skips_and_a_rerun_does_no_work(photos, tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_SYNTH_LOG", str(log))
    out = tmp_path / "set"
    s = run(photos, out)
    assert (s.photos, s.made, s.already_done) == (10, 8, 0)
    assert sorted((src.rsplit("/", 1)[1], kind) for src, kind, _ in s.skipped) == [
        ("broken.png", "unreadable"), ("noface.png", "no_face")]
    assert s.exit_code() == 0 and s.exit_code(strict=True) == 1
    records = imageset.read_records(out / layout.MANIFEST)
    assert [r["id"] for r in records] == sorted(item_id(r) for r in GOOD)
    for r in records:
        folder = out / layout.ITEMS / r["id"]
        assert sorted(p.name for p in folder.iterdir()) == sorted(layout.ITEM_FILES)
        assert json.loads((folder / layout.META).read_text()) == r
        assert r["seed"] == item_seed(3, r["rel"]) and r["source"] == str(photos / r["rel"])
        assert r["editor"] == "synthetic" and r["blendfix_version"] and r["checkpoints"] == {}
    assert {r["kind"] for r in imageset.read_records(out / SKIPPED)} == {"unreadable", "no_face"}
    assert (out / layout.CONFIG).is_file()
    n_calls, before = len(calls(log)), tree(out)

    again = run(photos, out)
    assert (again.made, again.already_done, again.skipped_before, again.skipped) == (0, 8, 2, [])
    assert again.exit_code() == 0 and again.exit_code(strict=True) == 1
    assert len(calls(log)) == n_calls and tree(out) == before

    retried = run(photos, out, retry_skipped=True)
    assert retried.made == 0 and len(retried.skipped) == 2 and len(calls(log)) == n_calls + 2
    assert tree(out) == before


def test_worker_count_and_batching_do_not_change_a_single_byte(photos, tmp_path):
    run(photos, tmp_path / "one", workers=1)
    s = run(photos, tmp_path / "two", workers=2)
    assert s.made == 8 and len(s.skipped) == 2
    run(photos, tmp_path / "batched", batch_size=3)
    reference = tree(tmp_path / "one")
    assert tree(tmp_path / "two") == reference
    assert tree(tmp_path / "batched") == reference


def test_a_killed_run_leaves_no_half_item_and_resumes_to_the_same_set(photos, tmp_path, monkeypatch):
    run(photos, tmp_path / "clean")
    out = tmp_path / "killed"
    code = (f"import sys; sys.path[:0] = [{str(ROOT / 'src')!r}, {str(ROOT / 'tests')!r}]\n"
            "from synth_fakes import fake_factory\n"
            "from blendfix.synth.config import SynthConfig\n"
            "from blendfix.synth.runner import run_synth\n"
            f"run_synth(SynthConfig(input={str(photos)!r}, seed=3), {str(out)!r}, factory=fake_factory,"
            " progress=False)\n")
    env = {**os.environ, "FAKE_SYNTH_DIE": "b/three.png", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 7, proc.stderr
    items = out / layout.ITEMS
    assert [p.name for p in items.iterdir() if p.name.endswith(".tmp")] == [f".{item_id('b/three.png')}.tmp"]
    recorded = {r["id"] for r in imageset.read_records(out / layout.MANIFEST)}
    finished = {p.name for p in items.iterdir() if not p.name.startswith(".")}
    assert recorded == finished and item_id("b/three.png") not in finished and len(finished) == 3

    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_SYNTH_LOG", str(log))
    s = run(photos, out)
    assert (s.already_done, s.made) == (3, 5)
    assert "b/three.png" in " ".join(calls(log)) and len(calls(log)) == 5 + 2  # 5 items + 2 skips
    assert tree(out) == tree(tmp_path / "clean")


def test_items_renamed_but_not_recorded_are_rerecorded_and_missing_ones_redone(photos, tmp_path, monkeypatch):
    out = tmp_path / "set"
    run(photos, out)
    reference = tree(out)
    man = out / layout.MANIFEST
    lines = man.read_text().splitlines(keepends=True)
    man.write_text("".join(lines[:-2]) + lines[-2][:25])  # died between rename and append, mid-line
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_SYNTH_LOG", str(log))
    s = run(photos, out)
    assert (s.rerecorded, s.made, s.already_done) == (2, 0, 6) and calls(log) == []
    assert tree(out) == reference

    gone = item_id("a/two.jpg")
    for f in (out / layout.ITEMS / gone).iterdir():
        f.unlink()
    (out / layout.ITEMS / gone).rmdir()
    (out / layout.ITEMS / item_id("five.png") / layout.TARGET).unlink()  # an incomplete folder
    s = run(photos, out)
    assert s.made == 2 and sorted(c.split()[1] for c in calls(log)) == ["a/two.jpg", "five.png"]
    assert tree(out) == reference


def test_shards_partition_the_photos_and_merge_to_the_single_run_set(photos, tmp_path):
    run(photos, tmp_path / "full")
    parts = [tmp_path / f"part{i}" for i in range(3)]
    made = [run(photos, p, shard=(i, 3)) for i, p in enumerate(parts)]
    assert sum(s.photos for s in made) == 10
    ids = [set(json.loads(line)["id"] for line in (p / layout.MANIFEST).read_text().splitlines()) for p in parts]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    m = merge_datasets(parts, tmp_path / "merged")
    assert (m.items, m.added, m.skipped) == (8, 8, 2)
    assert tree(tmp_path / "merged") == tree(tmp_path / "full")
    again = merge_datasets(parts[:1], tmp_path / "merged")
    assert again.added == 0 and again.duplicates == len(ids[0])
    run(photos, tmp_path / "other", seed=4, limit=2)
    with pytest.raises(BlendfixError, match="seed"):
        merge_datasets([parts[0], tmp_path / "other"], tmp_path / "bad")


def test_settings_clash_lock_and_total_failure_are_refused(photos, tmp_path):
    out = tmp_path / "set"
    run(photos, out, limit=2)
    with pytest.raises(BlendfixError, match="seed"):
        run(photos, out, seed=9)
    with dataset_lock(out), pytest.raises(BlendfixError, match="another"):
        run(photos, out)
    bad = tmp_path / "bad"
    (bad / "x.png").parent.mkdir()
    (bad / "x.png").write_bytes(b"")
    s = run(bad, tmp_path / "bad_set")
    assert s.exit_code() == 1 and s.skipped[0][1] == "unreadable"


def test_a_worker_process_dying_stops_the_run_cleanly_and_a_rerun_completes(photos, tmp_path, monkeypatch):
    run(photos, tmp_path / "clean")
    out = tmp_path / "set"
    monkeypatch.setenv("FAKE_SYNTH_DIE", "a/two.jpg")
    with pytest.raises(BlendfixError, match="rerun"):
        run(photos, out, workers=2)
    monkeypatch.delenv("FAKE_SYNTH_DIE")
    s = run(photos, out, workers=2)
    assert s.made + s.already_done + s.rerecorded == 8
    assert tree(out) == tree(tmp_path / "clean")


def test_cli_merges_shard_folders_and_explains_usage_mistakes(photos, tmp_path, capsys):
    from blendfix.cli import main

    parts = [tmp_path / f"part{i}" for i in range(2)]
    for i, p in enumerate(parts):
        run(photos, p, shard=(i, 2))
    run(photos, tmp_path / "full")
    assert main(["synth", "--merge", *map(str, parts), "-o", str(tmp_path / "merged")]) == 0
    assert "8 items" in capsys.readouterr().err
    assert tree(tmp_path / "merged") == tree(tmp_path / "full")
    assert main(["synth", "-o", str(tmp_path / "x")]) == 2
    assert "-i" in capsys.readouterr().err
    assert main(["synth", "--merge", "-o", str(tmp_path / "x")]) == 2
    assert main(["synth", "-i", str(photos), "-o", str(tmp_path / "x"), "--shard", "3/3"]) == 1
    assert "0 <= i < n" in capsys.readouterr().err
