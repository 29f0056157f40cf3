"""Losses as pure tensor functions.

judge_loss — GRAM stage 2. Cross-entropy over the two candidate verdict tokens only, with
label smoothing ε. With d = z_target − z_other (the logit gap between the right and the wrong
verdict), torch's smoothed target puts 1 − ε/2 on the right label and ε/2 on the other:

    L = −(1 − ε/2)·log σ(d) − (ε/2)·log σ(−d)
      = −log σ(d) + (ε/2)·d            (using log σ(−d) = log σ(d) − d)

i.e. the Bradley–Terry ranking loss −log σ(d) plus a linear penalty on the margin, whose
minimum sits at the finite gap d* = log((2 − ε)/ε) (≈ 2.94 for ε = 0.1): the judge is kept
from growing over-confident. `tests/test_losses.py` checks the identity numerically.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def judge_loss(candidate_logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.1) -> torch.Tensor:
    """candidate_logits: (B, 2) logits of the verdict tokens ("A", "B"); targets: (B,) in {0, 1}."""
    return F.cross_entropy(candidate_logits.float(), targets, label_smoothing=label_smoothing)


def judge_loss_bt_form(candidate_logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.1) -> torch.Tensor:
    """The same loss written as regularised Bradley–Terry (for tests and the docs)."""
    logits = candidate_logits.float()
    right = logits.gather(1, targets[:, None]).squeeze(1)
    wrong = logits.gather(1, (1 - targets)[:, None]).squeeze(1)
    gap = right - wrong
    return (-F.logsigmoid(gap) + 0.5 * label_smoothing * gap).mean()


def order_centred_judge_loss(candidate_logits: torch.Tensor, targets: torch.Tensor, pairs: torch.Tensor,
                             label_smoothing: float = 0.1) -> torch.Tensor:
    """The judge loss on each pair's *content* margin, with the position preference removed.

    With g = z_A − z_B, a row's margin toward the right verdict is s = g (target A) or −g
    (target B). A judge with position bias b and content preference c gives g_AB = b + c in the
    order that shows the chosen answer first and g_BA = b − c in the other, so the mean of the
    two rows' margins, m = ((b + c) + (c − b)) / 2 = c, holds no b at all. The regularised
    Bradley–Terry loss −log σ(m) + (ε/2)·m on m then spends every gradient step on content, not
    on undoing the zero-shot judge's position prior. A pair with one row in the batch keeps its
    row's margin. candidate_logits (B, 2); targets, pairs (B,): pair ids group a pair's rows.
    """
    logits = candidate_logits.float()
    gap = logits[:, 0] - logits[:, 1]
    margin = torch.where(targets == 0, gap, -gap)  # (B,) toward the right verdict
    ids, index = torch.unique(pairs, return_inverse=True)
    total = torch.zeros(len(ids), device=margin.device).index_add(0, index, margin)
    count = torch.zeros(len(ids), device=margin.device).index_add(0, index, torch.ones_like(margin))
    content = total / count  # (P,) one margin per pair
    return (-F.logsigmoid(content) + 0.5 * label_smoothing * content).mean()


def soft_bt_loss(reward_a: torch.Tensor, reward_b: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of σ(r_a − r_b) against a target probability t that a is better (a
    teacher's soft verdict): −[t·log σ(r_a − r_b) + (1 − t)·log σ(r_b − r_a)]. With t = 1 it is
    the Bradley–Terry loss; its minimum over the gap is at r_a − r_b = log(t / (1 − t))."""
    gap = reward_a.float() - reward_b.float()
    t = target.float()
    return -(t * F.logsigmoid(gap) + (1 - t) * F.logsigmoid(-gap)).mean()


def bt_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor, margin: torch.Tensor | None = None,
            center_coefficient: float = 0.0) -> torch.Tensor:
    """−log σ(r_c − r_r − margin), plus optional reward centring λ·mean((r_c + r_r)²) that keeps
    rewards near zero (Eisenstein et al. 2023), so scales stay comparable across runs."""
    gap = reward_chosen.float() - reward_rejected.float()
    if margin is not None:
        gap = gap - margin.float()
    loss = -F.logsigmoid(gap).mean()
    if center_coefficient:
        loss = loss + center_coefficient * ((reward_chosen.float() + reward_rejected.float()) ** 2).mean()
    return loss


def masked_lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy; logits (N, V) and targets (N,) are already restricted to
    the positions that carry loss (the responses), so no ignore index is needed."""
    return F.cross_entropy(logits.float(), targets)
