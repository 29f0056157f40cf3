"""MultiObjectiveScorer: the mixed reward as a pointwise score, and the table behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from rewardkit.data.templates import PromptTemplate, default_reward_template
from rewardkit.methods.multi_objective.head import MultiObjectiveHead
from rewardkit.methods.multi_objective.states import StateReader
from rewardkit.models.loading import scoring_length
from rewardkit.scoring.pointwise import PointwiseScorer
from rewardkit.scoring.protocol import ScorerOptions, same_length
from rewardkit.types import Prompt

KIND = "multi_objective"


@dataclass(frozen=True)
class AttributeScores:
    """One response: the mixed reward, each attribute's (decorrelated) score and its gate weight."""

    reward: float
    scores: dict[str, float]
    weights: dict[str, float]

    def to_dict(self) -> dict:
        return {"reward": self.reward, "scores": self.scores, "weights": self.weights}


class MultiObjectiveScorer(PointwiseScorer):
    kind = KIND

    def __init__(self, model, tokenizer, head: MultiObjectiveHead, template: PromptTemplate, *,
                 max_length: int | None = None, max_batch_tokens: int = 8192, use_prefix_cache: bool = True):
        self.model, self.tokenizer, self.head, self.template = model, tokenizer, head, template
        self.max_length = scoring_length(model, max_length)
        self.reader = StateReader(model, tokenizer, template, self.max_length, max_batch_tokens=max_batch_tokens,
                                  use_prefix_cache=use_prefix_cache)
        self.encoder = self.reader.encoder  # eval's truncation counter reads it

    @property
    def names(self) -> list[str]:
        return self.head.names

    @torch.no_grad()
    def _mixture(self, prompts, responses):
        same_length(prompts=prompts, responses=responses)
        states = self.reader.read(list(prompts), list(responses))
        return self.head.mixture(states.prompt, states.response, states.length)

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        if not responses:
            return []
        return self._mixture(prompts, responses)[0].tolist()

    def attributes(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[AttributeScores]:
        """Per response: the reward, every attribute's score (after decorrelation; for category
        experts, each expert's score) and the gate's weight on it (0 for unmixed attributes)."""
        if not responses:
            return []
        rewards, scores, weights = self._mixture(prompts, responses)
        return [AttributeScores(float(r), dict(zip(self.names, s.tolist())), dict(zip(self.names, w.tolist())))
                for r, s, w in zip(rewards, scores, weights)]


def load_multi_objective(path: str, template: dict | None, options: ScorerOptions) -> MultiObjectiveScorer:
    from rewardkit.models.loading import load_backbone

    model, tokenizer = load_backbone(path, dtype=options.dtype, device=options.device,
                                     trust_remote_code=options.trust_remote_code)
    head = MultiObjectiveHead.load(path).to(next(model.parameters()).device)
    return MultiObjectiveScorer(model, tokenizer, head,
                                PromptTemplate.from_dict(template) if template else default_reward_template(),
                                max_length=options.max_length, max_batch_tokens=options.max_batch_tokens,
                                use_prefix_cache=options.use_prefix_cache)
