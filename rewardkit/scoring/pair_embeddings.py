"""Pair embeddings: one vector per (prompt, a, b) from any scorer that gives pair states.

A judge gives the state at its verdict position with a shown first minus the same with b
first (halved); a Bradley–Terry model gives state(prompt, a) − state(prompt, b). Either way
swapping a and b negates the vector. Rows come back in input order, each with its pair's id,
source and subset, and the model named, so embeddings of different models are never mixed.
Saving and reading them as Parquet is `rewardkit/selection/embeddings.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from rewardkit.errors import ConfigError


@dataclass
class PairEmbeddings:
    vectors: np.ndarray  # (N, H) float32
    model: str
    kind: str
    ids: list = field(default_factory=list)
    sources: list = field(default_factory=list)
    subsets: list = field(default_factory=list)

    def __len__(self) -> int:
        return self.vectors.shape[0]


def sides(record) -> tuple:
    """(prompt, a, b) of a labeled pair (a = chosen) or an unlabeled one."""
    if hasattr(record, "chosen"):
        return record.prompt, record.chosen, record.rejected
    return record.prompt, record.response_a, record.response_b


def embed_pairs(scorer, records: list, *, model: str, chunk: int = 64,
                progress: Callable[[int], None] | None = None) -> PairEmbeddings:
    if not hasattr(scorer, "pair_states"):
        raise ConfigError(f"--model {model}: a {getattr(scorer, 'kind', type(scorer).__name__)!r} model gives no pair "
                          "state; use a judge (a causal LM or a trained judge) or a Bradley–Terry model")
    parts = []
    for start in range(0, len(records), chunk):
        part = [sides(r) for r in records[start:start + chunk]]
        parts.append(scorer.pair_states(*map(list, zip(*part))).float().cpu().numpy())
        if progress:
            progress(len(part))
    vectors = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    return PairEmbeddings(vectors.astype(np.float32), model, scorer.kind, [r.id for r in records],
                          [r.source for r in records], [r.subset for r in records])


