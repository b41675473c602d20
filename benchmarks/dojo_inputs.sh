#!/usr/bin/env bash
# Rebuild what the dream-dojo benchmarks read, on top of benchmarks/inputs.sh's core inputs:
# play data, the instruction-free world (the best world so far, item 4 of the README's dream
# dojo section), and policies of graded quality for the ranking benchmark, taken as snapshots
# of three finetuning runs (RUN@STEP) rather than trained one by one. Every step resumes or
# skips what is done. About 3 hours on 2 cores (1 of them the core inputs); run it in the background:
#   nohup bash benchmarks/dojo_inputs.sh > logs/dojo_inputs.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
WAM="${WAM:-.venv/bin/wam}"
WORKERS="${WORKERS:-2}"
bash benchmarks/inputs.sh core

$WAM collect --tasks mt10 --episodes 20 --explore 0.3 --noise 0.1 --after-success 20 --max-steps 200 --seed 2 \
     --out data/mt10_play --workers "$WORKERS"
$WAM collect --tasks mt10 --episodes 10 --noise 0.5 --after-success 20 --max-steps 200 --seed 3 \
     --out data/mt10_noisy --workers "$WORKERS"

finetune() {  # finetune OUT ARGS...: train, or resume a killed run, or skip a finished one
  local out="$1"; shift
  if [ -f "$out/summary.json" ]; then echo "$out: done"; return; fi
  local resume=""; if [ -f "$out/finetune.json" ]; then resume="--resume"; fi
  $WAM finetune --data data/mt10_robot --out "$out" $resume "$@"
}
VIDEO=(--video data/mt10_video --video data/heldout_video)
finetune runs/worlds/mt10-wam-k3-play4-s0 --pretrained runs/pretrain_cpu -k 3 "${VIDEO[@]}" \
         --play data/mt10_play --play data/mt10_noisy --task-free-dynamics
# Policies: snapshots at 100 ... 1,500 steps of a K = 3 and a K = 1 WAM and a K = 1 scratch policy.
finetune runs/dojo_policies/wam-k3 --pretrained runs/pretrain_cpu -k 3 "${VIDEO[@]}" --snapshot-every 100 --seed 1
finetune runs/dojo_policies/wam-k1 --pretrained runs/pretrain_cpu -k 1 "${VIDEO[@]}" --snapshot-every 100 --seed 1
finetune runs/dojo_policies/scratch-k1 -k 1 --snapshot-every 100 --seed 1

# Rollouts of six recipe-grid policies (none of them ranked below), for the world's success judge:
# their failures are the near misses it must not call successes (wam judge --dreamed --balance).
# They are the grid's seed-2 cells: bash benchmarks/recipe_grid.sh 2 wam,scratch builds them.
seed=31
for p in mt10-wam-k1-s2 mt10-wam-k3-s2 mt10-wam-k10-s2 mt10-scratch-k1-s2 mt10-scratch-k3-s2 mt10-scratch-k10-s2; do
  [ -f "runs/recipe/$p/summary.json" ] || { echo "error: runs/recipe/$p missing: run bash benchmarks/recipe_grid.sh 2 wam,scratch" >&2; exit 1; }
  $WAM collect --tasks drawer-open-v3,window-open-v3,button-press-topdown-v3,drawer-close-v3 --episodes 12 \
       --max-steps 300 --after-success 20 --policy "runs/recipe/$p" --noise 0.1 --seed $seed --out data/dojo_rollouts \
       --workers "$WORKERS"
  seed=$((seed + 1))
done
JUDGED=runs/worlds/mt10-wam-k3-play4-judge-bal  # the play world, hard-linked, with its own judge
if [ ! -d "$JUDGED" ]; then cp -al runs/worlds/mt10-wam-k3-play4-s0 "$JUDGED"; fi
if [ ! -f "$JUDGED/judge/summary.json" ]; then
  resume=""; if [ -d "$JUDGED/judge" ]; then resume="--resume"; fi
  $WAM judge --world "$JUDGED" --data data/dojo_rollouts --dreamed --balance $resume
fi

# Rollouts of three snapshots neither ranked nor in the judge's data: where its verdict is tested on unseen policies
# (benchmarks/dream_replay.py --judge [--grounded], benchmarks/judge_frame_verdicts.py).
seed=41
for p in wam-k3@700 wam-k1@600 scratch-k1@900; do
  $WAM collect --tasks drawer-open-v3,window-open-v3,button-press-topdown-v3,drawer-close-v3 --episodes 8 \
       --max-steps 300 --after-success 20 --policy "runs/dojo_policies/$p" --noise 0.1 --seed $seed \
       --out data/dojo_rollouts_heldout --workers "$WORKERS"
  seed=$((seed + 1))
done

# Then, the ranking benchmark over seven of those policies (real and dream cells, resumable):
#   python benchmarks/dream_eval.py --world runs/worlds/mt10-wam-k3-play4-s0 \
#     --policies runs/dojo_policies/wam-k3@100 runs/dojo_policies/wam-k3@300 runs/dojo_policies/wam-k3@1500 \
#                runs/dojo_policies/wam-k1@200 runs/dojo_policies/wam-k1@1500 \
#                runs/dojo_policies/scratch-k1@300 runs/dojo_policies/scratch-k1@1500 \
#     --tasks drawer-open-v3,window-open-v3,button-press-topdown-v3,drawer-close-v3 --episodes 20 --max-steps 300 \
#     --workers 2 --out benchmarks/results/dream_eval_snapshots.json
