"""Metrics over per-pair judgements. Inputs are P(chosen better) per pair (both orders
averaged) and, when available, the two single-order probabilities."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rewardkit.statistics import (  # noqa: F401  (also imported from here)
    expected_calibration_error,
    pearson,
    ranks,
    reliability_bins,
    spearman,
)


def credits(p_chosen: Sequence[float], ties: str = "half") -> list[float]:
    """Each pair's share of `accuracy`: 1 right, 0 wrong, an exact tie ½ (or 0 with ties="wrong").
    The per-pair values the intervals and paired differences resample (eval/intervals.py)."""
    if ties not in ("half", "wrong"):
        raise ValueError(f"ties must be 'half' or 'wrong', got {ties!r}")
    tie = 0.5 if ties == "half" else 0.0
    return [1.0 if p > 0.5 else tie if p == 0.5 else 0.0 for p in p_chosen]


def accuracy(p_chosen: Sequence[float], ties: str = "half") -> float:
    """Fraction of pairs the model gets right. An exact tie (p = 0.5: no preference) counts as
    half right — the expected score of a coin flip, rewardkit's rule — or, with ties="wrong",
    as wrong, RewardBench's rule (its `scores_chosen > scores_rejected`); results.json reports
    both, so figures compare with RewardBench's leaderboard."""
    values = credits(np.asarray(p_chosen, dtype=float).tolist(), ties)
    return float(np.mean(values)) if values else float("nan")


def position_consistency(p_ab: Sequence[float | None], p_ba: Sequence[float | None]) -> float | None:
    """Fraction of pairs whose verdict does not change when the answers swap places."""
    both = [(a, b) for a, b in zip(p_ab, p_ba) if a is not None and b is not None]
    if not both:
        return None
    return float(np.mean([(a > 0.5) == (b > 0.5) for a, b in both]))


def brier(p_chosen: Sequence[float]) -> float:
    """Mean squared error of P(chosen better) against the label (1)."""
    p = np.asarray(p_chosen, dtype=float)
    return float(((1 - p) ** 2).mean()) if p.size else float("nan")


def length_bias(p_chosen: Sequence[float], chosen_lengths: Sequence[int], rejected_lengths: Sequence[int]) -> dict:
    """Accuracy split by whether the chosen answer is the longer one. A judge that prefers long
    answers scores high on the first and low on the second."""
    p = np.asarray(p_chosen, dtype=float)
    c, r = np.asarray(chosen_lengths), np.asarray(rejected_lengths)
    longer, shorter, differ = c > r, c < r, c != r
    prefers = ((p > 0.5) == longer)[differ]  # picked the longer answer, among pairs that differ
    return {"chosen_longer": {"count": int(longer.sum()), "accuracy": accuracy(p[longer]) if longer.any() else None},
            "chosen_shorter": {"count": int(shorter.sum()), "accuracy": accuracy(p[shorter]) if shorter.any() else None},
            "prefers_longer": float(prefers.mean()) if differ.any() else None}
