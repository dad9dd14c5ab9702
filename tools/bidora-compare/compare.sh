#!/bin/sh
# LoRA vs DoRA vs BiDoRA on small OpenSCAD data sets with code14m (docs/bidora.md).
# Usage: [EPOCHS=12] [NTRAIN=40] [NOUTER=8] [METHODS="lora dora bidora bidora-fo"] [BIN=path]
#        tools/bidora-compare/compare.sh [workdir] [seeds...]
# Every method trains on the same train.jsonl. BiDoRA carves its outer (magnitude) split
# of NOUTER rows out of it (--outer-split NOUTER/NTRAIN, seeded by --seed) and retrains
# on all of it; no validation data (--val-split 0). Methods lora-eq and dora-eq are LoRA
# and DoRA given BiDoRA's optimiser-step total (search + retrain) via --max-steps.
# Prints: method seed test_loss steps train_loss wall_s; train_loss is the mean loss of
# the last epoch's steps (3 steps with the defaults' batch size 4 on 12 rows, etc.).
# Needs: apt-get install openscad-testing-data; ../shared/models/code14m.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-/tmp/bidora-compare}; shift || true
seeds=${*:-"1 2 3"}
model=${MODEL:-$repo/../shared/models/code14m}
epochs=${EPOCHS:-12}
ntrain=${NTRAIN:-40}
nouter=${NOUTER:-8}
methods=${METHODS:-"lora dora bidora bidora-fo"}
bs=4
mkdir -p "$work"
cd "$repo"
b=${BIN:-}
if [ -z "$b" ]; then
  b="$work/bidora"
  go build -o "$b" ./cmd/bidora
fi
go run ./tools/bidora-compare -out "$work/data" -train "$ntrain"
outer=$(awk "BEGIN{print $nouter/$ntrain}")
# BiDoRA's steps: search on the inner rows, then retrain on all rows, EPOCHS each.
perepoch() { echo $(( ($1 + bs - 1) / bs )); }
eqsteps=$(( $(perepoch $((ntrain - nouter))) * epochs + $(perepoch "$ntrain") * epochs ))
lastn=$(perepoch "$ntrain")
common="--model $model --train-file $work/data/train.jsonl --val-split 0 --epochs $epochs
  --batch-size $bs --grad-accum 1 --lr 1e-3 --lr-scheduler cosine --warmup-steps 5
  --rank 8 --alpha 16 --dropout 0.05 --max-seq-len 256 --save-steps 0 --auto-hardware=false
  --quantization none --overwrite --log-format json"
testloss() {
  "$b" eval --model "$model" ${1:+--adapter "$1"} --data "$work/data/test.jsonl" --max-seq-len 256 --json |
    sed 's/.*"loss":\([0-9.]*\).*/\1/'
}
echo "method seed test_loss steps train_loss wall_s"
echo "base - $(testloss "") 0 - 0"
for seed in $seeds; do
  for m in $methods; do
    out="$work/out-$m-$seed"
    case $m in
      lora) args="--method lora" ;;
      dora) args="--method dora" ;;
      lora-eq) args="--method lora --max-steps $eqsteps" ;;
      dora-eq) args="--method dora --max-steps $eqsteps" ;;
      bidora) args="--method bidora --outer-split $outer" ;;
      bidora-fo) args="--method bidora --hypergrad first-order --outer-split $outer" ;;
      *) echo "unknown method $m" >&2; exit 2 ;;
    esac
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$b" train $common $args --seed "$seed" --output "$out" > "$out.log" 2>&1
    t1=$(date +%s.%N)
    steps=$(grep -c '"step"' "$out/metrics.jsonl")
    trainloss=$(tail -n "$lastn" "$out/metrics.jsonl" |
      sed 's/.*"loss":\([0-9.]*\).*/\1/' | awk '{s+=$1} END{printf "%.4f", s/NR}')
    echo "$m $seed $(testloss "$out") $steps $trainloss $(echo "$t1 - $t0" | bc)"
  done
done
