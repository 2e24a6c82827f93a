"""Weights shipped inside blendfix (package data), registered as ``bundled`` checkpoints.

``blendfix-cpu-cleaner``: the default cleaner (``blendfix clean --method auto``), a 2.50 M-parameter
MAResU-Net family member (residual, full-resolution input skip) trained on this project's CPU. How
it was trained, on what data, its curve and its measured quality: docs/training.md and
docs/evaluation.md; the command: bench/train_cleaner.sh.
"""

from __future__ import annotations

from ..registry import CheckpointEntry, register_checkpoint

CPU_CLEANER_FILE = "blendfix_cpu_cleaner_v1.safetensors"
CPU_CLEANER_SHA256 = "7a4ecae7f545846f763da46717e0127b9fe1281b4afdd3c9810da0b4dfc40283"

register_checkpoint(CheckpointEntry(
    name="blendfix-cpu-cleaner",
    filename=CPU_CLEANER_FILE,
    url="bundled with blendfix (src/blendfix/weights/); rebuilt by bench/train_cleaner.sh",
    layout="safetensors, fp16 MAResUNet state_dict (371 entries, the released key names; residual=true, "
           "input_skip=true so finalconv2.weight is (32, 38, 3, 3); widths 32/64/128/256, one block per stage); "
           "blendfix_cpu_cleaner_v1.json beside it holds the architecture and provenance",
    licence="research use only: trained on non-commercial face sets (FFHQ CC BY-NC-SA 4.0, CelebA-HQ)",
    model="maresunet",
    sha256=CPU_CLEANER_SHA256,
    notes="10,000 steps at batch 4 on 128² crops of a 256² mixed synthetic/paste set, target = the known truth",
    bundled=True,
))
