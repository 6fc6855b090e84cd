#!/usr/bin/env bash
# Zaremba et al. 2014 medium and large on one GPU: test perplexity and seconds an epoch, after a
# smoke check of the adaptive softmax (bf16 autocast where the device has it), scoring and sampling on the device.
#
#   UNROLL_DATA_DIR=MIRROR bash benchmarks/gpu_ptb.sh OUT [DEVICE] [MEDIUM_BUDGET] [LARGE_BUDGET]
#
# Budgets are --time-budget values (none: the whole recipe). Each run's metrics.jsonl (one line an
# epoch: elapsed seconds, valid perplexity) and its printed summary land in OUT.
set -euo pipefail
out=$1; device=${2:-cuda}; medium=${3:-none}; large=${4:-none}
mkdir -p "$out"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
python3 -m unroll train --data ptb --adaptive-softmax --cutoffs 2000,5000 --no-tie-weights --max-steps 100 \
  --precision auto --device "$device" --no-final-test --quiet --out "$out/smoke"
echo "the company said it would" | python3 -m unroll score "$out/smoke" --device "$device"
python3 -m unroll generate "$out/smoke" --device "$device" --max-tokens 12 --seed 1
for preset in medium large; do
  budget=$medium; [ "$preset" = large ] && budget=$large
  python3 -m unroll train --preset "ptb-$preset" --device "$device" --time-budget "$budget" --quiet \
    --out "$out/$preset" 2>&1 | tee "$out/$preset.txt"
  cp "$out/$preset/metrics.jsonl" "$out/$preset-metrics.jsonl"
done
