"""ScoringEngine: token sequences in, one small score vector per sequence out.

It knows token ids and tensors, never text or templates. Each request is a shared `prefix`
plus a row-specific `suffix`; the score is read at the suffix's last token through a `head`
(the judge's two verdict logits, or a BT value head). Requests with the same prefix share one
prefix forward pass (its KV cache is expanded to the batch; a prefix only one request has is not
cached, so that row batches with the others), suffixes are sorted by length and batched by a
token budget, and results come back in input order. A batch that runs out of
memory is halved and retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from rewardkit.models.heads import last_hidden, last_positions
from rewardkit.models.precision import autocast_of
from rewardkit.scoring.distributed import active_shards, balance, gather

Head = Callable[[torch.Tensor], torch.Tensor]  # (B, H) hidden → (B, K) scores


@dataclass(frozen=True)
class ScoreRequest:
    prefix: tuple[int, ...]
    suffix: tuple[int, ...]  # must be non-empty: the score position is its last token

    @property
    def length(self) -> int:
        return len(self.prefix) + len(self.suffix)


class ScoringEngine:
    def __init__(self, model, head: Head, pad_id: int, *, max_batch_tokens: int = 8192,
                 use_prefix_cache: bool = True, min_cached_prefix: int = 16, min_prefix_share: float = 0.25):
        self.model, self.head, self.pad_id = model, head, pad_id
        self.max_batch_tokens = max_batch_tokens
        self.use_prefix_cache = use_prefix_cache
        self.min_cached_prefix = min_cached_prefix
        # A cached prefix saves its own tokens but makes attention take the general masked path
        # instead of the fused causal one; it pays off only when the prefix is a fair share of
        # the row (measured here: a 90-token prefix on 1.4k-token rows cost more than it saved).
        self.min_prefix_share = min_prefix_share
        self.stats = {"forward_calls": 0, "rows": 0, "prefix_passes": 0, "tokens": 0}
        # another backend's decoder pass (models/backends.py): input_ids → final states; no KV cache
        self.decoder = None

    def with_head(self, head: Head) -> "ScoringEngine":
        """A sibling engine with the same model, batching, prefix caching and decoder backend,
        reading `head` instead (e.g. the final hidden state itself, for pair embeddings)."""
        sibling = ScoringEngine(self.model, head, self.pad_id, max_batch_tokens=self.max_batch_tokens,
                                use_prefix_cache=self.use_prefix_cache, min_cached_prefix=self.min_cached_prefix,
                                min_prefix_share=self.min_prefix_share)
        sibling.decoder = self.decoder
        return sibling

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def run(self, requests: Sequence[ScoreRequest]) -> torch.Tensor:
        """(N, K) float32 scores, row i for requests[i]."""
        if not requests:
            return torch.empty(0, 0)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, request in enumerate(requests):
            if not request.suffix:
                raise ValueError(f"request {index} has an empty suffix; the score position must be in the suffix")
            key = request.prefix if self._worth_caching(request) else ()
            groups.setdefault(key, []).append(index)
        # a prefix only one request has saves nothing (its pass is a forward of its own): such rows
        # join the uncached rows, where they batch with rows of other prompts
        for key in [k for k, members in groups.items() if k and len(members) == 1]:
            groups.setdefault((), []).extend(groups.pop(key))
        if () in groups:
            groups[()].sort()
        units = []  # (prefix, request indices, rows): the batches one process would run, in its order
        for prefix, indices in groups.items():
            rows = [requests[i].suffix if prefix else requests[i].prefix + requests[i].suffix for i in indices]
            for chunk in self._batches(prefix, rows):
                units.append((prefix, [indices[i] for i in chunk], [rows[i] for i in chunk]))
        shards = active_shards()  # scoring shared among processes (scoring/distributed.py)
        mine = range(len(units)) if shards is None else balance(
            [len(prefix) + sum(map(len, rows)) for prefix, _, rows in units], shards[1])[shards[0]]
        scores: dict[int, torch.Tensor] = {}
        current, cache = None, None  # one prefix cache at a time: a group's batches are consecutive
        for unit in mine:
            prefix, indices, rows = units[unit]
            if prefix != current:
                current, cache = prefix, self._prefix_cache(prefix) if prefix else None
            for index, score in zip(indices, self._forward_halving(rows, prefix, cache)):
                scores[index] = score.cpu() if shards else score
        if shards is not None:
            scores = gather(scores)
        return torch.stack([scores[i] for i in range(len(requests))])

    def _worth_caching(self, request: ScoreRequest) -> bool:
        n = len(request.prefix)
        return self.use_prefix_cache and n >= self.min_cached_prefix and n >= self.min_prefix_share * request.length

    def _batches(self, prefix: tuple[int, ...], rows: list[tuple[int, ...]]) -> list[list[int]]:
        """Row indices of each forward batch: longest rows first, as many per batch as the token budget allows."""
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        batches, start = [], 0
        while start < len(order):
            width = len(prefix) + len(rows[order[start]])
            size = max(1, self.max_batch_tokens // max(1, width))
            batches.append(order[start:start + size])
            start += size
        return batches

    def _forward_halving(self, rows, prefix, cache) -> list[torch.Tensor]:
        try:
            return list(self._forward(rows, prefix, cache))
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if len(rows) == 1 or "out of memory" not in str(exc).lower():
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(rows) // 2
            return self._forward_halving(rows[:half], prefix, cache) + self._forward_halving(rows[half:], prefix, cache)

    def _prefix_cache(self, prefix: tuple[int, ...]):
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        ids = torch.tensor([prefix], device=self.device)
        from rewardkit.models.heads import cache_keyword, decoder_of

        decoder = decoder_of(self.model)
        with autocast_of(self.model):
            decoder(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, **{cache_keyword(decoder): cache})
        self.stats["prefix_passes"] += 1
        self.stats["tokens"] += len(prefix)
        return cache

    def _forward(self, rows, prefix, cache) -> torch.Tensor:
        from rewardkit.data.collate import pad_right

        ids, mask = pad_right([list(r) for r in rows], self.pad_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        self.stats["tokens"] += int(mask.sum())
        past = None
        if cache is not None:
            past = _expand(cache, len(rows), self.model.config)
            mask = torch.cat([torch.ones(len(rows), len(prefix), dtype=mask.dtype, device=self.device), mask], dim=1)
        if self.decoder is not None and past is None:
            hidden = last_positions(self.decoder(ids), mask).to(self.device)
        else:
            with autocast_of(self.model):  # the precision training measured in (models/precision.py)
                hidden = last_hidden(self.model, ids, mask, past_key_values=past)  # (B, H)
        self.stats["forward_calls"] += 1
        self.stats["rows"] += len(rows)
        return self.head(hidden).float()


def _expand(cache, batch: int, config):
    from transformers import DynamicCache

    data = [(layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1)) for layer in cache.layers]
    return DynamicCache(ddp_cache_data=data, config=config)
