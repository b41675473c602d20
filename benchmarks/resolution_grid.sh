#!/usr/bin/env bash
# Resolution and wrist camera on MT10 at K = 3 (issue 26): does the recipe gain from 128 px or a wrist view?
#   nohup bash benchmarks/resolution_grid.sh [SETTINGS] [SEEDS] > logs/resolution_grid.log 2>&1 &
#   SETTINGS (default all, in this order): s64 (64 px, corner2), s128 (128 px, corner2), s64w (64 px, corner2 + gripperPOV)
# For each setting: the robot demos and the action-free video collected at that size and with those cameras
# (the same seeds as benchmarks/inputs.sh, so the scenes are the recipe grid's), the cpu preset's pretraining at
# that resolution (one thread), then the cells of benchmarks/recipe.py (K = 3, 50 episodes a task) as two
# one-thread streams side by side, from scratch and WAM, each into its own JSON (two drivers on one JSON would
# overwrite each other's cells), folded into benchmarks/results/resolution_<setting>.json by `recipe.py --merge`.
# Every step skips or resumes what is done: rerun to continue. `python benchmarks/resolution_report.py` reports.
set -euo pipefail
MAIN="$(cd "$(dirname "$0")/.." && pwd)"
SETTINGS="${1:-s64,s128,s64w}"
SEEDS="${2:-0,1,2}"
WAM="$MAIN/.venv/bin/wam"
PY="$MAIN/.venv/bin/python"
cd "$MAIN"
mkdir -p logs
export OMP_NUM_THREADS=1

IFS=, read -ra SETTING_LIST <<< "$SETTINGS"
for setting in "${SETTING_LIST[@]}"; do
  case "$setting" in
    s64) size=64; cameras=corner2 ;;
    s128) size=128; cameras=corner2 ;;
    s64w) size=64; cameras=corner2,gripperPOV ;;
    *) echo "error: unknown setting $setting (s64, s128, s64w)" >&2; exit 2 ;;
  esac
  data="data/resolution/$setting"
  $WAM collect --tasks mt10 --episodes 20 --out "$data/mt10_robot" --noise 0.1 --workers 2 --seed 0 --size $size --cameras $cameras
  $WAM collect --tasks mt10 --episodes 100 --out "$data/mt10_video" --no-actions --noise 0.1 --workers 2 --seed 100 \
       --size $size --cameras $cameras
  pre="runs/resolution/$setting/pretrain"
  if [ ! -f "$pre/summary.json" ]; then
    resume=""; if [ -f "$pre/pretrain.json" ]; then resume="--resume"; fi
    $WAM pretrain --data "$data/mt10_video" --preset cpu --size $size --out "$pre" $resume
  fi
  common=(--pretrained "$MAIN/$pre" --robot "$MAIN/$data/mt10_robot" --video "$MAIN/$data/mt10_video" --ks 3
          --seeds "$SEEDS" --episodes 50 --workers 1 --scratch-size $size --runs "$MAIN/runs/resolution/$setting")
  "$PY" benchmarks/recipe.py "${common[@]}" --methods scratch --out "benchmarks/results/resolution_${setting}_scratch.json" \
        > "logs/resolution_${setting}_scratch.log" 2>&1 &
  "$PY" benchmarks/recipe.py "${common[@]}" --methods wam --out "benchmarks/results/resolution_${setting}_wam.json" \
        > "logs/resolution_${setting}_wam.log" 2>&1 &
  wait
  "$PY" benchmarks/recipe.py --merge "benchmarks/results/resolution_${setting}_scratch.json" \
        "benchmarks/results/resolution_${setting}_wam.json" --out "benchmarks/results/resolution_$setting.json"
done
