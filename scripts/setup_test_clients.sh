#!/usr/bin/env bash
# What only the tests need beside .venv (scripts/test.sh runs it; the main job does not): the RL
# clients' code and older transformers, to drive rewardkit through them (tests/test_rl_clients.py).
# Safe to re-run; the tests that need them skip where they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# The RL clients' own code at the versions the adapters are tested against (tests/test_rl_clients.py).
# --no-deps: their GPU stacks (vLLM, DeepSpeed, flash-attn) are not needed to drive their reward paths.
.venv/bin/python -c "import openrlhf, verl, ray, tensordict" 2>/dev/null || {
  .venv/bin/python -m pip install --quiet --no-deps "openrlhf==0.11.2" "verl==0.9.1" "ray==2.60.0" "tensordict==0.15.3" \
      "codetiming==1.4.0" "orjson>=3.9" "pyvers==0.2.3"
  .venv/bin/python -m pip install --quiet "aiohttp>=3.9" "pylatexenc>=2.10" "hydra-core>=1.3" "msgpack>=1.0" "jsonschema>=4.0"
}
# Older transformers, each in its own folder, to check that saved directories load and score the same there
# (tests/test_rl_clients.py): 4.46 is our floor (pyproject), 4.51 is RewardBench 0.1.4's pin.
for spec in "4.51.0 0.21.4 0.30.2" "4.46.3 0.20.3 0.26.5"; do
  set -- $spec
  [ -d ".venv/old-transformers/$1/transformers" ] || .venv/bin/python -m pip install --quiet --no-deps \
      --target ".venv/old-transformers/$1" "transformers==$1" "tokenizers==$2" "huggingface_hub==$3"
done
# RewardBench's own scoring pipeline, beside the transformers it pins (its CLI's other dependencies are not needed)
[ -d ".venv/old-transformers/4.51.0/rewardbench" ] || .venv/bin/python -m pip install --quiet --no-deps \
    --target ".venv/old-transformers/4.51.0" "rewardbench==0.1.4"
