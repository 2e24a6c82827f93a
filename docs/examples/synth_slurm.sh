#!/bin/bash
# One blendfix synth shard per SLURM array task; see docs/distributed_synth.md.
#SBATCH --job-name=blendfix-synth
#SBATCH --array=0-63%16
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --requeue
set -euo pipefail
PHOTOS=${PHOTOS:-/data/ffhq}
PARTS=${PARTS:-/scratch/$USER/ffhq.parts}
blendfix synth -i "$PHOTOS" -o "$PARTS/part-$SLURM_ARRAY_TASK_ID" \
    --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" \
    --workers "$SLURM_CPUS_PER_TASK" --resolution 256 --seed 0
