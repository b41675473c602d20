#!/usr/bin/env bash
# Inputs of benchmarks/egoscale.py (issue 31): the hand scenes' robot demos, human video, its retargeted labels,
# the same-embodiment robot video, and the pretraining runs. Every step skips or resumes what is done: rerun it.
#   nohup bash benchmarks/egoscale_inputs.sh > logs/egoscale_inputs.log 2>&1 &
# Seeds: robot demos 0 (K up to 10 a task); human and robot video 100 (other scenes than the demos); evaluation uses
# wam eval's own seeds (far from both). Sizes are for 2 cores; HUMAN_EPISODES and PRESET override them.
set -euo pipefail
MAIN="$(cd "$(dirname "$0")/.." && pwd)"
WAM="$MAIN/.venv/bin/wam"
cd "$MAIN"
mkdir -p logs
export OMP_NUM_THREADS=1
DATA=data/egoscale
RUNS=runs/egoscale
HUMAN_EPISODES="${HUMAN_EPISODES:-200}"   # a task: 1,000 episodes, about 50k frames
PRESET="${PRESET:-cpu}"

$WAM collect --env hand --tasks touch,push,lift,press-button --episodes 10 --out $DATA/robot --seed 0 --workers 2
$WAM collect --env hand --tasks open-drawer --episodes 1 --out $DATA/robot_oneshot --seed 0   # its one demo
$WAM collect --env hand --tasks all --episodes "$HUMAN_EPISODES" --out $DATA/human --embodiment human --no-actions \
     --seed 100 --workers 2
$WAM collect --env hand --tasks all --episodes "$HUMAN_EPISODES" --out $DATA/robot_video --no-actions --seed 100 --workers 2
$WAM retarget --data $DATA/human --out $DATA/human_retargeted --report $DATA/human_retargeted.json
for source in human robot_video; do
  pre="$RUNS/pre_$source"
  if [ ! -f "$pre/summary.json" ]; then
    resume=""; if [ -f "$pre/pretrain.json" ]; then resume="--resume"; fi
    $WAM pretrain --data "$DATA/$source" --preset "$PRESET" --out "$pre" $resume
  fi
done
# The same human video with play segments (the hand wanders for 8 steps with probability 0.3, then recovers): the
# remedy to try if latent actions learned from scripted human video carry no control (docs/notebook/egoscale.md).
$WAM collect --env hand --tasks all --episodes "$HUMAN_EPISODES" --out $DATA/human_play --embodiment human --no-actions \
     --seed 100 --explore 0.3 --workers 2
pre="$RUNS/pre_human_play"
if [ ! -f "$pre/summary.json" ]; then
  resume=""; if [ -f "$pre/pretrain.json" ]; then resume="--resume"; fi
  $WAM pretrain --data "$DATA/human_play" --preset "$PRESET" --out "$pre" $resume
fi
echo "inputs ready: $DATA, $RUNS/pre_human, $RUNS/pre_robot_video, $RUNS/pre_human_play"
