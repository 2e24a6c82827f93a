#!/usr/bin/env bash
# End-to-end quality measurement of blendfix on CPU (docs/evaluation.md): synth -> train -> export ->
# clean (fused / poisson / network) -> evaluate, with the paper's split (train on the non-CelebAMask-HQ
# photos, test on the CelebAMask-HQ photos; no test photo is ever trained on).
#
#   bench/evalrun.sh [ROOT] [FACES]
#     ROOT   work folder, default /tmp/evalrun (keep it outside the repository)
#     FACES  the shared face photos, default ../shared/data/faces (from the repository root)
#   environment: RES (128), ITERS (8000: length of the lr schedule), STEPS (where training stops: default 6500,
#                where the documented run was stopped), THREADS (2), WORKERS (2), RESIDUAL (0; 1 trains the
#                residual MAResU-Net variant, documented with ITERS=2500 STEPS=2500),
#                BLENDFIX (command that runs the CLI, default "python -m blendfix.cli")
#
# Steps already done are reused: synth resumes its folders; training is skipped when ROOT/runs holds a run
# that reached STEPS (delete ROOT/runs to retrain). Outputs: ROOT/report (vs originals), ROOT/report_vs_target
# (vs the Poisson teacher), ROOT/runs/run-NNN/metrics.jsonl (validation curve), ROOT/times.txt.
set -euo pipefail

ROOT=${1:-/tmp/evalrun}
FACES=${2:-../shared/data/faces}
RES=${RES:-128}
ITERS=${ITERS:-8000}
STEPS=${STEPS:-6500}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
read -r -a BF <<< "${BLENDFIX:-python -m blendfix.cli}"
PY=${BF[0]}

REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${2:-}" ]; then FACES=$REPO/../shared/data/faces; fi  # the default is relative to the repository
FACES=$(cd "$FACES" && pwd)
mkdir -p "$ROOT"
ROOT=$(cd "$ROOT" && pwd)
case "$ROOT/" in "$REPO"/*) echo "ROOT must be outside the repository" >&2; exit 2;; esac
cd "$REPO"  # configs/ and src/ are read from here
TIMES=$ROOT/times.txt
stamp() { echo "$(date -u +%FT%TZ) $*" | tee -a "$TIMES"; }

# 1. Split by folder: TEST = celebamask_hq_* (CelebAMask-HQ), TRAIN = everything else. Symlinks keep the
#    photos' relative paths, so item ids name their source folder (celebamask_hq_512/0.jpg and
#    celebamask_hq_1024/0.jpg do not collide).
rm -rf "$ROOT/photos"
(cd "$FACES" && find . -type f ! -name '.*' | sed 's|^\./||' | sort) | while read -r rel; do
    case "$rel" in celebamask_hq_*) split=test ;; *) split=train ;; esac
    mkdir -p "$ROOT/photos/$split/$(dirname "$rel")"
    ln -s "$FACES/$rel" "$ROOT/photos/$split/$rel"
done
# Non-square photos are not aligned crops here (celebamask_hq_512/unaligned_sample.jpg): skip them.
stamp "synth test start"
"${BF[@]}" synth -i "$ROOT/photos/test" -o "$ROOT/test_set" --resolution "$RES" --non-square skip --workers "$WORKERS"
stamp "synth train start"
"${BF[@]}" synth -i "$ROOT/photos/train" -o "$ROOT/train_set" --resolution "$RES" --non-square skip \
    --workers "$WORKERS"
stamp "synth done"

# 2. Train: configs/smoke_cpu.yaml with a 4.07 M-parameter MAResU-Net (widths 32/64/128/256, 2 blocks per
#    stage), random 64x64 crops, batch 4, cosine lr 5e-4 -> 1e-6 over ITERS steps, stopped after STEPS.
#    No VGG16 file exists on this machine, so the perceptual term is dropped (recorded in the run's config.yaml).
last_step() {  # highest step a run under ROOT/runs reached (0 if none)
    "$PY" - "$ROOT/runs" <<'EOF'
import json, sys
from pathlib import Path
best = 0
for f in Path(sys.argv[1]).glob("run-*/metrics.jsonl"):
    for line in f.read_text().splitlines():
        best = max(best, int(json.loads(line).get("step", 0)))
print(best)
EOF
}
if [ -d "$ROOT/runs" ] && [ "$(last_step)" -ge "$STEPS" ]; then
    stamp "train skipped: a run under $ROOT/runs already reached step $STEPS"
else
    stamp "train start"
    "${BF[@]}" train -i "$ROOT/train_set" -o "$ROOT/runs" --config configs/smoke_cpu.yaml \
        --set threads="$THREADS" --set 'model.widths=[32,64,128,256]' --set 'model.blocks=[2,2,2,2]' \
        --set model.head_width=32 --set optim.iterations="$ITERS" --set val_every=250 --set log_every=50 \
        --set ckpt_every=500 --set model.residual="$( [ "${RESIDUAL:-0}" = 1 ] && echo true || echo false )" \
        --steps "$STEPS"
    stamp "train done"
fi

# 3. Export the newest run.
rm -rf "$ROOT/export"
"${BF[@]}" export --run "$ROOT/runs" --format safetensors -o "$ROOT/export"

# 4. Arrange the test items by id: originals/<id>.png, fused/<id>.png, targets/<id>.png, and per-attribute
#    folders by_attr/<attr>/{originals,fused} so Poisson uses each item's own face-mask rule.
rm -rf "$ROOT/eval"
"$PY" - "$ROOT/test_set" "$ROOT/eval" <<'EOF'
import json, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for line in (src / "manifest.jsonl").read_text().splitlines():
    rec = json.loads(line)
    item = src / "items" / rec["id"]
    links = {"originals": "original.png", "fused": "fused.png", "targets": "target.png"}
    for folder, name in links.items():
        for d in (dst / folder, dst / "by_attr" / rec["attribute"] / folder):
            if folder == "targets" and d.parent.name != "eval":
                continue
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{rec['id']}.png").symlink_to(item / name)
EOF

# 5. Clean the test set three ways.
OUT=$ROOT/eval/out
rm -rf "$OUT"
stamp "clean start"
"${BF[@]}" clean -i "$ROOT/eval/originals" --fused "$ROOT/eval/fused" -o "$OUT/fused" --method fused --device cpu
for d in "$ROOT"/eval/by_attr/*/; do
    attr=$(basename "$d")
    "${BF[@]}" clean -i "$d/originals" --fused "$d/fused" -o "$OUT/poisson_$attr" --method poisson --attribute "$attr" \
        --device cpu
done
mkdir -p "$OUT/poisson"
cp "$OUT"/poisson_*/*.png "$OUT/poisson/"
stamp "clean network start"
"${BF[@]}" clean -i "$ROOT/eval/originals" --fused "$ROOT/eval/fused" -o "$OUT/blendfix" --method network \
    --weights "$ROOT/export/cleaner.safetensors" --device cpu
stamp "clean done"

# 6. Evaluate against the originals (the paper's protocol) and against the Poisson teacher (targets).
#    LPIPS and FID need AlexNet / Inception weights that are not on this machine.
rm -rf "$ROOT/report" "$ROOT/report_vs_target"
"${BF[@]}" evaluate -i "$ROOT/eval/originals" --method fused="$OUT/fused" --method poisson="$OUT/poisson" \
    --method blendfix="$OUT/blendfix" --attributes-from "$ROOT/test_set/manifest.jsonl" -o "$ROOT/report" \
    --no-lpips --no-fid --device cpu
"${BF[@]}" evaluate -i "$ROOT/eval/targets" --method fused="$OUT/fused" --method poisson="$OUT/poisson" \
    --method blendfix="$OUT/blendfix" --attributes-from "$ROOT/test_set/manifest.jsonl" -o "$ROOT/report_vs_target" \
    --no-lpips --no-fid --device cpu
stamp "evaluate done"

# 7. The validation curve of the newest run (PSNR of output vs Poisson target on the held-out train-set items).
"$PY" - "$ROOT/runs" <<'EOF2' | tee "$ROOT/curve.md"
import json, sys
from pathlib import Path
run = sorted(Path(sys.argv[1]).glob("run-*"))[-1]
rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
val = [r for r in rows if r.get("split") == "val"]
print(f"{run.name}: validation ({int(val[-1]['items'])} items); fused input PSNR {val[-1]['psnr_input']:.2f} dB\n")
print("| step | PSNR (dB) | grad_l1 |\n|---|---|---|")
for r in val:
    print(f"| {r['step']} | {r['psnr']:.2f} | {r['grad_l1']:.4f} |")
EOF2
