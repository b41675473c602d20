#!/usr/bin/env bash
# Finish the recipe grid on a fresh machine, unattended: the driver's code, the inputs, the cells.
#   nohup bash benchmarks/recipe_grid.sh [SEEDS] [METHODS] [KS] > logs/recipe_grid.log 2>&1 &
#   (defaults: seed 2, wam, K = 1,3,10, plus the held-out cell of each seed and method)
#
# Why a script: every cell of benchmarks/results/recipe.json must run on the same library code,
# the grid's driver commit (ab92688's library, e40a6bd's recipe.py), while main moves on; and
# each fresh machine has to rebuild the inputs first. This does both the same way every time:
#   1. a worktree of the driver commit at $BENCH (the code every cell imports, via PYTHONPATH);
#   2. the datasets (benchmarks/inputs.sh's deterministic collections) and the pretraining, run
#      with the driver's own code, so no saved config needs fields stripped for it to read;
#   3. the cells as two streams side by side, one torch thread each (on 2 cores that beats one
#      stream with two threads), each writing its own JSON: two drivers on one JSON would
#      overwrite each other's cells;
#   4. `recipe.py --merge` (main's) folds both into benchmarks/results/recipe.json.
# Every step resumes or skips what is done, so a killed run is continued by running it again.
set -euo pipefail
MAIN="$(cd "$(dirname "$0")/.." && pwd)"
DRIVER_COMMIT="${DRIVER_COMMIT:-e40a6bd}"
BENCH="${BENCH:-/work/bench}"
SEEDS="${1:-2}"
METHODS="${2:-wam}"
KS="${3:-1,3,10}"
PY="$MAIN/.venv/bin/python"
WAM="$MAIN/.venv/bin/wam"
cd "$MAIN"
mkdir -p logs

if [ ! -d "$BENCH" ]; then git worktree add "$BENCH" "$DRIVER_COMMIT"; fi
[ "$(git -C "$BENCH" rev-parse --short=7 HEAD)" = "${DRIVER_COMMIT:0:7}" ] || {
  echo "error: $BENCH is not at the driver commit $DRIVER_COMMIT" >&2; exit 1; }
bench() { (cd "$BENCH" && PYTHONPATH="$BENCH" "$@"); }

# Datasets first (the collector is deterministic under its seed and skips what is recorded).
$WAM collect --tasks mt10 --episodes 20 --out data/mt10_robot --noise 0.1 --workers 2 --seed 0
$WAM collect --tasks door-close-v3,button-press-v3 --episodes 20 --out data/heldout_robot --noise 0.1 --workers 2 --seed 0
if [[ ",$METHODS," == *",wam,"* ]]; then
  $WAM collect --tasks mt10 --episodes 100 --out data/mt10_video --no-actions --noise 0.1 --workers 2 --seed 100
  $WAM collect --tasks door-close-v3,button-press-v3 --episodes 50 --out data/heldout_video --no-actions --noise 0.1 \
       --workers 2 --seed 100
  if [ ! -f runs/pretrain_cpu/summary.json ]; then
    resume=""; if [ -d runs/pretrain_cpu ]; then resume="--resume"; fi
    bench "$WAM" pretrain --data "$MAIN/data/mt10_video" "$MAIN/data/heldout_video" --preset cpu --steps 3000 \
          --out "$MAIN/runs/pretrain_cpu" $resume
  fi
fi

# The cells: the grid's settings exactly (absolute paths, as recipe.json's settings hold them).
COMMON=(--pretrained "$MAIN/runs/pretrain_cpu" --robot "$MAIN/data/mt10_robot"
        --video "$MAIN/data/mt10_video" "$MAIN/data/heldout_video" --episodes 50 --workers 1 --runs "$MAIN/runs/recipe")
HELDOUT=(--heldout-robot "$MAIN/data/heldout_robot" --heldout-tasks door-close-v3,button-press-v3)
IFS=, read -ra K_LIST <<< "$KS"
# Stream A takes every other K from the first, stream B the rest and then the held-out cells
# (short evaluations): K = 1,3,10 splits as 1,10 | 3 + held-out.
ks_a=() ks_b=()
for i in "${!K_LIST[@]}"; do if (( i % 2 == 0 )); then ks_a+=("${K_LIST[$i]}"); else ks_b+=("${K_LIST[$i]}"); fi; done
stream_a=(--ks "$(IFS=,; echo "${ks_a[*]}")" --seeds "$SEEDS" --methods "$METHODS")
if [ "${#ks_b[@]}" -gt 0 ]; then
  stream_b=(--ks "$(IFS=,; echo "${ks_b[*]}")" --seeds "$SEEDS" --methods "$METHODS" "${HELDOUT[@]}")
else
  stream_b=(--seeds "$SEEDS" --methods "$METHODS" "${HELDOUT[@]}" --heldout-only)
fi
OUT_A="benchmarks/results/recipe_stream_${METHODS//,/-}_a.json"  # kept: a rerun skips what they hold
OUT_B="benchmarks/results/recipe_stream_${METHODS//,/-}_b.json"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
bench "$PY" benchmarks/recipe.py "${COMMON[@]}" "${stream_a[@]}" --out "$MAIN/$OUT_A" \
      > "logs/$(basename "$OUT_A" .json).log" 2>&1 &
a=$!
bench "$PY" benchmarks/recipe.py "${COMMON[@]}" "${stream_b[@]}" --out "$MAIN/$OUT_B" \
      > "logs/$(basename "$OUT_B" .json).log" 2>&1 &
b=$!
status=0
wait "$a" || status=$?
wait "$b" || status=$?
finished=()  # a stream killed before its first cell wrote no file
for out in "$OUT_A" "$OUT_B"; do if [ -f "$out" ]; then finished+=("$out"); fi; done
if [ "${#finished[@]}" -gt 0 ]; then "$PY" benchmarks/recipe.py --merge "${finished[@]}" --out benchmarks/results/recipe.json; fi
"$PY" benchmarks/recipe.py --table
exit "$status"
