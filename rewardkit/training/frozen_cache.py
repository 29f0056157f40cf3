"""--cache-frozen: run the frozen bottom blocks once per training row, not once per step.

With --train-layers N only the top N blocks learn, so what the blocks below them produce for
a row is fixed for the whole run. `FrozenBlockCache` computes it once (no gradients, the run's
precision), keeps it next to the row's token ids as `<key>_hidden`, adds it to each batch
(`collate`), and gives the loop the final hidden states from it by running only the top blocks
(`states`). Every epoch after the first is then several times cheaper, and the first costs one
inference pass instead of a training pass. Methods never see any of this: they declare which
feature keys hold token sequences (`sequence_keys`) and receive final hidden states.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from rewardkit.data.collate import pad_right
from rewardkit.errors import ConfigError
from rewardkit.models.heads import decoder_of
from rewardkit.models.split import DecoderSplit

HIDDEN_SUFFIX = "_hidden"


def decoder_states(backbone, batch: dict) -> torch.Tensor:
    """(B, T, H) final hidden states by the whole decoder. No padding mask: rows are
    right-padded and attention is causal (see heads.last_hidden)."""
    return decoder_of(backbone)(input_ids=batch["input_ids"], use_cache=False).last_hidden_state


class FrozenBlockCache:
    def __init__(self, backbone, top_blocks: int, keys: tuple[str, ...], pad_id: int):
        self.split = DecoderSplit(decoder_of(backbone), top_blocks)
        self.backbone, self.keys, self.pad_id = backbone, keys, pad_id

    @staticmethod
    def check_distributed(accelerator) -> None:
        kind = str(accelerator.distributed_type).rsplit(".", 1)[-1]
        if kind in ("FSDP", "DEEPSPEED", "MEGATRON_LM"):
            raise ConfigError(f"--cache-frozen works single-process or with DDP, not with {kind}")

    def attach(self, feature_sets: list[list[dict]], *, batch_size: int, autocast, store_dtype: torch.dtype | None = None,
               progress: Callable[[int, int], None] | None = None, scored_sets: list[list[dict]] = ()) -> dict:
        """Adds `<key>_hidden` (T, H) to every feature of every set. Rows of `feature_sets` run in
        length order so that batches carry little padding. Rows of `scored_sets` (the evaluation
        sets) run in the very batches evaluation makes of them: `batch_size` features at a time in
        order, all keys' rows padded together as the method's collate stacks them. The top blocks
        over those states then give exactly what the whole decoder gives for that batch; under
        bf16 a row's result moves with the shape of the batch it ran in, and training-time scores
        must be the scores of the model as saved. Returns {"seconds", "megabytes"}.

        The states are kept in the dtype the bottom blocks produce (`store_dtype` None): under
        bf16 autocast over fp32 weights the residual stream is fp32, and rounding it to bf16
        would make every training-time score differ from the same model's scores after reload."""
        start = time.perf_counter()
        device = next(self.backbone.parameters()).device
        first = next(features[0] for features in [*feature_sets, *scored_sets] if features)
        with autocast():
            self.split.check(torch.tensor([first[self.keys[0]][:64]], device=device))
        jobs = [(features, i, key) for features in feature_sets for key in self.keys for i in range(len(features))]
        jobs.sort(key=lambda job: len(job[0][job[1]][job[2]]))
        batches = [jobs[at:at + batch_size] for at in range(0, len(jobs), batch_size)]
        batches += [[(features, i, key) for key in self.keys for i in range(at, min(at + batch_size, len(features)))]
                    for features in scored_sets for at in range(0, len(features), batch_size)]
        total, done = sum(len(batch) for batch in batches), 0
        with torch.no_grad(), autocast():
            for chunk in batches:
                ids, _ = pad_right([f[i][key] for f, i, key in chunk], self.pad_id)
                hidden = self.split.bottom(ids.to(device))
                for row, (f, i, key) in enumerate(chunk):
                    f[i][key + HIDDEN_SUFFIX] = hidden[row, : len(f[i][key])].to("cpu", store_dtype or hidden.dtype).clone()
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        return {"seconds": time.perf_counter() - start,
                "megabytes": cached_bytes([*feature_sets, *scored_sets]) / 2**20}

    def collate(self, collate_fn: Callable[[list[dict]], dict]) -> Callable[[list[dict]], dict]:
        """The method's collate, plus the cached states of its rows (in the order of `keys`:
        all rows of the first key, then of the next, as methods stack them)."""
        def with_states(features: list[dict]) -> dict:
            batch = collate_fn(features)
            batch["frozen_hidden"] = pad_hidden([f[key + HIDDEN_SUFFIX] for key in self.keys for f in features])
            return batch

        return with_states

    def states(self, backbone, batch: dict) -> torch.Tensor:
        """(B, T, H) final hidden states: the top blocks over the cached bottom states."""
        return self.split.top(batch["frozen_hidden"])


def pad_hidden(rows: list[torch.Tensor]) -> torch.Tensor:
    """(B, T_max, H) in the rows' dtype, right-padded with zeros (never read: rows are causal and right-padded)."""
    width = max(r.shape[0] for r in rows)
    out = torch.zeros(len(rows), width, rows[0].shape[1], dtype=rows[0].dtype)
    for index, row in enumerate(rows):
        out[index, : row.shape[0]] = row
    return out


def cached_bytes(feature_sets: list[list[dict]]) -> int:
    return sum(v.numel() * v.element_size() for fs in feature_sets for f in fs for k, v in f.items()
               if k.endswith(HIDDEN_SUFFIX))
