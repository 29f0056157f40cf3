"""Pair embeddings, data selection and label audits (rewardkit/selection)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit import load_reward_model
from rewardkit.cli.main import app as cli
from rewardkit.errors import ConfigError
from rewardkit.scoring.protocol import Comparison
from rewardkit.selection.audit import audit_pairs, precision_recall
from rewardkit.selection.embeddings import PairEmbeddings, check_same_model, embed_pairs, read_embeddings, write_embeddings
from rewardkit.selection.strategies import select
from rewardkit.types import PreferencePair

PROMPTS = ["how do I cook rice?", "which answer is better?", "say something helpful", "q four"]
A = ["rinse, boil, simmer.", "Answer A is better.", "sure, good helpful answer", "yes"]
B = ["no", "bad harmful wrong", "cannot", "good helpful correct yes sure"]


def test_judge_pair_embeddings_are_antisymmetric_and_batch_invariant(tiny_model_dir):
    judge = load_reward_model(str(tiny_model_dir), dtype="fp32")
    forward = judge.pair_states(PROMPTS, A, B)
    swapped = judge.pair_states(PROMPTS, B, A)
    assert forward.shape == (4, judge.model.config.hidden_size) and forward.abs().sum() > 0
    assert np.allclose(forward.numpy(), -swapped.numpy(), atol=1e-5)
    alone = np.stack([judge.pair_states([p], [a], [b])[0].numpy() for p, a, b in zip(PROMPTS, A, B)])
    assert np.allclose(forward.numpy(), alone, atol=1e-4)  # any batch size, same rows
    tight = load_reward_model(str(tiny_model_dir), dtype="fp32", max_batch_tokens=64)
    assert np.allclose(tight.pair_states(PROMPTS, A, B).numpy(), forward.numpy(), atol=1e-4)


def test_bradley_terry_pair_embeddings_are_antisymmetric(tiny_model_dir, tmp_path):
    from rewardkit import LoopConfig, train_method

    rows = [{"prompt": p, "chosen": a, "rejected": b} for p, a, b in zip(PROMPTS, A, B)]
    train_method("bradley_terry", LoopConfig(model=str(tiny_model_dir), data=rows, output=str(tmp_path / "bt"),
                                             max_steps=1, mixed_precision="no"))
    bt = load_reward_model(str(tmp_path / "bt"), dtype="fp32")
    assert np.allclose(bt.pair_states(PROMPTS, A, B).numpy(), -bt.pair_states(PROMPTS, B, A).numpy(), atol=1e-5)


def clusters(seed=0):
    rng = np.random.default_rng(seed)
    near = rng.normal(0, 0.3, (30, 8)) + np.eye(8)[0] * 3
    far = rng.normal(0, 0.3, (30, 8)) - np.eye(8)[0] * 3 + np.eye(8)[1] * 2
    target = rng.normal(0, 0.3, (6, 8)) + np.eye(8)[0] * 3
    return np.vstack([near, far]), target


@pytest.mark.parametrize("strategy", ["ot", "nearest"])
def test_selection_picks_the_targets_cluster(strategy):
    pool, target = clusters()
    chosen, scores = select(pool, target, 20, strategy)
    assert len(chosen) == 20 and all(i < 30 for i in chosen)
    assert scores[:30].mean() > scores[30:].mean()


def test_ot_keeps_the_targets_marginal_and_random_is_seeded():
    from rewardkit.selection.strategies import transported_mass

    pool, target = clusters(1)
    mass = transported_mass(pool, target)
    assert mass.sum() == pytest.approx(1.0, abs=1e-3) and mass[:30].sum() > 0.95
    first, _ = select(pool, target, 10, "random", seed=3)
    again, _ = select(pool, target, 10, "random", seed=3)
    assert list(first) == list(again) and len(set(first)) == 10


def test_margin_strategy_takes_the_largest_margins():
    chosen, _ = select(np.zeros((5, 2)), None, 2, "margin", margins=np.array([0.1, -3.0, 0.5, 2.0, -0.2]))
    assert list(chosen) == [1, 3]


def test_selection_errors():
    pool, target = clusters()
    with pytest.raises(ConfigError, match="--budget 61"):
        select(pool, target, 61, "ot")
    with pytest.raises(ConfigError, match="needs a target"):
        select(pool, np.zeros((0, 8)), 5, "nearest")
    with pytest.raises(ConfigError, match="--strategy must be one of"):
        select(pool, target, 5, "best")
    a = PairEmbeddings(np.zeros((2, 4), np.float32), "judge-a", "generative_judge")
    b = PairEmbeddings(np.zeros((2, 4), np.float32), "judge-b", "generative_judge")
    with pytest.raises(ConfigError, match="different models"):
        check_same_model(a, b, "--pool embeddings", "--target embeddings")

    class NoState:
        kind = "multi_objective"

    with pytest.raises(ConfigError, match="gives no pair state"):
        embed_pairs(NoState(), [PreferencePair("p", "a", "b")], model="m")


class WordJudge:
    """P(a better) from how many 'good' words each answer has, in both orders."""

    kind, pointwise = "generative_judge", False

    def compare_details(self, prompts, a, b, both_orders=True):
        out = []
        for x, y in zip(a, b):
            p = 1 / (1 + math.exp(-3 * (x.count("good") - y.count("good"))))
            out.append(Comparison(p, p, p))
        return out


def test_audit_finds_planted_flipped_labels():
    pairs, flipped = [], set()
    for i in range(40):
        good, bad = f"good good answer {i}", f"poor answer {i}"
        if i % 5 == 0:  # plant a flipped label
            good, bad = bad, good
            flipped.add(i)
        pairs.append(PreferencePair(f"q{i}", good, bad, id=f"p{i}", source="synthetic", extra={"note": i}))
    rows = audit_pairs(WordJudge(), pairs, confidence=0.9)
    assert {r["row"] for r in rows} == flipped
    assert precision_recall([r["row"] for r in rows], flipped) == {"flagged": 8, "planted": 8, "precision": 1.0,
                                                                    "recall": 1.0}
    assert rows[0]["p_chosen"] <= rows[-1]["p_chosen"] and rows[0]["note"] in flipped and rows[0]["orders_agree"]


def test_embed_and_select_commands_keep_ids_fields_and_order(tiny_model_dir, tmp_path):
    pool_rows = [{"prompt": p, "chosen": a, "rejected": b, "id": f"x{i}", "source": "s1" if i % 2 else "s2",
                  "subset": "", "note": i} for i, (p, a, b) in enumerate(zip(PROMPTS * 3, A * 3, B * 3))]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in pool_rows))
    target = tmp_path / "target.jsonl"
    target.write_text("".join(json.dumps(r) + "\n" for r in pool_rows[:2]))
    runner = CliRunner()
    for name, path in (("pool", pool), ("target", target)):
        result = runner.invoke(cli, ["embed", "--model", str(tiny_model_dir), "--data", str(path),
                                     "--output", str(tmp_path / f"{name}.parquet")])
        assert result.exit_code == 0, result.output
    embedded = read_embeddings(tmp_path / "pool.parquet")
    assert embedded.ids == [f"x{i}" for i in range(12)] and embedded.vectors.shape[0] == 12
    result = runner.invoke(cli, ["select", "--pool", str(pool), "--target", str(target), "--budget", "4",
                                 "--strategy", "nearest", "--pool-embeddings", str(tmp_path / "pool.parquet"),
                                 "--target-embeddings", str(tmp_path / "target.parquet"), "--output",
                                 str(tmp_path / "chosen.jsonl")])
    assert result.exit_code == 0, result.output
    chosen = [json.loads(line) for line in (tmp_path / "chosen.jsonl").read_text().splitlines()]
    assert len(chosen) == 4 and {"note", "selection_score", "id", "source"} <= set(chosen[0])
    assert {c["id"] for c in chosen} >= {"x0", "x1"}  # a target pair is its own nearest neighbour
    assert (tmp_path / "chosen.md").is_file() and (tmp_path / "chosen.png").is_file()
    bad = runner.invoke(cli, ["select", "--pool", str(pool), "--budget", "50", "--strategy", "random",
                              "--output", str(tmp_path / "x.jsonl")])
    assert bad.exit_code != 0 and "--budget 50" in bad.output


def test_embeddings_file_round_trip(tmp_path):
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_embeddings(tmp_path / "e.parquet", PairEmbeddings(vectors, "m", "bradley_terry", ["a", None, "c"],
                                                            ["s", "s", "t"], ["", "x", ""]))
    back = read_embeddings(tmp_path / "e.parquet")
    assert np.array_equal(back.vectors, vectors) and back.ids == ["a", None, "c"] and back.model == "m"


# ---- the learned representation (LRHP) -----------------------------------------------------

def test_margin_head_learns_a_synthetic_margin():
    import torch

    from rewardkit.eval.metrics import spearman
    from rewardkit.methods.preference_repr.head import PreferenceHead, train_head

    g = torch.Generator().manual_seed(0)
    states = torch.randn(400, 16, generator=g)
    direction = torch.randn(16, generator=g)
    gap = states @ direction
    states = states * torch.sign(gap)[:, None]  # orient each pair so that a is the better one
    margins = (states @ direction)  # the true rating gap, > 0
    margins[::4] = float("nan")  # some pairs carry no margin: masked
    head = PreferenceHead(16, 16)
    train_head(head, states[:300], margins[:300], steps=600, lr=1e-2)
    with torch.no_grad():
        logit, predicted = head(states[300:])
        flipped_logit, flipped = head(-states[300:])
    known = ~torch.isnan(margins[300:])
    assert spearman(predicted[known].tolist(), margins[300:][known].tolist()) > 0.9
    assert (logit > 0).float().mean() > 0.95
    assert torch.allclose(flipped, -predicted, atol=1e-6) and torch.allclose(flipped_logit, -logit, atol=1e-6)


def test_preference_repr_trains_saves_and_reloads(tiny_model_dir, tmp_path):
    from rewardkit import LoopConfig, train_method

    rows = [{"prompt": p, "chosen": a, "rejected": b, "margin": float(i % 3 + 1)}
            for i, (p, a, b) in enumerate(zip(PROMPTS * 4, A * 4, B * 4))]
    events = []
    summary = train_method("preference_repr", LoopConfig(model=str(tiny_model_dir), data=rows, eval_data=rows[:4],
                                                         output=str(tmp_path / "lrhp"), max_steps=50),
                           on_event=lambda kind, data: events.append((kind, data)))
    assert summary["pairs_with_margin"] == 16 and "eval_accuracy" in summary
    progress = [d for kind, d in events if kind == "states"]  # the CLI's bar: rows done of a known total
    assert [(d["part"], d["rows"], d["total"]) for d in progress] == [("training", 16, 16), ("held-out", 4, 4)]
    model = load_reward_model(str(tmp_path / "lrhp"))
    assert model.kind == "preference_representation" and (tmp_path / "lrhp" / "base" / "config.json").is_file()
    p_ab, p_ba = model.compare(PROMPTS, A, B), model.compare(PROMPTS, B, A)
    assert [x + y for x, y in zip(p_ab, p_ba)] == pytest.approx([1.0] * 4, abs=1e-5)  # order-free by construction
    assert model.margins(PROMPTS, A, B) == pytest.approx([-m for m in model.margins(PROMPTS, B, A)], abs=1e-5)
    assert model.pair_states(PROMPTS, A, B).shape == (4, 64)
    assert summary["train_accuracy"] == pytest.approx(sum(p > 0.5 for p in model.compare(
        [r["prompt"] for r in rows], [r["chosen"] for r in rows], [r["rejected"] for r in rows])) / 16)
