#!/usr/bin/env bash
# Finish the recipe grid on a fresh machine, unattended: the driver's code, the inputs, the cells.
#   [STREAMS=3] nohup bash benchmarks/recipe_grid.sh [SEEDS] [METHODS] [KS] > logs/recipe_grid.log 2>&1 &
#   (defaults: seed 2, wam, K = 1,3,10, plus the held-out cell of each seed and method unless
#   recipe.json holds them all; 2 streams)
#
# Why a script: every cell of benchmarks/results/recipe.json must run on the same library code,
# the grid's driver commit (ab92688's library, e40a6bd's recipe.py), while main moves on; and
# each fresh machine has to rebuild the inputs first. This does both the same way every time:
#   1. a worktree of the driver commit at $BENCH (the code every cell imports, via PYTHONPATH);
#   2. the datasets (benchmarks/inputs.sh's deterministic collections) and the pretraining, run
#      with the driver's own code, so no saved config needs fields stripped for it to read;
#   3. the cells as STREAMS (default 2) drivers side by side, one torch thread each (on 2 cores
#      that beats one stream with two threads), each writing its own JSON: two drivers on one
#      JSON would overwrite each other's cells;
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
# A held-out cell recipe.json already holds is not run again (the driver only skips cells of its
# own --out, and a held-out cell costs a training); the streams get the held-out cells only when
# one of them is missing.
want_heldout=$("$PY" - "$SEEDS" "$METHODS" <<'PY'
import json, pathlib, sys
seeds, methods = sys.argv[1].split(","), sys.argv[2].split(",")
grid = pathlib.Path("benchmarks/results/recipe.json")
cells = json.loads(grid.read_text()).get("cells", {}) if grid.exists() else {}
print(int(any(f"heldout-{m}-k1-s{s}" not in cells for s in seeds for m in methods)))
PY
)
# STREAMS one-thread drivers side by side, K dealt round-robin (stream i takes the i-th, the
# (i+STREAMS)-th, ... K), the held-out cells (short evaluations) to the last stream. Three cells
# on two cores finish sooner as three streams than as two (1 + 2 cells back to back).
n_streams="${STREAMS:-2}"
(( n_streams >= 1 && n_streams <= 26 )) || { echo "error: STREAMS=$n_streams, expected 1 to 26" >&2; exit 2; }
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
pids=() outs=()
for (( i = 0; i < n_streams; i++ )); do
  ks=()
  for (( j = i; j < ${#K_LIST[@]}; j += n_streams )); do ks+=("${K_LIST[$j]}"); done
  args=(--seeds "$SEEDS" --methods "$METHODS")
  if (( i == n_streams - 1 )) && (( want_heldout )); then args+=("${HELDOUT[@]}"); fi
  if [ "${#ks[@]}" -gt 0 ]; then args+=(--ks "$(IFS=,; echo "${ks[*]}")")
  elif (( i == n_streams - 1 )) && (( want_heldout )); then args+=(--heldout-only)
  else continue; fi
  letters=abcdefghijklmnopqrstuvwxyz
  out="benchmarks/results/recipe_stream_${METHODS//,/-}_${letters:i:1}.json"  # kept: a rerun skips its cells
  bench "$PY" benchmarks/recipe.py "${COMMON[@]}" "${args[@]}" --out "$MAIN/$out" \
        > "logs/$(basename "$out" .json).log" 2>&1 &
  pids+=($!) outs+=("$out")
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
finished=()  # a stream killed before its first cell wrote no file
for out in "${outs[@]}"; do if [ -f "$out" ]; then finished+=("$out"); fi; done
if [ "${#finished[@]}" -gt 0 ]; then "$PY" benchmarks/recipe.py --merge "${finished[@]}" --out benchmarks/results/recipe.json; fi
"$PY" benchmarks/recipe.py --table
exit "$status"
