"""Batches by a token budget: rows of similar length together, so long rows train without
padding waste and short rows are not padded to the longest of a random batch.

Groups (rows that must share a batch, such as a pair's two presentation orders) stay whole.
The epoch's seeded order is cut into windows; each window is sorted by length and packed
greedily so that rows × longest row ≤ the budget; the batches are then shuffled (seeded), so
the order of lengths carries no pattern across steps.
"""

from __future__ import annotations

import random
from typing import Any

import torch


def group_spans(features: list[dict], group_key: str | None) -> list[list[int]]:
    """Indices of consecutive features sharing `group_key` (each feature alone without a key)."""
    spans: list[list[int]] = []
    for index, feature in enumerate(features):
        if group_key and spans and features[spans[-1][0]].get(group_key) == feature.get(group_key):
            spans[-1].append(index)
        else:
            spans.append([index])
    return spans


def token_budget_batches(features: list[dict], sequence_keys: tuple[str, ...], budget: int, *, seed: int,
                         group_key: str | None = None, window: int = 64) -> list[list[int]]:
    """Lists of feature indices; each batch's padded size (rows × longest row) stays within
    `budget`, except a single group that is alone larger than it."""
    rows_per_feature = len(sequence_keys)
    widths = [max(len(f[k]) for k in sequence_keys) for f in features]
    groups = group_spans(features, group_key)
    batches: list[list[int]] = []
    for start in range(0, len(groups), window):
        current: list[int] = []
        longest = 0
        for group in sorted(groups[start:start + window], key=lambda g: max(widths[i] for i in g)):
            longest_with = max(longest, *(widths[i] for i in group))
            if current and (len(current) + len(group)) * rows_per_feature * longest_with > budget:
                batches.append(current)
                current, longest_with = [], max(widths[i] for i in group)
            current, longest = current + group, longest_with
        if current:
            batches.append(current)
    random.Random(seed).shuffle(batches)
    return batches


def padded_tokens(features: list[dict], batch: list[int], sequence_keys: tuple[str, ...]) -> int:
    return len(batch) * len(sequence_keys) * max(len(features[i][k]) for i in batch for k in sequence_keys)


def shuffled_groups(features: list[dict], seed: int, group_key: str | None = None) -> list[dict]:
    """A seeded shuffle that keeps features sharing `group_key` next to each other (in their
    original order); without a key every feature is its own group."""
    groups: dict[Any, list[dict]] = {}
    for index, feature in enumerate(features):
        groups.setdefault(feature[group_key] if group_key else index, []).append(feature)
    keys = list(groups)
    order = torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed)).tolist()
    return [feature for i in order for feature in groups[keys[i]]]


def epoch_order(task, features: list[dict], seed: int) -> list[dict]:
    """The features in epoch order: the task's own `epoch_order` when it has one, else a seeded
    shuffle keeping features that share the task's `group_key` together."""
    custom = getattr(task, "epoch_order", None)
    if custom is not None:
        return custom(features, seed)
    return shuffled_groups(features, seed, getattr(task, "group_key", None))
