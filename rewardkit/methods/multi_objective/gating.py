"""Stage 2: the gate (ArmoRM) or the router (DMoERM), trained on preference pairs.

Gate: the attribute heads are fixed; the gating MLP on the prompt's state and the reward scale
are trained with the Bradley–Terry loss −log σ(r_chosen − r_rejected), plus an optional
penalty β · corr(r, log length)² over each batch's responses, so that length does not buy
reward. β is chosen by measurement (`choose_length_penalty`).
Experts: one linear Bradley–Terry head per category, and a router (the same MLP) trained to
predict the pair's category from the prompt; the reward is the router-weighted expert score.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rewardkit.methods.frozen_states import fit_head
from rewardkit.methods.multi_objective.head import MultiObjectiveHead
from rewardkit.methods.multi_objective.states import States


@dataclass
class PairStates:
    """Chosen and rejected rows of the same pairs, aligned."""

    chosen: States
    rejected: States
    categories: torch.Tensor | None = None  # (N,) expert index per pair

    def __len__(self) -> int:
        return len(self.chosen)

    def take(self, index) -> "PairStates":
        cats = self.categories[index] if self.categories is not None else None
        return PairStates(self.chosen.take(index), self.rejected.take(index), cats)


def pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x, y = x - x.mean(), y - y.mean()
    return (x * y).sum() / (x.norm() * y.norm()).clamp(min=1e-12)


def rewards_of(head: MultiObjectiveHead, pairs: PairStates) -> tuple[torch.Tensor, torch.Tensor]:
    c, r = pairs.chosen, pairs.rejected
    return head(c.prompt, c.response, c.length), head(r.prompt, r.response, r.length)


def train_gate(head: MultiObjectiveHead, pairs: PairStates, *, steps: int, lr: float, length_penalty: float = 0.0,
               batch: int = 64, seed: int = 0) -> list[float]:
    """Trains head.gate and head.log_scale in place; returns the loss per step."""
    torch.manual_seed(seed)

    def loss_of(index, generator):
        part = pairs.take(index)
        chosen, rejected = rewards_of(head, part)
        loss = -F.logsigmoid(chosen - rejected).mean()
        if length_penalty:
            lengths = torch.log1p(torch.cat([part.chosen.length, part.rejected.length]))
            loss = loss + length_penalty * pearson(torch.cat([chosen, rejected]), lengths) ** 2
        return loss

    head.train()
    losses = fit_head([*head.gate.parameters(), head.log_scale], loss_of, steps=steps, lr=lr, weight_decay=1e-2,
                      rows=len(pairs), batch=batch, seed=seed)
    head.eval()
    return losses


@torch.no_grad()
def pair_metrics(head: MultiObjectiveHead, pairs: PairStates) -> dict:
    chosen, rejected = rewards_of(head, pairs)
    rewards = torch.cat([chosen, rejected])
    lengths = torch.log1p(torch.cat([pairs.chosen.length, pairs.rejected.length]))
    return {"accuracy": (chosen > rejected).float().mean().item(), "mean_margin": (chosen - rejected).mean().item(),
            "length_correlation": pearson(rewards, lengths).item()}


def choose_length_penalty(make_head, pairs: PairStates, penalties: list[float], *, share: float, steps: int,
                          lr: float, seed: int = 0) -> tuple[float, list[dict]]:
    """Fits a gate per penalty on (1 − share) of the pairs and measures accuracy and
    corr(reward, log length) on the rest. Chosen: among penalties within 2 points of the best
    validation accuracy, the one with the smallest |correlation| (the first on a tie)."""
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed + 1))
    cut = max(1, int(len(pairs) * share))
    validation, training = pairs.take(order[:cut]), pairs.take(order[cut:])
    trials = []
    for penalty in penalties:
        head = make_head()
        train_gate(head, training, steps=steps, lr=lr, length_penalty=penalty, seed=seed)
        trials.append({"penalty": penalty, **pair_metrics(head, validation)})
    best = max(t["accuracy"] for t in trials)
    eligible = [t for t in trials if t["accuracy"] >= best - 0.02]
    return min(eligible, key=lambda t: abs(t["length_correlation"]))["penalty"], trials


def train_experts(head: MultiObjectiveHead, pairs: PairStates, *, steps: int, lr: float, seed: int = 0,
                  weight_decay: float = 1e-2) -> dict:
    """Expert heads (one linear BT head per category, on that category's pairs) and the router
    (cross-entropy on the pair's category from the prompt state), in place."""
    assert pairs.categories is not None
    torch.manual_seed(seed)
    zc, zr = head.standardise(pairs.chosen.response, "response"), head.standardise(pairs.rejected.response, "response")
    accuracies = {}
    for e, name in enumerate(head.names):
        rows = pairs.categories == e
        w = torch.zeros(zc.shape[1], requires_grad=True)
        diff = zc[rows] - zr[rows]
        fit_head([w], lambda index, generator, w=w, diff=diff: -F.logsigmoid(diff @ w).mean(), steps=steps, lr=lr,
                 weight_decay=weight_decay, seed=seed)
        with torch.no_grad():
            head.weight[e] = w.detach()
            accuracies[name] = ((diff @ w) > 0).float().mean().item()
    prompts = head.standardise(pairs.chosen.prompt, "prompt")
    head.train()
    fit_head(head.gate.parameters(), lambda index, generator: F.cross_entropy(head.gate(prompts), pairs.categories),
             steps=steps, lr=lr, weight_decay=weight_decay, seed=seed)
    head.eval()
    with torch.no_grad():
        routed = (head.gate(prompts).argmax(-1) == pairs.categories).float().mean().item()
    return {"expert_train_accuracy": accuracies, "router_train_accuracy": routed}
