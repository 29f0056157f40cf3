"""Choosing `budget` pool pairs for a target domain, from pair embeddings.

  ot       RoVRM (2024): an entropic optimal-transport plan from the target's pairs to the
           pool's (POT, `ot.unbalanced.sinkhorn_unbalanced`): the target's marginal is kept
           exactly, the pool's is relaxed, so pool pairs near the target receive its mass and
           the rest receive almost none; the pairs with the most mass are taken
  nearest  each pool pair's best cosine similarity to any target pair; the highest are taken
  margin   the pairs with the largest predicted margin |log-odds| (the model's confidence)
  random   a seeded sample: the baseline
Embeddings are L2-normalised first; the cost is 1 − cosine similarity.
"""

from __future__ import annotations

import numpy as np

from rewardkit.errors import ConfigError

STRATEGIES = ("ot", "nearest", "margin", "random")


def select(pool: np.ndarray, target: np.ndarray | None, budget: int, strategy: str, *, seed: int = 0,
           margins: np.ndarray | None = None, reg: float = 0.05, reg_pool: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(indices into the pool, best first; the score of every pool pair)."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if budget < 1 or budget > len(pool):
        raise ConfigError(f"--budget {budget}: must be between 1 and the pool's {len(pool)} pairs")
    if strategy in ("ot", "nearest") and (target is None or len(target) == 0):
        raise ConfigError(f"--strategy {strategy} needs a target with at least one pair (--target)")
    if strategy == "random":
        scores = np.random.default_rng(seed).random(len(pool))
    elif strategy == "margin":
        if margins is None:
            raise ConfigError("--strategy margin needs the model's margins (give --model)")
        scores = np.abs(np.asarray(margins, dtype=float))
    elif strategy == "nearest":
        scores = (_unit(pool) @ _unit(target).T).max(axis=1)
    else:
        scores = transported_mass(pool, target, reg=reg, reg_pool=reg_pool)
    order = np.argsort(-scores, kind="stable")
    return order[:budget], scores


def transported_mass(pool: np.ndarray, target: np.ndarray, *, reg: float = 0.05, reg_pool: float = 0.05) -> np.ndarray:
    """Mass each pool pair receives in the semi-relaxed entropic OT plan from the target."""
    try:
        import ot
    except ImportError:
        raise ConfigError("--strategy ot needs POT: pip install 'rewardkit[select]'") from None
    cost = 1.0 - _unit(pool) @ _unit(target).T
    cost = cost / max(float(cost.max()), 1e-12)
    a = np.full(len(pool), 1.0 / len(pool))
    b = np.full(len(target), 1.0 / len(target))
    plan = ot.unbalanced.sinkhorn_unbalanced(a, b, cost, reg=reg, reg_m=(reg_pool, float("inf")))
    return plan.sum(axis=1)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
