"""The on-disk layout of a blendfix training set (written by ``blendfix synth``).

::

    DATASET_DIR/
      manifest.jsonl          one JSON object per finished item (appended when the item is complete)
      config.yaml             the resolved synth config of the run(s)
      skipped.jsonl           one JSON object per photo that could not be used (id, source, kind, reason)
      items/<item_id>/
        original.png          I   (H, W, 3) 8-bit RGB, the photo (resized to the set's resolution)
        inverted.png          I'  the editor's reconstruction of I (GAN inversion or synthetic)
        edited.png            T   the editor's output with the attribute changed
        mask.png              M   8-bit soft Diff-CAM-like mask, weight = v / 255
        fused.png             F = T * M + I * (1 - M)  (network input, with I)
        face_mask.png         M_face {0, 255}: face classes, eyes excluded, intersected over F and I
        target.png            seamless clone of F into I over M_face (the paper's training target)
        truth.png             the artifact-free result, when the editor knows it (synthetic, paste):
                              the edit kept, no ghost, seam or colour step (layout version 2)
        meta.json             the item's manifest record

An item folder is written under ``items/.<item_id>.tmp`` and renamed into place when complete, so
a killed run never leaves a half-written item, and a rerun skips every item already present.
Manifest records hold at least: ``id``, ``source`` (photo path as given), ``attribute``, ``seed``,
``editor``, ``resolution``, ``checkpoints`` (name -> sha256 or null), ``blendfix_version``,
``source_sha256`` and ``source_size`` (the photo file's content: a rerun from another folder is
checked against them).
Readers should take items from the manifest (not by listing ``items/``): a folder there that is
not yet recorded belongs to a run still going or killed, and the next run re-records or redoes it.
See ``docs/synth.md`` for every field, the resume rules and merging shards.
"""

from __future__ import annotations

MANIFEST = "manifest.jsonl"
CONFIG = "config.yaml"
SKIPPED = "skipped.jsonl"
ITEMS = "items"

ORIGINAL = "original.png"
INVERTED = "inverted.png"
EDITED = "edited.png"
MASK = "mask.png"
FUSED = "fused.png"
FACE_MASK = "face_mask.png"
TARGET = "target.png"
META = "meta.json"
TRUTH = "truth.png"

#: 1: the paper's files; 2: + optional truth.png and the manifest fields ``kind``, ``layout``.
#: Sets of version 1 still load (no truth: truth-based targets and scores are unavailable).
LAYOUT_VERSION = 2

ITEM_FILES = (ORIGINAL, INVERTED, EDITED, MASK, FUSED, FACE_MASK, TARGET, META)
#: files an item may have besides :data:`ITEM_FILES` (copied by merges when present)
OPTIONAL_FILES = (TRUTH,)
