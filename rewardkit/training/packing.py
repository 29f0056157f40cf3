"""--packing: a micro-batch's rows laid end to end in a few long sequences, with no padding
between them, and rows that begin alike computed once.

`rows` packing puts each row in a pack of its own segment: position ids restart at 0 for every
row and attention stays inside the row, so every token sees exactly what it sees in a padded
batch. `shared` packing goes further for the rows a method shows together (a Bradley–Terry
pair's chosen and rejected sequences, a judge's two presentation orders of one pair): the
tokens they have in common at the start — the prompt, or the judge's instructions and question
— are laid down once, and each row's own tokens follow as a branch that attends to that common
start and to itself, never to another branch ([prompt | chosen | rejected]). Causal attention
makes this exact: a token's hidden state depends only on the tokens before it in its own row.

Methods see none of it. The loop collates a micro-batch as the method asks (`task.collate`),
and this module adds the packed sequences beside it; `packed_states` runs the decoder over the
packs and hands back the (rows, T, H) hidden states the method would have received from the
padded batch, each row's positions gathered from its pack. The loss is then read at each row's
own positions by the method's unchanged forward. Only training steps are packed: evaluation and
every scoring path keep the padded forward, so training-time scores equal the reloaded model's.

The attention mask is a dense (packs, 1, L, L) boolean for SDPA (additive float for eager
attention): exact on CPU and on GPUs. A backbone whose attention ignores a 4D mask (flash
attention kernels) would give wrong states, so `check_packing` compares packed and padded
states once before training and the run falls back to padded batches where they differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardkit.models.heads import decoder_of
from rewardkit.training.batching import group_spans
from rewardkit.training.frozen_cache import decoder_states


@dataclass
class Tree:
    """One group of rows as it is laid down in a pack: a common start, then each row's own tokens."""

    rows: list[int]  # indices of the batch's logical rows in this group
    prefix: list[int]  # token ids the rows share at their start
    suffixes: list[list[int]]  # each row's own tokens after the common start

    @property
    def length(self) -> int:
        return len(self.prefix) + sum(len(s) for s in self.suffixes)


def common_prefix(sequences: list[list[int]]) -> int:
    """How many leading tokens all `sequences` share."""
    shortest = min(len(s) for s in sequences)
    for position in range(shortest):
        token = sequences[0][position]
        if any(s[position] != token for s in sequences[1:]):
            return position
    return shortest


def logical_rows(features: list[dict], keys: tuple[str, ...]) -> list[list[int]]:
    """The token sequences of a micro-batch in the order methods stack them: every feature's
    first key, then every feature's next key (the rows of the padded batch)."""
    return [list(f[key]) for key in keys for f in features]


def build_trees(features: list[dict], keys: tuple[str, ...], group_key: str | None, share: bool) -> list[Tree]:
    """The trees of one micro-batch. With `share`, the rows of each feature (all its keys) and of
    features sharing `group_key` form one tree; otherwise every row is a tree of its own."""
    rows = logical_rows(features, keys)
    if not share:
        return [Tree([r], [], [seq]) for r, seq in enumerate(rows)]
    trees = []
    for span in group_spans(features, group_key):
        members = [k * len(features) + i for k in range(len(keys)) for i in span]
        sequences = [rows[r] for r in members]
        start = common_prefix(sequences) if len(sequences) > 1 else 0
        trees.append(Tree(members, sequences[0][:start], [s[start:] for s in sequences]))
    return trees


def pack_trees(trees: list[Tree], capacity: int) -> list[list[Tree]]:
    """First-fit decreasing: trees in packs of at most `capacity` tokens (a longer tree alone)."""
    packs: list[list[Tree]] = []
    room: list[int] = []
    for tree in sorted(trees, key=lambda t: -t.length):
        for index, free in enumerate(room):
            if tree.length <= free:
                packs[index].append(tree)
                room[index] -= tree.length
                break
        else:
            packs.append([tree])
            room.append(capacity - tree.length)
    return packs


def packed_batch(features: list[dict], keys: tuple[str, ...], group_key: str | None, *, share: bool,
                 capacity: int, pad_id: int, width: int) -> dict:
    """The packed tensors for one micro-batch whose padded rows are `width` tokens wide:
    packed_ids / packed_positions / packed_segments / packed_branches (P, L) and packed_index
    (rows, width), the flat index into (P·L) of each row's every position (padding → 0)."""
    trees = build_trees(features, keys, group_key, share)
    packs = pack_trees(trees, max(capacity, max(t.length for t in trees)))
    length = max(sum(t.length for t in pack) for pack in packs)
    ids = torch.full((len(packs), length), pad_id, dtype=torch.long)  # (P, L)
    positions = torch.zeros((len(packs), length), dtype=torch.long)  # (P, L): position within its row
    segments = torch.full((len(packs), length), -1, dtype=torch.long)  # (P, L): which tree; -1 padding
    branches = torch.zeros((len(packs), length), dtype=torch.long)  # (P, L): 0 common start, k the k-th row's own
    index = torch.zeros((sum(len(t.rows) for t in trees), width), dtype=torch.long)  # (rows, width)
    for p, pack in enumerate(packs):
        at = 0
        for s, tree in enumerate(pack):
            start = len(tree.prefix)
            _lay(ids, positions, segments, branches, p, at, tree.prefix, range(start), s, 0)
            prefix_flat = p * length + at + torch.arange(start)
            at += start
            for k, (row, suffix) in enumerate(zip(tree.rows, tree.suffixes), start=1):
                _lay(ids, positions, segments, branches, p, at, suffix, range(start, start + len(suffix)), s, k)
                index[row, :start] = prefix_flat
                index[row, start:start + len(suffix)] = p * length + at + torch.arange(len(suffix))
                at += len(suffix)
    return {"packed_ids": ids, "packed_positions": positions, "packed_segments": segments,
            "packed_branches": branches, "packed_index": index}


def _lay(ids, positions, segments, branches, pack: int, at: int, tokens: list[int], position_range, segment: int,
         branch: int) -> None:
    end = at + len(tokens)
    ids[pack, at:end] = torch.tensor(tokens, dtype=torch.long)
    positions[pack, at:end] = torch.tensor(list(position_range), dtype=torch.long)
    segments[pack, at:end] = segment
    branches[pack, at:end] = branch


def packed_collate(collate_fn, keys: tuple[str, ...], group_key: str | None, *, share: bool, capacity: int, pad_id: int):
    """The method's collate, plus the packed sequences of the same rows."""

    def with_packs(features: list[dict]) -> dict:
        batch = collate_fn(features)
        width = batch["attention_mask"].shape[1]
        batch.update(packed_batch(features, keys, group_key, share=share, capacity=capacity, pad_id=pad_id,
                                  width=width))
        return batch

    return with_packs


def attention_mask(segments: torch.Tensor, branches: torch.Tensor, implementation: str,
                   dtype: torch.dtype) -> torch.Tensor:
    """(P, 1, L, L): token i sees token j when j is not after i, both lie in one tree, and j is
    in the common start or in i's own branch. Boolean (True = attend) for SDPA and the like; an
    additive float mask (0 or the dtype's minimum) for eager attention, which adds it to the scores."""
    length = segments.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segments.device).tril()
    same_tree = segments[:, :, None] == segments[:, None, :]
    same_branch = (branches[:, None, :] == 0) | (branches[:, :, None] == branches[:, None, :])
    allowed = (causal & same_tree & same_branch)[:, None]  # (P, 1, L, L)
    if implementation == "eager":
        blocked = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
        return blocked.masked_fill_(~allowed, torch.finfo(dtype).min)
    return allowed


def packed_states(backbone, batch: dict) -> torch.Tensor:
    """(rows, T, H) final hidden states; from the packs when the batch has them, else the padded forward."""
    if "packed_index" not in batch:
        return decoder_states(backbone, batch)
    decoder = decoder_of(backbone)
    implementation = getattr(decoder.config, "_attn_implementation", None) or "sdpa"
    dtype = next(decoder.parameters()).dtype
    mask = attention_mask(batch["packed_segments"], batch["packed_branches"], implementation, dtype)
    hidden = decoder(input_ids=batch["packed_ids"], attention_mask=mask, position_ids=batch["packed_positions"],
                     use_cache=False).last_hidden_state  # (P, L, H)
    return hidden.flatten(0, 1)[batch["packed_index"]]  # (rows, T, H)


@torch.no_grad()
def packing_difference(backbone, batch: dict) -> float:
    """The largest difference between packed and padded final states at real tokens, relative
    to the padded states' largest magnitude, computed without autocast (in the weights' dtype)."""
    device = next(backbone.parameters()).device
    moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.autocast(device_type=device.type, enabled=False):
            padded = decoder_states(backbone, moved).float()
            packed = packed_states(backbone, moved).float()
    finally:
        backbone.train(was_training)
    real = moved["attention_mask"].bool()
    scale = padded[real].abs().max().clamp_min(1e-6)
    return ((packed - padded)[real].abs().max() / scale).item()


def check_packing(backbone, batch: dict) -> tuple[bool, float]:
    """(packing is exact on this backbone, the relative difference measured). fp32 weights must
    agree to 1e-4 of the states' scale; bf16 weights (rounding differs with the batch shape) to 2e-2."""
    difference = packing_difference(backbone, batch)
    dtype = next(backbone.parameters()).dtype
    return difference <= (1e-4 if dtype == torch.float32 else 2e-2), difference


def sharing_saving(features: list[dict], keys: tuple[str, ...], group_key: str | None, limit: int = 4096) -> float:
    """The share of a data set's tokens that shared packing lays down only once (0 to <1),
    estimated on its first `limit` features (a pass over every prefix of a large set would cost
    more than it tells)."""
    features = features[:limit]
    total = sum(len(f[key]) for f in features for key in keys)
    if not total:
        return 0.0
    packed = sum(t.length for t in build_trees(features, keys, group_key, share=True))
    return 1.0 - packed / total


# auto packs a run when shared packing would lay down at least this share of its tokens only
# once; below it, token-budget padded batches were as fast or faster (bench/peers.py, docs/training.md)
AUTO_MIN_SAVING = 0.15


@dataclass
class PackingChoice:
    """What a run packs with, and why (saved in rewardkit.json as `training.packing_used`)."""

    mode: str  # off | rows | shared
    reason: str
    saving: float = 0.0  # share of the tokens shared packing lays down once
    difference: float | None = None  # packed vs padded states, relative (check_packing)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "reason": self.reason, "saving": round(self.saving, 4),
                "difference": self.difference}


def choose_packing(requested: str, task, features: list[dict], backbone, *, cache_frozen: bool) -> PackingChoice:
    """Resolve --packing for a run: auto picks shared packing where it saves at least
    AUTO_MIN_SAVING of the tokens; any packing is checked against the padded forward on the first
    rows and falls back to padded batches (with the reason) where the backbone's attention
    does not honour the packed mask."""
    keys, group_key = task.sequence_keys, getattr(task, "group_key", None)
    if requested == "off":
        return PackingChoice("off", "--packing off")
    if cache_frozen:
        return PackingChoice("off", "--cache-frozen reads cached padded states")
    saving = sharing_saving(features, keys, group_key)
    reason = f"--packing {requested}"
    if requested == "auto":
        if saving < AUTO_MIN_SAVING:
            return PackingChoice("off", f"auto: shared packing would save {saving:.0%} of the tokens "
                                        f"(< {AUTO_MIN_SAVING:.0%})", saving)
        requested, reason = "shared", f"auto: shared packing lays down {saving:.0%} of the tokens only once"
    sample = features[:sum(len(span) for span in group_spans(features, group_key)[:2])]
    collate = packed_collate(task.collate, keys, group_key, share=requested == "shared", capacity=10**9,
                             pad_id=pad_id_of(task))  # one pack: segments must stay apart
    exact, difference = check_packing(backbone, collate(sample))
    if not exact:
        return PackingChoice("off", f"packed states differ from padded ones by {difference:.2e} of their scale on "
                                    "this backbone (its attention ignores a 4D mask); padded batches instead",
                             saving, difference)
    return PackingChoice(requested, reason, saving, difference)


def pad_id_of(task) -> int:
    pad = task.tokenizer.pad_token_id
    return pad if pad is not None else 0
