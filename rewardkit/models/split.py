"""A decoder seen as two parts that share its weights: the bottom blocks and the top blocks.

Partial fine-tuning trains only the top blocks, so the bottom blocks' output for a training
row never changes: computing it once and reusing it every epoch replaces most of each training
step's forward pass. `bottom(input_ids)` gives the hidden states after the bottom blocks,
`top(hidden)` finishes the pass (remaining blocks + final norm). Both are shallow views of
the decoder: no weight is copied, and saving the backbone saves the trained top blocks.
"""

from __future__ import annotations

import copy

import torch

from rewardkit.errors import ConfigError


class DecoderSplit:
    def __init__(self, decoder, top_blocks: int):
        layers = getattr(decoder, "layers", None)
        if not isinstance(layers, torch.nn.ModuleList) or not hasattr(decoder, "norm"):
            raise ConfigError(f"--cache-frozen: {type(decoder).__name__} has no `.layers` / `.norm`; "
                              "train without --cache-frozen")
        if not 1 <= top_blocks < len(layers):
            raise ConfigError(f"--cache-frozen needs --train-layers between 1 and {len(layers) - 1}, got {top_blocks}")
        self.at = len(layers) - top_blocks
        self._bottom = _view(decoder, list(layers)[: self.at], first=0, final_norm=False)
        self._top = _view(decoder, list(layers)[self.at:], first=self.at, final_norm=True)
        self._decoder = decoder

    def bottom(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T, H) hidden states after the bottom blocks (right-padded rows, causal: padding is never read)."""
        return self._bottom(input_ids=input_ids, use_cache=False).last_hidden_state

    def top(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, T, H) final hidden states from the bottom blocks' output."""
        return self._top(inputs_embeds=hidden, use_cache=False).last_hidden_state

    @torch.inference_mode()
    def check(self, input_ids: torch.Tensor, atol: float = 1e-3) -> None:
        """Refuse architectures whose forward does more than embed → blocks → norm (for example
        a scaled embedding): the two parts must reproduce the whole decoder."""
        whole = self._decoder(input_ids=input_ids, use_cache=False).last_hidden_state.float()
        parts = self.top(self.bottom(input_ids)).float()
        error = (whole - parts).abs().max().item()
        if error > atol * max(1.0, whole.abs().max().item()):
            raise ConfigError(f"--cache-frozen: {type(self._decoder).__name__} cannot be split into bottom and top "
                              f"blocks exactly (max difference {error:.2e}); train without --cache-frozen")


def _view(decoder, layers: list, *, first: int, final_norm: bool):
    part = copy.copy(decoder)  # shallow: same parameters; its own module table so the original is untouched
    part._modules = dict(decoder._modules)
    part.layers = torch.nn.ModuleList(layers)
    if not final_norm:
        part.norm = torch.nn.Identity()
    part.config = copy.deepcopy(decoder.config)
    part.config.num_hidden_layers = len(layers)
    if getattr(part.config, "layer_types", None):  # per-block attention kinds (sliding / full)
        part.config.layer_types = list(decoder.config.layer_types)[first:first + len(layers)]
    return part
