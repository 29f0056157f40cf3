"""Ranking n responses to one prompt with a pairwise judge.

  linear       the paper's sequential search: keep a champion, challenge it with each response
               in turn (n − 1 comparisons, one after another)
  knockout     tournament: each round pairs the survivors and runs as one batch (⌈log2 n⌉ rounds)
  round_robin  every pair in one batch, then Bradley–Terry aggregation into scores
  reference    every response against one reference (given, or the first response), one batch
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rewardkit.errors import RewardKitError
from rewardkit.ranking.aggregate import bradley_terry_scores
from rewardkit.scoring.protocol import RankResult
from rewardkit.types import Prompt

STRATEGIES = ("linear", "knockout", "round_robin", "reference")


def rank_responses(judge, prompt: Prompt, responses: Sequence[str], strategy: str = "knockout",
                   reference: str | None = None) -> RankResult:
    if strategy not in STRATEGIES:
        raise RewardKitError(f"unknown ranking strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if len(responses) == 0:
        raise RewardKitError("rank() needs at least one response")
    if len(responses) == 1:
        return RankResult([0], [0.0], strategy, 0)
    return {"linear": _linear, "knockout": _knockout, "round_robin": _round_robin,
            "reference": _reference}[strategy](judge, prompt, list(responses), reference)


def _linear(judge, prompt, responses, reference) -> RankResult:
    champion, scores = 0, [0.0] * len(responses)
    for challenger in range(1, len(responses)):
        (p,) = judge.compare([prompt], [responses[challenger]], [responses[champion]])
        scores[challenger] = p - 0.5  # margin over the champion it faced
        if p > 0.5:
            scores[champion] = min(scores[champion], 0.5 - p)
            champion = challenger
    scores[champion] = max(scores) + 1.0
    order = sorted(range(len(responses)), key=lambda i: -scores[i])
    return RankResult(order, scores, "linear", len(responses) - 1)


def _knockout(judge, prompt, responses, reference) -> RankResult:
    alive = list(range(len(responses)))
    rounds_won = [0.0] * len(responses)
    comparisons = 0
    while len(alive) > 1:
        pairs = [(alive[i], alive[i + 1]) for i in range(0, len(alive) - 1, 2)]
        probs = judge.compare([prompt] * len(pairs), [responses[a] for a, _ in pairs], [responses[b] for _, b in pairs])
        comparisons += len(pairs)
        survivors = []
        for (a, b), p in zip(pairs, probs):
            winner, loser, margin = (a, b, p) if p > 0.5 else (b, a, 1 - p)
            rounds_won[winner] += 1
            rounds_won[loser] += margin - 1  # losers ordered by how close they came
            survivors.append(winner)
        if len(alive) % 2:
            survivors.append(alive[-1])  # bye
            rounds_won[alive[-1]] += 1
        alive = survivors
    order = sorted(range(len(responses)), key=lambda i: -rounds_won[i])
    return RankResult(order, rounds_won, "knockout", comparisons)


def _round_robin(judge, prompt, responses, reference) -> RankResult:
    n = len(responses)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    probs = judge.compare([prompt] * len(pairs), [responses[i] for i, _ in pairs], [responses[j] for _, j in pairs])
    wins = np.zeros((n, n))
    for (i, j), p in zip(pairs, probs):
        wins[i, j], wins[j, i] = p, 1 - p
    scores = bradley_terry_scores(wins).tolist()
    order = sorted(range(n), key=lambda i: -scores[i])
    return RankResult(order, scores, "round_robin", len(pairs))


def _reference(judge, prompt, responses, reference) -> RankResult:
    anchor = reference if reference is not None else responses[0]
    probs = judge.compare_to_references([prompt] * len(responses), responses, [anchor] * len(responses))
    order = sorted(range(len(responses)), key=lambda i: -probs[i])
    return RankResult(order, probs, "reference", len(responses))
