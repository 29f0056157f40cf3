"""Final hidden states of a frozen backbone, the features both stages learn from.

For each (prompt, response) we read two vectors in the reward template (the response as the
closed assistant turn, as a Bradley–Terry model reads it): the state at the response's last
token, which the attribute heads regress from, and the state at the prompt's last token,
which the gate reads (the prompt alone decides how attributes are mixed, as in ArmoRM).
Both come from one forward pass per row, batched by a token budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from rewardkit.data.collate import pad_right
from rewardkit.data.tokenize import SegmentEncoder
from rewardkit.files import replace_with
from rewardkit.models.heads import decoder_of
from rewardkit.models.precision import autocast_of
from rewardkit.types import Prompt, prompt_to_text


@dataclass
class States:
    response: torch.Tensor  # (N, H) float32
    prompt: torch.Tensor  # (N, H) float32
    length: torch.Tensor  # (N,) response length in characters
    truncated: int = 0  # rows the token limit cut

    def __len__(self) -> int:
        return self.response.shape[0]

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {"response": self.response, "prompt": self.prompt, "length": self.length,
                "truncated": torch.tensor([self.truncated])}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> "States":
        return cls(tensors["response"], tensors["prompt"], tensors["length"], int(tensors["truncated"][0]))

    def take(self, index) -> "States":
        return States(self.response[index], self.prompt[index], self.length[index], self.truncated)


class StateReader:
    """Both states of each row from one forward pass: rows are sorted by length and batched by
    a token budget (rows × longest row ≤ max_batch_tokens), right-padded, so causal attention
    keeps every row's states independent of its batch."""

    def __init__(self, model, tokenizer, template, max_length: int, *, max_batch_tokens: int = 8192,
                 use_prefix_cache: bool = True):
        self.model, self.pad_id = model, tokenizer.pad_token_id
        self.encoder = SegmentEncoder(tokenizer, template, max_length)
        self.max_batch_tokens = max_batch_tokens
        self.decoder = None  # another backend's decoder pass (models/backends.py)

    @torch.inference_mode()
    def read(self, prompts: Sequence[Prompt], responses: Sequence[str], *,
             progress: Callable[[int, int], None] | None = None) -> States:
        """States of every row, in input order; `progress(done, total)` after each batch."""
        rows, cuts, truncated = [], [], 0
        for prompt, response in zip(prompts, responses):
            encoded = self.encoder.encode(prompt, response)
            truncated += encoded.truncated
            rows.append(encoded.input_ids)
            cuts.append(encoded.spans["response_a"][0] - 1)  # the prompt's last token (the assistant header)
        hidden = self.model.config.hidden_size
        response_states, prompt_states = torch.zeros(len(rows), hidden), torch.zeros(len(rows), hidden)
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        done = 0
        while done < len(order):
            size = max(1, self.max_batch_tokens // len(rows[order[done]]))
            batch = order[done:done + size]
            response_states[batch], prompt_states[batch] = self._forward([rows[i] for i in batch],
                                                                         [cuts[i] for i in batch])
            done += len(batch)
            if progress:
                progress(done, len(rows))
        lengths = torch.tensor([float(len(r)) for r in responses])
        return States(response_states, prompt_states, lengths, truncated)

    def _forward(self, rows: list[list[int]], cuts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.model.parameters()).device
        ids, mask = pad_right(rows, self.pad_id)
        if self.decoder is not None:
            out = self.decoder(ids).float().cpu()
        else:
            with autocast_of(self.model):  # the precision the model was marked with (models/precision.py)
                out = decoder_of(self.model)(input_ids=ids.to(device)).last_hidden_state.float().cpu()
        index = torch.arange(len(rows))
        return out[index, mask.sum(1) - 1], out[index, torch.tensor(cuts)]


def cached_states(directory: Path | None, name: str, key: str, compute: Callable[[], States]) -> States:
    """`compute()`, or the states saved under `directory` by an earlier run with the same `key`
    (a digest of model, template, limit and rows); saved atomically, so a crash in a later
    stage resumes without running the backbone again."""
    if directory is None:
        return compute()
    from safetensors.torch import load_file, save_file

    path = directory / f"{name}-{key}.safetensors"
    if path.is_file():
        return States.from_tensors(load_file(str(path)))
    states = compute()
    tensors = {k: v.contiguous() for k, v in states.to_tensors().items()}
    replace_with(path, lambda temp: save_file(tensors, str(temp)))
    return states


def rows_digest(model: str, template: dict, max_length: int, prompts, responses) -> str:
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps([model, template, max_length], sort_keys=True, default=str).encode())
    for prompt, response in zip(prompts, responses):
        digest.update(prompt_to_text(prompt).encode())
        digest.update(b"\0")
        digest.update(response.encode())
        digest.update(b"\1")
    return digest.hexdigest()[:16]
