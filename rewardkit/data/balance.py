"""Length-balanced preference pairs: take away the "longer answer wins" shortcut.

In most training sets the chosen answer is longer more often than not (0.54–0.65 in
UltraFeedback, LLMEval², PandaLM, HH-RLHF helpful), so a judge can lower its loss by preferring
length; on sets built the other way round (LLMBar, EvalBiasBench: 0.26–0.27) that preference
costs accuracy. Balancing keeps every pair of the rarer kind and as many of the common kind,
so answer length no longer predicts the label in what the judge trains on.
"""

from __future__ import annotations

import random


def length_balanced(pairs: list, seed: int = 0, count: int | None = None) -> list:
    """The pairs whose chosen answer is longer and those whose chosen answer is shorter, in equal
    numbers (a seeded sample of the more common kind; pairs with equal lengths all kept), in
    their input order. Lengths in characters.

    With `count`: at most `count` pairs, the first count // 2 of each kind in input order (no
    ties), so a balanced training set can be as large as an unbalanced one drawn from a bigger
    pool; fewer when a kind runs out (both kinds stay equal)."""
    longer = [i for i, p in enumerate(pairs) if len(p.chosen) > len(p.rejected)]
    shorter = [i for i, p in enumerate(pairs) if len(p.chosen) < len(p.rejected)]
    keep = min(len(longer), len(shorter))
    if count is not None:
        keep = min(keep, count // 2)
        return [pairs[i] for i in sorted(longer[:keep] + shorter[:keep])]
    rng = random.Random(seed)
    kept = set(rng.sample(longer, keep)) | set(rng.sample(shorter, keep))
    kept |= {i for i, p in enumerate(pairs) if len(p.chosen) == len(p.rejected)}
    return [pairs[i] for i in sorted(kept)]


def even_shares(available: dict[str, list], count: int) -> list:
    """Up to `count` items, as even a share from each list as their sizes allow: a list shorter
    than its share gives all it has and the others make up the rest (in the dict's order).
    Each list gives its first items, so a larger `count` takes a superset of a smaller one's."""
    shares = {name: 0 for name in available}
    left = count
    while left > 0:
        open_ = [n for n in available if shares[n] < len(available[n])]
        if not open_:
            break
        each = max(1, left // len(open_))
        for name in open_:
            step = min(each, len(available[name]) - shares[name], left)
            shares[name] += step
            left -= step
    return [item for name in available for item in available[name][:shares[name]]]
