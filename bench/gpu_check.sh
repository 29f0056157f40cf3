#!/usr/bin/env bash
# The GPU check, for one call of the device tool (under 8 minutes on an H200): rewardkit from this
# checkout (no install: PYTHONPATH), models built from configs on the device, figures in $OUT.
#   run: command "bash bench/gpu_check.sh", timeout_s 540
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OUT="${OUT:-runs/gpu_check}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, transformers, accelerate, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'peft', peft.__version__)"
timeout 480 python3 bench/gpu_check.py --output "$OUT" 2>&1 | tee "$OUT/gpu_check.log"
