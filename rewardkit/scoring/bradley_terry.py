"""BradleyTerryScorer: a sequence classifier with one output, the scalar reward r(prompt, response)."""

from __future__ import annotations

import math
from typing import Sequence

from rewardkit.data.templates import PromptTemplate
from rewardkit.data.tokenize import SegmentEncoder
from rewardkit.models.heads import value_rewards
from rewardkit.scoring.engine import ScoreRequest, ScoringEngine
from rewardkit.scoring.judge import Comparison, _same_length
from rewardkit.types import Prompt


class BradleyTerryScorer:
    kind = "bradley_terry"

    def __init__(self, model, tokenizer, template: PromptTemplate, *, max_length: int = 2048,
                 max_batch_tokens: int = 8192, use_prefix_cache: bool = True):
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.encoder = SegmentEncoder(tokenizer, template, max_length)
        self.engine = ScoringEngine(model, lambda h: value_rewards(model, h)[:, None], tokenizer.pad_token_id,
                                    max_batch_tokens=max_batch_tokens, use_prefix_cache=use_prefix_cache)

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        _same_length(prompts=prompts, responses=responses)
        requests = []
        for prompt, response in zip(prompts, responses):
            encoded = self.encoder.encode(prompt, response)
            cut = encoded.spans["response_a"][0]  # the prompt part is shared by a prompt's responses
            requests.append(ScoreRequest(tuple(encoded.input_ids[:cut]), tuple(encoded.input_ids[cut:])))
        return self.engine.run(requests)[:, 0].tolist()

    def compare(self, prompts, responses_a, responses_b, both_orders: bool = True, return_details: bool = False):
        """σ(r_a − r_b); a scalar model has no presentation order, so both orders agree."""
        ra = self.score(prompts, responses_a)
        rb = self.score(prompts, responses_b)
        probs = [1 / (1 + math.exp(-(x - y))) for x, y in zip(ra, rb)]
        return [Comparison(p, p, p) for p in probs] if return_details else probs

    def compare_to_references(self, prompts, responses, references) -> list[float]:
        """P(response better than reference) = σ(r_response − r_reference)."""
        return self.compare(prompts, responses, list(references))

    def reward(self, prompts, responses, references=None, scale: str = "raw") -> list[float]:
        """The scalar reward; with references, r(response) − r(reference)."""
        rewards = self.score(prompts, responses)
        if references is not None:
            from rewardkit.scoring.judge import resolve_references

            refs = self.score(prompts, resolve_references(prompts, references))
            rewards = [r - q for r, q in zip(rewards, refs)]
        return rewards

    def rank(self, prompt: Prompt, responses: Sequence[str], strategy: str = "pointwise", reference=None):
        from rewardkit.ranking import RankResult

        scores = self.score([prompt] * len(responses), list(responses))
        order = sorted(range(len(responses)), key=lambda i: -scores[i])
        return RankResult(order=order, scores=scores, strategy="pointwise", comparisons=0)
