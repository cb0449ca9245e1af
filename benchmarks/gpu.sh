#!/usr/bin/env bash
# Every GPU row in one go (about 8 minutes on one H100/H200): training, the stage runner's overhead, generation.
# Needs torch (CUDA), transformers and this checkout; the stage-runner rows also need trl, datasets, peft and
# accelerate, installed from wheels in $WHEELS when that folder exists (make bench-wheels fills it).
#   benchmarks/gpu.sh [OUT_DIR]              (BENCH_ARGS="--device cpu --quick" tests it on a CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-out/bench-gpu}"
WHEELS="${WHEELS:-.cache/bench-wheels}"
PY="${PYTHON:-python}"
ARGS="${BENCH_ARGS:---device cuda}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ -d "$WHEELS" ]; then
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" trl datasets peft accelerate liger-kernel flash-attn 2>/dev/null \
    || "$PY" -m pip install -q --no-index --find-links "$WHEELS" trl datasets peft accelerate || true
fi
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"
"$PY" benchmarks/train_throughput.py $ARGS --json "$OUT/train_throughput.json" | tee "$OUT/train_throughput.txt"
"$PY" benchmarks/generate_throughput.py $ARGS --json "$OUT/generate_throughput.json" | tee "$OUT/generate_throughput.txt"
if "$PY" -c "import trl, datasets, peft, accelerate" 2>/dev/null; then
  OVERHEAD="--steps 40 -- --preset minimind-26m --per_device_train_batch_size 32 --block_size 512 --report_to none"
  case "$ARGS" in *--quick*) OVERHEAD="--quick" ;; esac
  "$PY" benchmarks/trainer_overhead.py --json "$OUT/trainer_overhead.json" $OVERHEAD | tee "$OUT/trainer_overhead.txt"
else
  echo "trainer_overhead: skipped (trl, datasets, peft or accelerate missing; run make bench-wheels and carry $WHEELS)" \
    | tee "$OUT/trainer_overhead.txt"
fi
echo "tables in $OUT"
