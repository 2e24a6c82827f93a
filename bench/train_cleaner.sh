#!/usr/bin/env bash
# The shipped default cleaner (blendfix-cpu-cleaner), end to end on a CPU:
#   1. split ../shared/data/faces by folder: test = celebamask_hq_* (62 aligned CelebA-HQ photos; the
#      unaligned 530x717 sample is left out), train = every other folder (146 photos, FFHQ-sourced and others);
#   2. synthesise 8 items per training photo (mixed: synthetic GAN-like edits and user-like pasted pairs),
#      each with the known truth, at 256²;
#   3. train configs/cpu_cleaner.yaml (resumable: rerun this script after a kill to continue);
#   4. export fp16 safetensors and copy it into the package (src/blendfix/weights/).
# Usage: bench/train_cleaner.sh [WORK_DIR]   (default /tmp/blendfix_cleaner); BLENDFIX_SHARED as for the tests.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${BLENDFIX_SHARED:-$ROOT/../shared}
WORK=${1:-/tmp/blendfix_cleaner}
BF="$ROOT/.venv/bin/blendfix"
mkdir -p "$WORK"
faces="$SHARED/data/faces"
if [ ! -d "$WORK/train_photos" ]; then
    (cd "$faces" && find . -type f | sort) | while read -r f; do
        case "$f" in
            ./celebamask_hq_512/unaligned_sample.jpg) continue ;;
            ./celebamask_hq_*) dst="$WORK/test_photos" ;;
            *) dst="$WORK/train_photos" ;;
        esac
        mkdir -p "$dst/$(dirname "$f")"
        ln -sf "$faces/$f" "$dst/$f"
    done
fi
"$BF" synth -i "$WORK/train_photos" -o "$WORK/train256" --editor mixed --variants 8 --resolution 256 --workers 2
"$BF" synth -i "$WORK/test_photos" -o "$WORK/test256" --editor mixed --variants 4 --resolution 256 --workers 2
resume=""
if ls "$WORK"/runs/run-*/checkpoints/*.pt >/dev/null 2>&1; then resume="--resume auto"; fi
# shellcheck disable=SC2086
"$BF" train --data "$WORK/train256" --out "$WORK/runs" --config "$ROOT/configs/cpu_cleaner.yaml" $resume
"$BF" export --run "$WORK/runs" --format safetensors --fp16 -o "$WORK/export"
cp "$WORK/export/cleaner_fp16.safetensors" "$ROOT/src/blendfix/weights/blendfix_cpu_cleaner_v1.safetensors"
cp "$WORK/export/cleaner_fp16.json" "$ROOT/src/blendfix/weights/blendfix_cpu_cleaner_v1.json"
sha256sum "$ROOT/src/blendfix/weights/blendfix_cpu_cleaner_v1.safetensors"
echo "now put that sha256 into src/blendfix/weights/__init__.py (CPU_CLEANER_SHA256)"
