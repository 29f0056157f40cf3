"""PreferenceReprScorer: a pairwise reward model from the learned representation.

P(a better) = σ(v·φ(e(a, b))), where e is the base model's pair embedding; it is the same in
both presentation orders by construction (φ is odd), so one order is scored. Beside the
RewardModel protocol it gives `margins()` (the predicted rating gap) and `pair_states()` (φ
itself, which `rewardkit embed` / `select --model` then use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from rewardkit.errors import ModelError
from rewardkit.methods.preference_repr.head import PreferenceHead
from rewardkit.scoring.protocol import Comparison, ScorerOptions, compare_result, resolve_references, same_length, to_scale

KIND = "preference_representation"
HEAD_FILE = "preference_head.safetensors"  # the head beside the copy of its base


class PreferenceReprScorer:
    kind = KIND
    pointwise = False

    def __init__(self, base, head: PreferenceHead):
        self.base, self.head = base, head
        self.max_length = getattr(base, "max_length", None)
        self.encoder = getattr(base, "encoder", None)

    @property
    def model(self):
        return self.base.model

    @torch.no_grad()
    def _heads(self, prompts, a, b):
        same_length(prompts=prompts, responses_a=a, responses_b=b)
        return self.head(self.base.pair_states(list(prompts), list(a), list(b)))

    def compare_details(self, prompts, responses_a, responses_b, both_orders: bool = True) -> list[Comparison]:
        if not prompts:
            return []
        logits, _ = self._heads(prompts, responses_a, responses_b)
        return [Comparison(p, p, p) for p in torch.sigmoid(logits).tolist()]

    def compare(self, prompts, responses_a, responses_b, both_orders: bool = True, return_details: bool = False):
        details = self.compare_details(prompts, responses_a, responses_b, both_orders)
        return compare_result(details, return_details)

    def compare_to_references(self, prompts, responses, references) -> list[float]:
        return self.compare(prompts, responses, list(references))

    def reward(self, prompts, responses, references=None, scale: str = "logodds") -> list[float]:
        refs = resolve_references(prompts, references)
        to_scale(0.5, scale)
        return [to_scale(p, scale) for p in self.compare_to_references(prompts, responses, refs)]

    def margins(self, prompts: Sequence, responses_a: Sequence[str], responses_b: Sequence[str]) -> list[float]:
        """The predicted rating gap of a over b (negative when b is better)."""
        return self._heads(prompts, responses_a, responses_b)[1].tolist() if prompts else []

    @torch.no_grad()
    def pair_states(self, prompts, responses_a, responses_b) -> torch.Tensor:
        return self.head.represent(self.base.pair_states(list(prompts), list(responses_a), list(responses_b)))

    def rank(self, prompt, responses, strategy: str = "knockout", reference=None):
        from rewardkit.ranking import rank_responses

        return rank_responses(self, prompt, responses, strategy=strategy, reference=reference)


def load_preference_repr(path: str, manifest, options: ScorerOptions) -> PreferenceReprScorer:
    from safetensors.torch import load_file

    from rewardkit.methods.load import load_reward_model

    extra = (manifest.extra if manifest else {}) or {}
    if not (Path(path) / HEAD_FILE).is_file() or "hidden" not in extra:
        raise ModelError(f"{path}: a preference representation needs {HEAD_FILE} and rewardkit.json's extra.hidden")
    base_ref = extra.get("base", "base")
    base_path = str(Path(path) / base_ref) if (Path(path) / base_ref).is_dir() else base_ref
    base = load_reward_model(base_path, dtype=options.dtype, device=options.device, max_length=options.max_length,
                             max_batch_tokens=options.max_batch_tokens, use_prefix_cache=options.use_prefix_cache,
                             trust_remote_code=options.trust_remote_code)
    head = PreferenceHead(int(extra["hidden"]), int(extra.get("dim", 64)))
    head.load_state_dict(load_file(str(Path(path) / HEAD_FILE)))
    return PreferenceReprScorer(base, head.eval())


