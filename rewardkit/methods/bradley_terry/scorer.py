"""BradleyTerryScorer: a sequence classifier with one output, the scalar reward r(prompt, response)."""

from __future__ import annotations

from typing import Sequence

import torch

from rewardkit.data.templates import PromptTemplate, default_reward_template
from rewardkit.data.tokenize import SegmentEncoder
from rewardkit.models.heads import value_rewards
from rewardkit.models.loading import load_classifier, scoring_length
from rewardkit.scoring.engine import ScoreRequest, ScoringEngine
from rewardkit.scoring.pointwise import PointwiseScorer
from rewardkit.scoring.protocol import ScorerOptions, same_length
from rewardkit.types import Prompt

KIND = "bradley_terry"


class BradleyTerryScorer(PointwiseScorer):
    kind = KIND

    def __init__(self, model, tokenizer, template: PromptTemplate, *, max_length: int | None = None,
                 max_batch_tokens: int = 8192, use_prefix_cache: bool = True):
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.max_length = scoring_length(model, max_length)
        self.encoder = SegmentEncoder(tokenizer, template, self.max_length)
        self.engine = ScoringEngine(model, lambda h: value_rewards(model, h)[:, None], tokenizer.pad_token_id,
                                    max_batch_tokens=max_batch_tokens, use_prefix_cache=use_prefix_cache)

    def _requests(self, prompts, responses) -> list[ScoreRequest]:
        same_length(prompts=prompts, responses=responses)
        requests = []
        for prompt, response in zip(prompts, responses):
            encoded = self.encoder.encode(prompt, response)
            cut = encoded.spans["response_a"][0]  # the prompt part is shared by a prompt's responses
            requests.append(ScoreRequest(tuple(encoded.input_ids[:cut]), tuple(encoded.input_ids[cut:])))
        return requests

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        return self.engine.run(self._requests(prompts, responses))[:, 0].tolist()

    @torch.no_grad()
    def pair_states(self, prompts: Sequence[Prompt], responses_a: Sequence[str], responses_b: Sequence[str]) -> torch.Tensor:
        """(N, H) pair representations: the final state of (prompt, a) minus that of (prompt, b)
        at the reward position; swapping a and b negates it."""
        same_length(prompts=prompts, responses_a=responses_a, responses_b=responses_b)
        engine = self.engine.with_head(lambda hidden: hidden)
        states = engine.run(self._requests(list(prompts) * 2, list(responses_a) + list(responses_b)))
        return states[:len(prompts)] - states[len(prompts):]


def load_bradley_terry(path: str, template: dict | None, options: ScorerOptions) -> BradleyTerryScorer:
    model, tokenizer = load_classifier(path, dtype=options.dtype, device=options.device, merge=options.merge_adapters,
                                       trust_remote_code=options.trust_remote_code)
    return BradleyTerryScorer(model, tokenizer, PromptTemplate.from_dict(template) if template else default_reward_template(),
                              max_length=options.max_length, max_batch_tokens=options.max_batch_tokens,
                              use_prefix_cache=options.use_prefix_cache)
