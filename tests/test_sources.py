"""Preferences from many sources: MORE's min-norm source weights (by hand and against a grid),
its closed-form head gradients against autograd, per-source accuracy and ECE in training's
evaluation and in `rewardkit eval`, and a planted two-source task with one source's labels noise."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
import torch

from rewardkit import LoopConfig, train_method
from rewardkit.errors import ConfigError
from rewardkit.statistics import expected_calibration_error
from rewardkit.training.source_weights import SourceWeighting, min_norm_weights


def norm_of(weights, grads):
    return float(torch.linalg.norm((torch.as_tensor(weights, dtype=torch.float64)[:, None] * grads).sum(0)))


@pytest.mark.parametrize("count", [2, 3, 4])
def test_min_norm_weights_find_the_smallest_combination_on_the_simplex(count):
    generator = torch.Generator().manual_seed(count)
    grads = torch.randn(count, 5, generator=generator, dtype=torch.float64)
    weights = min_norm_weights(grads)
    assert float(weights.sum()) == pytest.approx(1.0) and float(weights.min()) >= 0
    steps = 40 if count < 4 else 16
    best = min(norm_of([*w, 1 - sum(w)], grads) for w in itertools.product(np.linspace(0, 1, steps + 1), repeat=count - 1)
               if sum(w) <= 1 + 1e-12)
    assert norm_of(weights, grads) <= best + 1e-9  # no grid point of the simplex does better


def test_two_sources_by_hand():
    # g1 = (1, 0), g2 = (0, 2): λ1 = (c − b) / (a − 2b + c) = 4 / 5
    assert min_norm_weights(torch.tensor([[1.0, 0.0], [0.0, 2.0]])).tolist() == pytest.approx([0.8, 0.2])
    # opposed gradients of unequal length: the combination reaches zero
    assert min_norm_weights(torch.tensor([[1.0, 0.0], [-3.0, 0.0]])).tolist() == pytest.approx([0.75, 0.25])


def test_uniform_weighting_is_the_plain_mean_and_more_weights_by_min_norm_with_momentum():
    losses = torch.tensor([1.0, 2.0, 3.0, 6.0])
    sources = torch.tensor([0, 0, 1, 1])
    uniform = SourceWeighting("uniform", ["a", "b"])
    assert float(uniform.loss(losses, sources, None)) == pytest.approx(3.0)
    more = SourceWeighting("more", ["a", "b"], momentum=0.5)
    grads = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    loss = more.loss(losses, sources, grads)
    assert more.latest == pytest.approx({"source_weight/a": 0.8, "source_weight/b": 0.2})
    assert float(loss) == pytest.approx((0.8 * 3 + 0.2 * 9) * 2 / 4)  # Σ λ_s · Σ_rows loss · (sources) / rows
    # the next step's gradients are smoothed: g ← 0.5·g + 0.5·g_step
    more.loss(losses, sources, torch.tensor([[3.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 2.0]]))
    expected = min_norm_weights(torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
    assert more.latest["source_weight/a"] == pytest.approx(float(expected[0]))
    assert more.summary()["mean_weights"]["a"] == pytest.approx((0.8 + float(expected[0])) / 2)
    with pytest.raises(ConfigError, match="uniform, more"):
        SourceWeighting("mean", ["a"])


class Recorder(SourceWeighting):
    def loss(self, row_losses, sources, row_grads):
        self.seen = (row_losses, row_grads)
        return super().loss(row_losses, sources, row_grads)


def test_the_closed_form_head_gradients_are_autograds():
    from types import SimpleNamespace

    from rewardkit.methods.bradley_terry.task import BradleyTerryTask
    from rewardkit.methods.judge.task import JudgeTask

    torch.manual_seed(0)
    features = torch.randn(6, 4)  # chosen rows then rejected rows
    head = torch.randn(4, requires_grad=True)
    bt = BradleyTerryTask.__new__(BradleyTerryTask)
    bt.options = SimpleNamespace(source_momentum=1.0, center_rewards=0.0)
    bt.sources, bt.features = SimpleNamespace(names=["a", "b"]), features
    bt.weighting = Recorder("more", ["a", "b"])
    rewards = features @ head
    margin = torch.tensor([0.1, 0.0, -0.2])
    bt._more_loss(rewards[:3], rewards[3:], margin, {"source": torch.tensor([0, 1, 1])})
    row_losses, row_grads = bt.weighting.seen
    for i in range(3):
        (grad,) = torch.autograd.grad(row_losses[i], head, retain_graph=True)
        assert row_grads[i].tolist() == pytest.approx(grad.tolist(), abs=1e-6)

    judge = JudgeTask.__new__(JudgeTask)
    judge.options = SimpleNamespace(source_momentum=1.0, label_smoothing=0.1)
    judge.sources, judge.features = SimpleNamespace(names=["a", "b"]), features
    judge.weighting = Recorder("more", ["a", "b"])
    rows = torch.randn(2, 4, requires_grad=True)  # the two verdict tokens' head rows
    logits = features @ rows.T
    judge._more_loss(logits, {"target": torch.tensor([0, 1, 0, 1, 1, 0]), "source": torch.tensor([0, 0, 1, 1, 0, 1])})
    row_losses, row_grads = judge.weighting.seen
    for i in range(6):
        (grad,) = torch.autograd.grad(row_losses[i], rows, retain_graph=True)
        assert row_grads[i].tolist() == pytest.approx(grad.flatten().tolist(), abs=1e-6)


def test_ece_by_hand():
    # confidences 0.9, 0.9 (right, right), 0.7 (wrong: p = 0.3), 0.6 (right): bins of width 0.05 over [0.5, 1]
    p = [0.9, 0.9, 0.3, 0.6]
    # bin [0.9, 0.95): 2 rows, accuracy 1, confidence 0.9 → 0.1; [0.7, 0.75): accuracy 0, conf 0.7 → 0.7;
    # [0.6, 0.65): accuracy 1, conf 0.6 → 0.4; weighted: (2·0.1 + 0.7 + 0.4) / 4
    assert expected_calibration_error(p) == pytest.approx((2 * 0.1 + 0.7 + 0.4) / 4)


def planted(tmp_path, seed: int = 0):
    """Source 'clean': the helpful answer always wins; source 'noise': two random replies with a
    coin-flip label. Held out: fresh prompts of both."""
    rng = random.Random(seed)

    def clean(i):
        return {"prompt": f"question {i}?", "chosen": "a helpful correct answer", "rejected": "wrong bad no",
                "source": "clean"}

    def noise(i):
        a, b = f"reply {rng.randint(0, 999)} here", f"other {rng.randint(0, 999)} text"
        a, b = (b, a) if rng.random() < 0.5 else (a, b)
        return {"prompt": f"ask {i}?", "chosen": a, "rejected": b, "source": "noise"}

    train, held = tmp_path / "train.jsonl", tmp_path / "held.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in [clean(i) for i in range(24)] + [noise(i) for i in range(24)]))
    held.write_text("".join(json.dumps(r) + "\n" for r in [clean(100 + i) for i in range(12)]
                            + [noise(100 + i) for i in range(12)]))
    return train, held


def test_a_planted_noisy_source_more_against_uniform(tmp_path, tiny_model_dir):
    from rewardkit.methods.bradley_terry import BradleyTerryConfig

    train, held = planted(tmp_path)
    summaries = {}
    for mode in ("uniform", "more"):
        loop = LoopConfig(model=str(tiny_model_dir), data=[str(train)], eval_data=[str(held)], output=str(tmp_path / mode),
                          max_steps=12, lr=5e-3, batch_size=8, max_length=256, warmup_ratio=0.0, save_every=10**6,
                          mixed_precision="no", seed=0)
        summaries[mode] = train_method("bradley_terry", loop, BradleyTerryConfig(source_weighting=mode))
    more, uniform = summaries["more"], summaries["uniform"]
    assert {"eval_accuracy/clean", "eval_ece/clean", "eval_accuracy/noise", "eval_ece/noise"} <= set(uniform)
    assert more["eval_accuracy/clean"] >= uniform["eval_accuracy/clean"]
    logged = [json.loads(line) for line in (tmp_path / "more" / "metrics.jsonl").read_text().splitlines()]
    weights = [r["source_weight/noise"] for r in logged if "source_weight/noise" in r]
    assert len(weights) == 12 and all(0 <= w <= 1 for w in weights)
    means = more["source_weights"]["mean_weights"]
    assert means["noise"] + means["clean"] == pytest.approx(1.0)
    # what the min-norm point does here: the noise source's coin-flip labels cancel in its head
    # gradient, so it is the short one and takes most of the weight (docs/training.md)
    assert means["noise"] > 0.5
    saved = json.loads((tmp_path / "more" / "summary.json").read_text())
    assert saved["source_weights"]["mode"] == "more"
    assert "source_weights" not in uniform


def test_the_judge_takes_more_too(tmp_path, tiny_model_dir):
    from rewardkit.methods.judge import JudgeConfig

    train, held = planted(tmp_path)
    loop = LoopConfig(model=str(tiny_model_dir), data=[str(train)], eval_data=[str(held)], output=str(tmp_path / "j"),
                      max_steps=2, lr=1e-3, batch_size=8, max_length=512, warmup_ratio=0.0, save_every=10**6,
                      mixed_precision="no", seed=0)
    summary = train_method("judge", loop, JudgeConfig(source_weighting="more"))
    assert set(summary["source_weights"]["mean_weights"]) == {"clean", "noise"}
    assert "eval_ece/noise" in summary
    with pytest.raises(ConfigError, match="cannot be combined"):
        JudgeConfig(source_weighting="more", centre_orders=True)


def test_eval_reports_accuracy_and_ece_per_source(tmp_path, tiny_model_dir):
    from rewardkit import load_reward_model
    from rewardkit.eval.runner import evaluate_files

    _, held = planted(tmp_path)
    results, rows = evaluate_files(load_reward_model(str(tiny_model_dir), dtype="fp32"), [str(held)])
    assert set(results["per_source"]) == {"clean", "noise"}
    clean = [r["p_chosen"] for r in rows if r["source"] == "clean"]
    assert results["per_source"]["clean"]["ece"] == pytest.approx(expected_calibration_error(clean))
    assert results["per_source"]["clean"]["num_pairs"] == 12
