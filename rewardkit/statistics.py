"""Correlations over plain sequences of numbers, for evaluation and for the methods that report
how well a prediction tracks a target (e.g. a margin head's Spearman correlation)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation; None when either side is constant or there are < 3 values."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(1, len(values) + 1)
    unique, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranked)
    return (sums / np.bincount(inverse))[inverse]


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (Pearson on tie-averaged ranks)."""
    return pearson(ranks(x), ranks(y)) if len(x) >= 3 else None


def kendall_tau(x, y) -> float | None:
    """Kendall's τ-b of two equally long sequences (ties in either counted as τ-b does); None
    when either is constant. Computed in row blocks: no quadratic memory."""
    import numpy as np

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"kendall_tau: {len(a)} against {len(b)} values")
    concordance = ties_a = ties_b = pairs = 0.0
    for start in range(0, len(a), 512):
        da = np.sign(a[start:start + 512, None] - a[None, :])
        db = np.sign(b[start:start + 512, None] - b[None, :])
        upper = np.arange(start, min(start + 512, len(a)))[:, None] < np.arange(len(a))[None, :]
        concordance += float((da * db)[upper].sum())
        ties_a += float((da == 0)[upper].sum())
        ties_b += float((db == 0)[upper].sum())
        pairs += float(upper.sum())
    denominator = ((pairs - ties_a) * (pairs - ties_b)) ** 0.5
    return None if denominator == 0 else concordance / denominator


def reliability_bins(p_chosen: Sequence[float], bins: int = 10) -> list[dict]:
    """Confidence max(p, 1 − p) against correctness, in equal-width bins over [0.5, 1]."""
    p = np.asarray(p_chosen, dtype=float)
    confidence = np.maximum(p, 1 - p)
    correct = (p > 0.5).astype(float)
    edges = np.linspace(0.5, 1.0, bins + 1)
    out = []
    for i in range(bins):
        upper = confidence <= edges[i + 1] if i == bins - 1 else confidence < edges[i + 1]
        inside = (confidence >= edges[i]) & upper
        if inside.any():
            out.append({"low": float(edges[i]), "high": float(edges[i + 1]), "count": int(inside.sum()),
                        "confidence": float(confidence[inside].mean()), "accuracy": float(correct[inside].mean())})
    return out


def expected_calibration_error(p_chosen: Sequence[float], bins: int = 10) -> float:
    """Σ_bins (n_bin / N)·|accuracy − confidence| over the reliability bins."""
    table = reliability_bins(p_chosen, bins)
    total = sum(b["count"] for b in table)
    if not total:
        return float("nan")
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in table))
