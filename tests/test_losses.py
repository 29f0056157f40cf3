import math

import torch

from rewardkit.losses import bt_loss, judge_loss, judge_loss_bt_form


def test_judge_loss_by_hand():
    # logits (2, 0) with target A, ε = 0.1: targets (0.95, 0.05); p = softmax = (σ(2), σ(-2))
    logits = torch.tensor([[2.0, 0.0]])
    expected = -(0.95 * math.log(1 / (1 + math.exp(-2))) + 0.05 * math.log(1 / (1 + math.exp(2))))
    assert abs(judge_loss(logits, torch.tensor([0]), 0.1).item() - expected) < 1e-6
    assert abs(judge_loss(logits, torch.tensor([0]), 0.0).item() - math.log(1 + math.exp(-2))) < 1e-6


def test_label_smoothing_equals_regularised_bradley_terry():
    torch.manual_seed(0)
    logits = torch.randn(64, 2) * 4
    targets = torch.randint(0, 2, (64,))
    for eps in (0.0, 0.05, 0.1, 0.3):
        a, b = judge_loss(logits, targets, eps), judge_loss_bt_form(logits, targets, eps)
        assert torch.allclose(a, b, atol=1e-6), (eps, a, b)


def test_smoothed_optimum_is_finite_gap():
    gap = torch.linspace(0, 8, 8001)
    logits = torch.stack([gap, torch.zeros_like(gap)], dim=1)
    losses = torch.stack([judge_loss(logits[i:i + 1], torch.tensor([0]), 0.1) for i in range(0, 8001, 1)])
    best = gap[losses.argmin()].item()
    assert abs(best - math.log(0.95 / 0.05)) < 0.01


def test_bt_loss_by_hand():
    chosen, rejected = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    expected = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1))) / 2
    assert abs(bt_loss(chosen, rejected).item() - expected) < 1e-6
    margin = torch.tensor([0.5, 0.5])
    expected_m = (math.log(1 + math.exp(-0.5)) + math.log(1 + math.exp(1.5))) / 2
    assert abs(bt_loss(chosen, rejected, margin).item() - expected_m) < 1e-6
    centred = bt_loss(chosen, rejected, None, center_coefficient=0.1).item()
    assert abs(centred - (expected + 0.1 * 1.0)) < 1e-6


def test_order_centred_loss_by_hand_and_blind_to_position_bias():
    from rewardkit.losses import order_centred_judge_loss

    # pair 0: bias b = 3, content c = 0.5 → order AB gap 3.5 (target A), order BA gap 2.5 (target B)
    # pair 1: one row only (target B, gap −1) keeps its own margin 1
    logits = torch.tensor([[3.5, 0.0], [2.5, 0.0], [0.0, 1.0]], requires_grad=True)
    targets, pairs = torch.tensor([0, 1, 1]), torch.tensor([7, 7, 9])
    loss = order_centred_judge_loss(logits, targets, pairs, 0.1)

    def per_pair(m):
        return -math.log(1 / (1 + math.exp(-m))) + 0.05 * m

    assert abs(loss.item() - (per_pair(0.5) + per_pair(1.0)) / 2) < 1e-6
    # a pure position shift (the same constant added to g in both orders) changes nothing
    shifted = logits.detach() + torch.tensor([[5.0, 0.0], [5.0, 0.0], [0.0, 0.0]])
    assert abs(order_centred_judge_loss(shifted, targets, pairs, 0.1).item() - loss.item()) < 1e-6
    # and gets no gradient: the two rows of pair 0 receive opposite gradients on g
    loss.backward()
    g = logits.grad[:, 0] - logits.grad[:, 1]
    assert abs(g[0].item() + g[1].item()) < 1e-7
