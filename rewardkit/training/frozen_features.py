"""--cache-frozen: run the frozen bottom blocks once per training row, not once per step.

With --train-layers N only the top N blocks learn, so what the blocks below them produce for
a row is fixed for the whole run. We compute it once (no gradients, the run's precision),
keep it next to the row's token ids as `<key>_hidden`, and the tasks then run only the top
blocks at each step. Every epoch after the first is then several times cheaper, and the first
costs one inference pass instead of a training pass.
"""

from __future__ import annotations

from typing import Callable

import torch

from rewardkit.errors import ConfigError
from rewardkit.models.heads import decoder_of
from rewardkit.models.split import DecoderSplit
from rewardkit.training.batching import pad_right

HIDDEN_SUFFIX = "_hidden"


def check_distributed(accelerator) -> None:
    kind = str(accelerator.distributed_type).rsplit(".", 1)[-1]
    if kind in ("FSDP", "DEEPSPEED", "MEGATRON_LM"):
        raise ConfigError(f"--cache-frozen works single-process or with DDP, not with {kind}")


def attach_frozen_hidden(backbone, feature_sets: list[list[dict]], keys: tuple[str, ...], top_blocks: int, *,
                         pad_id: int, batch_size: int, autocast, store_dtype: torch.dtype,
                         progress: Callable[[int, int], None] | None = None) -> DecoderSplit:
    """Adds `<key>_hidden` (T, H) to every feature of every set; returns the split whose `top`
    the tasks call. Rows are run in length order so that batches carry little padding."""
    split = DecoderSplit(decoder_of(backbone), top_blocks)
    device = next(backbone.parameters()).device
    first = feature_sets[0][0][keys[0]]
    with autocast():
        split.check(torch.tensor([first[:64]], device=device))
    jobs = [(features, i, key) for features in feature_sets for key in keys for i in range(len(features))]
    jobs.sort(key=lambda job: len(job[0][job[1]][job[2]]))
    done = 0
    with torch.no_grad(), autocast():
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start:start + batch_size]
            ids, _ = pad_right([f[i][key] for f, i, key in chunk], pad_id)
            hidden = split.bottom(ids.to(device))
            for row, (f, i, key) in enumerate(chunk):
                f[i][key + HIDDEN_SUFFIX] = hidden[row, : len(f[i][key])].to("cpu", store_dtype).clone()
            done += len(chunk)
            if progress is not None:
                progress(done, len(jobs))
    return split


def pad_hidden(rows: list[torch.Tensor]) -> torch.Tensor:
    """(B, T_max, H) float32, right-padded with zeros (never read: rows are causal and right-padded)."""
    width = max(r.shape[0] for r in rows)
    out = torch.zeros(len(rows), width, rows[0].shape[1])
    for index, row in enumerate(rows):
        out[index, : row.shape[0]] = row.float()
    return out


def cached_bytes(feature_sets: list[list[dict]]) -> int:
    return sum(v.numel() * v.element_size() for fs in feature_sets for f in fs for k, v in f.items()
               if k.endswith(HIDDEN_SUFFIX))
