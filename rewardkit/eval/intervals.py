"""95% intervals by bootstrap over prompts, and paired differences between two models.

A prompt's rows are one cluster (RM-Bench has nine per prompt, a best-of-4 set three): the
rows of one prompt rise and fall together, so resampling rows would pretend to more evidence
than there is. Each resample draws prompts with replacement and takes the statistic over all
rows of the drawn prompts (the mean of row values, weighted by how many rows each prompt has).
Percentile intervals; a fixed seed makes them reproducible.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


def _cluster_totals(values: Sequence[float], clusters: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
    if len(values) != len(clusters):
        raise ValueError(f"{len(values)} values but {len(clusters)} cluster labels")
    index: dict = {}
    sums, counts = [], []
    for value, cluster in zip(values, clusters):
        at = index.setdefault(cluster, len(sums))
        if at == len(sums):
            sums.append(0.0)
            counts.append(0)
        sums[at] += float(value)
        counts[at] += 1
    return np.asarray(sums), np.asarray(counts, dtype=float)


def bootstrap_interval(values: Sequence[float], clusters: Sequence[Hashable] | None = None, *,
                       resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> list[float] | None:
    """[low, high] of the mean of `values` (None for no values); `clusters` labels each value's
    prompt (None: every value its own)."""
    if not len(values):
        return None
    sums, counts = _cluster_totals(values, clusters if clusters is not None else range(len(values)))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(resamples, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return [float(low), float(high)]


def paired_difference(a: Sequence[float], b: Sequence[float], clusters: Sequence[Hashable] | None = None, *,
                      resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> dict:
    """B − A over the same rows: {difference, ci95, within_noise}. The same prompts are drawn for
    both models in every resample (a paired bootstrap), so what the two share cancels."""
    if len(a) != len(b):
        raise ValueError(f"a paired difference needs the same rows: {len(a)} against {len(b)}")
    deltas = [float(y) - float(x) for x, y in zip(a, b)]
    interval = bootstrap_interval(deltas, clusters, resamples=resamples, level=level, seed=seed)
    difference = float(np.mean(deltas)) if deltas else float("nan")
    within = interval is None or interval[0] <= 0.0 <= interval[1]
    return {"difference": difference, "ci95": interval, "within_noise": within}


def describe(value: float, interval: list[float] | None) -> str:
    """0.625 [0.550, 0.700]"""
    if interval is None or value != value:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def weighted_strata_interval(strata: dict[str, tuple[Sequence[float], Sequence[Hashable]]], weights: dict[str, float],
                             *, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> list[float] | None:
    """[low, high] of Σ w_s·mean_s / Σ w_s — a score made of per-stratum means (RewardBench's
    sections weight their subsets' accuracies); each stratum's prompts are resampled on their own."""
    present = [s for s in strata if len(strata[s][0])]
    if not present:
        return None
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    for name in present:
        sums, counts = _cluster_totals(*strata[name])
        draws = rng.integers(0, len(sums), size=(resamples, len(sums)))
        total += weights[name] * sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    scores = total / sum(weights[s] for s in present)
    tail = (1 - level) / 2
    low, high = np.quantile(scores, [tail, 1 - tail])
    return [float(low), float(high)]
