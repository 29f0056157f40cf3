"""A ScoringEngine whose forward pass is a vLLM classifier (`--backend vllm`).

The scorer keeps everything that is ours — templates, tokenization, truncation, both orders,
references, the reward scale — and hands vLLM only token ids: each request's prefix + suffix,
as one `TokensPrompt`, to `LLM.classify`. vLLM returns one number per row (vLLM 0.33,
`ClassificationRequestOutput.outputs.probs`): for a judge exported with `--to seq-cls`,
σ(z_A − z_B) = P(the first shown is better); for a Bradley–Terry directory (problem_type
"regression"), r itself. It is turned back into what the eager engine's head gives — the two
verdict logits up to a constant (log p, log(1 − p)), or [r] — so the scorer above cannot tell
which engine ran. vLLM batches and caches prefixes itself.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from rewardkit.errors import ConfigError
from rewardkit.scoring.engine import ScoreRequest

OUTPUTS = ("verdict", "value")


class VllmEngine:
    def __init__(self, llm, output: str):
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.llm, self.output = llm, output
        self.stats = {"forward_calls": 0, "rows": 0, "prefix_passes": 0, "tokens": 0}
        self.use_prefix_cache = False  # vLLM's own prefix caching applies instead
        self.decoder = None

    def with_head(self, head):
        raise ConfigError("--backend vllm returns one score per row, not hidden states; pair embeddings "
                          "(embed, select, preference_repr) need --backend eager")

    def run(self, requests: Sequence[ScoreRequest]) -> torch.Tensor:
        if not requests:
            return torch.empty(0, 0)
        # vllm.inputs.TokensPrompt is a TypedDict: this dict is one
        prompts = [{"prompt_token_ids": list(r.prefix + r.suffix)} for r in requests]
        results = self.llm.classify(prompts, use_tqdm=False)
        self.stats["forward_calls"] += 1
        self.stats["rows"] += len(requests)
        self.stats["tokens"] += sum(r.length for r in requests)
        return torch.tensor([self._as_head(result.outputs.probs, index) for index, result in enumerate(results)],
                            dtype=torch.float32)

    def _as_head(self, probs: list[float], index: int) -> list[float]:
        if len(probs) != 1:
            raise ConfigError(f"vLLM returned {len(probs)} numbers for row {index}; a reward model gives one "
                              "(config.json num_labels 1)")
        if self.output == "value":
            return [float(probs[0])]
        p = min(max(float(probs[0]), 1e-12), 1 - 1e-12)
        return [math.log(p), math.log1p(-p)]  # softmax over these two is p again
