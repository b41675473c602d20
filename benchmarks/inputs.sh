#!/usr/bin/env bash
# Rebuild the inputs the benchmarks read (datasets, then the pretraining run) from nothing.
# The collector is deterministic under its seed and skips episodes already recorded, and
# pretraining resumes, so a rerun finishes what a killed one left.
#   bash benchmarks/inputs.sh [core|dojo]
#     core (about 1 hour on 2 cores): what benchmarks/recipe.py reads
#     dojo: plus the play and noisy-expert data the dream-dojo worlds train on
# Checked on 2026-12-02: the datasets rebuilt this way have exactly the frames of the ones the
# recipe grid's seed-0 cells used (mt10_video 83,489, heldout_video 6,472; K-subsets of mt10_robot
# 1,013 / 2,943 / 8,336 frames at seed 0). The grid's pretraining is the cpu preset at twice its
# present steps (1,300 tokenizer + 3,000 world-model steps), hence --steps 3000.
set -euo pipefail
cd "$(dirname "$0")/.."
WAM="${WAM:-.venv/bin/wam}"
WORKERS="${WORKERS:-2}"
what="${1:-core}"

$WAM collect --tasks mt10 --episodes 20 --out data/mt10_robot --noise 0.1 --workers "$WORKERS" --seed 0
$WAM collect --tasks door-close-v3,button-press-v3 --episodes 20 --out data/heldout_robot --noise 0.1 --workers "$WORKERS" --seed 0
$WAM collect --tasks mt10 --episodes 100 --out data/mt10_video --no-actions --noise 0.1 --workers "$WORKERS" --seed 100
$WAM collect --tasks door-close-v3,button-press-v3 --episodes 50 --out data/heldout_video --no-actions --noise 0.1 \
     --workers "$WORKERS" --seed 100
resume=""
if [ -d runs/pretrain_cpu ]; then resume="--resume"; fi
$WAM pretrain --data data/mt10_video data/heldout_video --preset cpu --steps 3000 --out runs/pretrain_cpu $resume

if [ "$what" = "dojo" ]; then
  $WAM collect --tasks mt10 --episodes 20 --explore 0.3 --noise 0.1 --after-success 20 --max-steps 200 --seed 2 \
       --out data/mt10_play --workers "$WORKERS"
fi
