"""PreferenceHead: a learned representation of a pair, odd by construction.

    z = e / s              e: the base model's pair embedding (antisymmetric), s: its per-
                           dimension RMS on the training pairs (no centring: it would break oddness)
    φ = tanh(W z)          the representation (dim values); tanh is odd, so φ(b, a) = −φ(a, b)
    logit = v·φ            P(a better) = σ(logit)
    margin = u·φ           the predicted rating gap of a over b
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rewardkit.methods.frozen_states import fit_head


class PreferenceHead(nn.Module):
    def __init__(self, hidden: int, dim: int = 64):
        super().__init__()
        self.register_buffer("scale", torch.ones(hidden))
        self.project = nn.Linear(hidden, dim, bias=False)
        self.preference = nn.Linear(dim, 1, bias=False)
        self.margin = nn.Linear(dim, 1, bias=False)

    def represent(self, pair_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.project(pair_states.float() / self.scale))

    def forward(self, pair_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(preference logit (N,), predicted margin (N,))."""
        phi = self.represent(pair_states)
        return self.preference(phi).squeeze(-1), self.margin(phi).squeeze(-1)


def train_head(head: PreferenceHead, states: torch.Tensor, margins: torch.Tensor, *, steps: int, lr: float,
               margin_weight: float = 1.0, batch: int = 64, seed: int = 0) -> list[float]:
    """`states`: (N, H) embeddings of (prompt, chosen, rejected); `margins`: (N,) rating gaps,
    NaN where a pair has none. Each step shows every sampled pair in a random orientation (the
    label and the margin flip with it), so the preference loss teaches the sign and the margin
    loss the size."""
    has_margin = ~torch.isnan(margins)
    filled = torch.nan_to_num(margins)

    def loss_of(index, generator):
        sign = torch.randint(0, 2, (len(index),), generator=generator).float() * 2 - 1
        logit, margin = head(states[index] * sign[:, None])
        loss = F.binary_cross_entropy_with_logits(logit, (sign > 0).float())
        mask = has_margin[index]
        if margin_weight and mask.any():
            loss = loss + margin_weight * ((margin - sign * filled[index])[mask] ** 2).mean()
        return loss

    head.train()
    losses = fit_head(head.parameters(), loss_of, steps=steps, lr=lr, weight_decay=1e-2, rows=len(states), batch=batch,
                      seed=seed)
    head.eval()
    return losses
