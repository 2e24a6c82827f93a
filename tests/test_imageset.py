"""The image-set layout: manifest records, the one reader/writer, stem pairing, and the verbs chained on one set."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from blendfix.cli import main
from blendfix.data.imageset import (
    ImageSet,
    ItemRecord,
    append_records,
    collect,
    read_records,
    role_file,
)
from blendfix.io import read_image, read_mask, write_image, write_mask


def test_record_round_trip_keeps_the_writers_fields():
    rec = ItemRecord.from_dict({"id": "a_smile", "source": "p/a.jpg", "attribute": "smile", "kind": "synthetic",
                                "roles": ["fused", "original"], "seed": 3})
    assert rec.extra == {"seed": 3}
    again = ItemRecord.from_dict(rec.with_roles(["cleaned/poisson", "face_mask"]).to_dict())
    assert again.roles == ("face_mask", "fused", "original", "cleaned/poisson") and again.extra == {"seed": 3}
    assert role_file("cleaned/poisson") == "cleaned/poisson.png"
    with pytest.raises(ValueError, match="unknown image role 'masks'"):
        role_file("masks")


def test_reader_ignores_a_cut_off_last_line_and_the_writer_appends_after_it(tmp_path):
    path = tmp_path / "manifest.jsonl"
    append_records(path, [{"id": "a", "attribute": "smile"}, {"id": "b", "attribute": "beard"}])
    with open(path, "ab") as fh:
        fh.write(b'{"id": "c", "attrib')  # a writer killed mid-line
    assert [r["id"] for r in read_records(path)] == ["a", "b"]
    append_records(path, [{"id": "a", "attribute": "aging"}])  # a later line for an id replaces the earlier one
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b", "a"]
    s = ImageSet(tmp_path)
    assert [(r.id, r.attribute) for r in s.records()] == [("a", "aging"), ("b", "beard")]
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        read_records(path)


def test_plain_folders_pair_by_stem_or_stem_with_the_role_tag(tmp_path):
    img = np.full((40, 40, 3), 0.5, np.float32)
    for d, names in (("photos", ["a.jpg", "b.png"]), ("masks", ["a_mask.png", "b.png"]), ("fused", ["a.png"])):
        for n in names:
            (write_mask if d == "masks" else write_image)(tmp_path / d / n, img[..., 0] if d == "masks" else img)
    items = collect(tmp_path / "photos", given={"face_mask": tmp_path / "masks"})
    assert {i.id: i["face_mask"].name for i in items} == {"a": "a_mask.png", "b": "b.png"}
    with pytest.raises(ValueError, match=r"no fused file .* for: b.png"):
        collect(tmp_path / "photos", given={"fused": tmp_path / "fused"})
    with pytest.raises(ValueError, match="not an image set: give --fused"):
        collect(tmp_path / "photos", ("original", "fused"))
    one = collect(tmp_path / "photos", given={"mask": tmp_path / "masks" / "b.png"})  # one mask serves all
    assert {i["mask"].name for i in one} == {"b.png"}


def test_edit_mask_blend_clean_evaluate_chain_on_one_set(faces_dir, tmp_path, capsys):
    """The README's chain, on one folder, without renaming anything."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(faces_dir / "hfgi_celeba_hq_256" / "00044.jpg", photos / "face.jpg")
    edits = tmp_path / "edits"
    assert main(["edit", "-i", str(photos), "-a", "smile", "-a", "beard", "--resolution", "128",
                 "-o", str(edits)]) == 0
    assert main(["mask", "-i", str(edits)]) == 0
    assert main(["blend", "-i", str(edits), "--device", "cpu"]) == 0
    assert main(["clean", "-i", str(edits), "--method", "poisson", "--device", "cpu"]) == 0
    assert main(["evaluate", "-i", str(edits), "--no-lpips", "--no-fid", "-o", str(tmp_path / "report")]) == 0
    s = ImageSet(edits)
    recs = {r.id: r for r in s.records()}
    assert set(recs) == {"face_smile", "face_beard"}
    assert set(recs["face_beard"].roles) >= {"original", "fused", "face_mask", "target", "cleaned/poisson"}
    # each item used its own attribute's mask rule: beard reaches the neck, smile does not
    beard, smile = (read_mask(s.path(i, "face_mask")) for i in ("face_beard", "face_smile"))
    assert beard[-20:].sum() > smile[-20:].sum()
    # the Poisson clean of F over M_face is the blend target (same teacher)
    diff = np.abs(read_image(s.path("face_smile", "target")) - read_image(s.path("face_smile", "cleaned/poisson")))
    assert diff.max() <= 2 / 255
    rep = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [m["name"] for m in rep["methods"]] == ["fused", "poisson"]
    assert set(rep["tables"]["per_attribute"]) == {"smile", "beard"}
    overall = rep["tables"]["overall"]
    assert overall["poisson"]["mae"]["mean"] < overall["fused"]["mae"]["mean"]
    assert "| poisson | 2 |" in capsys.readouterr().out  # the overall table, printed
    # the set trains as it is: every item has original, fused and target
    from blendfix.data.dataset import BlendDataset

    ds = BlendDataset(edits, split="all")
    assert len(ds) == 2 and {ds[i]["attribute"] for i in range(2)} == {"smile", "beard"}
