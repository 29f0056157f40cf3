"""PointwiseScorer: the whole RewardModel protocol from one scalar per (prompt, response).

A method whose model gives each response a number (Bradley–Terry, a regression head, a
distilled student, a mixture of attribute heads) implements `score()` and inherits the rest:
comparisons are σ(r_a − r_b) (there is no presentation order, so both orders agree), rewards
are the scalar (minus the reference's scalar when references are given), and ranking sorts by
the scalar with no comparisons at all.
"""

from __future__ import annotations

from typing import Sequence

from rewardkit.scoring.protocol import Comparison, RankResult, compare_result, resolve_references, same_length, sigmoid
from rewardkit.types import Prompt, prompt_to_text


class PointwiseScorer:
    kind = "pointwise"
    pointwise = True

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        raise NotImplementedError

    def compare(self, prompts, responses_a, responses_b, both_orders: bool = True,
                return_details: bool = False):
        """σ(r_a − r_b) (`return_details` is deprecated: use `compare_details`)."""
        details = self.compare_details(prompts, responses_a, responses_b, both_orders)
        return compare_result(details, return_details)

    def compare_details(self, prompts, responses_a, responses_b, both_orders: bool = True) -> list[Comparison]:
        same_length(prompts=prompts, responses_a=responses_a, responses_b=responses_b)
        ra = self.score(prompts, responses_a)
        rb = self._score_distinct(prompts, responses_b)  # references (compare_to_references) repeat
        return [Comparison(p, p, p) for p in (sigmoid(x - y) for x, y in zip(ra, rb))]

    def compare_to_references(self, prompts, responses, references) -> list[float]:
        """P(response better than reference) = σ(r_response − r_reference)."""
        return self.compare(prompts, responses, list(references))

    def reward(self, prompts, responses, references=None, scale: str = "raw") -> list[float]:
        """The scalar reward; with references, r(response) − r(reference)."""
        same_length(prompts=prompts, responses=responses)
        rewards = self.score(prompts, responses)
        if references is not None:
            refs = self._score_distinct(prompts, resolve_references(prompts, references))
            rewards = [r - q for r, q in zip(rewards, refs)]
        return rewards

    def _score_distinct(self, prompts, texts) -> list[float]:
        """score(), each distinct (prompt, text) once: an RL group shares one reference."""
        keys = [(prompt_to_text(p), t) for p, t in zip(prompts, texts)]
        first = {key: i for i, key in reversed(list(enumerate(keys)))}
        unique = list(first)
        scores = dict(zip(unique, self.score([prompts[first[k]] for k in unique], [k[1] for k in unique])))
        return [scores[key] for key in keys]

    def rank(self, prompt: Prompt, responses: Sequence[str], strategy: str = "pointwise", reference=None):
        scores = self.score([prompt] * len(responses), list(responses))
        order = sorted(range(len(responses)), key=lambda i: -scores[i])
        return RankResult(order=order, scores=scores, strategy="pointwise", comparisons=0)
