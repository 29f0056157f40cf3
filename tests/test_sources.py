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
    more = SourceWeighting("more", ["a", "b"], momentum=0.5, normalize="none")
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
    with pytest.raises(ConfigError, match="l2, none"):
        SourceWeighting("more", ["a"], normalize="l1")


def test_l2_normalised_weights_equalise_every_sources_progress():
    """The paper's setting (--source-normalize l2): the weights are the min-norm point of the
    unit-length gradients, where every weighted source's unit gradient has the same inner
    product with the update and no source a smaller one (MGDA's common descent direction)."""
    generator = torch.Generator().manual_seed(7)
    for count in (3, 4, 5):
        grads = torch.randn(count, 6, generator=generator, dtype=torch.float64) * torch.tensor([0.1, 1, 10, 3, 0.5][:count])[:, None]
        more = SourceWeighting("more", [str(i) for i in range(count)])  # l2 is the default
        sources = torch.arange(count)
        more.loss(torch.ones(count), sources, grads)
        weights = torch.tensor([more.latest[f"source_weight/{i}"] for i in range(count)], dtype=torch.float64)
        units = grads / grads.norm(dim=1, keepdim=True)
        update = (weights[:, None] * units).sum(0)
        progress = units @ update
        floor = float(update @ update)
        assert float(progress.min()) >= floor - 1e-6  # every source's loss goes down at least this fast
        weighted = progress[weights > 1e-6]
        assert weighted.tolist() == pytest.approx([floor] * len(weighted), abs=1e-5)  # and the weighted ones equally
        # the lengths play no part: scaling one source's gradient changes nothing
        rescaled = SourceWeighting("more", [str(i) for i in range(count)])
        rescaled.loss(torch.ones(count), sources, grads * torch.tensor([100.0] + [1.0] * (count - 1), dtype=torch.float64)[:, None])
        assert [rescaled.latest[f"source_weight/{i}"] for i in range(count)] == pytest.approx(weights.tolist(), abs=1e-6)


def test_l2_weights_move_to_the_preference_the_others_serve_least():
    # two sources that agree (the same direction) and a third that points elsewhere: uniform
    # gives the shared direction 2/3 of the update; MORE splits it evenly between the two preferences
    grads = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 0.3]])
    more = SourceWeighting("more", ["a", "b", "minority"])
    more.loss(torch.ones(3), torch.arange(3), grads)
    assert more.latest["source_weight/minority"] == pytest.approx(0.5, abs=1e-6)
    assert more.latest["source_weight/a"] + more.latest["source_weight/b"] == pytest.approx(0.5, abs=1e-6)
    # two sources: always 0.5 each, whatever their lengths or angle (short noisy gradients included)
    for g in ([[1.0, 0.0], [0.0, 0.01]], [[1.0, 0.0], [-0.5, 0.2]], [[3.0, 1.0], [0.1, 0.1]]):
        two = SourceWeighting("more", ["a", "b"])
        two.loss(torch.ones(2), torch.arange(2), torch.tensor(g))
        assert two.latest == pytest.approx({"source_weight/a": 0.5, "source_weight/b": 0.5})


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
    bt.options = SimpleNamespace(source_momentum=1.0, source_normalize="l2", center_rewards=0.0)
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
    judge.options = SimpleNamespace(source_momentum=1.0, source_normalize="l2", label_smoothing=0.1)
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
    arms = {"uniform": {"source_weighting": "uniform"}, "more": {"source_weighting": "more"},
            "more_raw": {"source_weighting": "more", "source_normalize": "none"}}
    for arm, options in arms.items():
        loop = LoopConfig(model=str(tiny_model_dir), data=[str(train)], eval_data=[str(held)], output=str(tmp_path / arm),
                          max_steps=12, lr=5e-3, batch_size=8, max_length=256, warmup_ratio=0.0, save_every=10**6,
                          mixed_precision="no", seed=0)
        summaries[arm] = train_method("bradley_terry", loop, BradleyTerryConfig(**options))
    more, uniform = summaries["more"], summaries["uniform"]
    assert {"eval_accuracy/clean", "eval_ece/clean", "eval_accuracy/noise", "eval_ece/noise"} <= set(uniform)
    assert more["eval_accuracy/clean"] >= uniform["eval_accuracy/clean"]

    def logged_weights(arm):
        logged = [json.loads(line) for line in (tmp_path / arm / "metrics.jsonl").read_text().splitlines()]
        return [r["source_weight/noise"] for r in logged if "source_weight/noise" in r]

    # the paper's setting: unit-length head gradients, so the coin-flip source's short gradient
    # (its labels cancel within a batch) buys it no weight — two sources share the update evenly
    weights = logged_weights("more")
    assert len(weights) == 12 and weights == pytest.approx([0.5] * 12)
    means = more["source_weights"]["mean_weights"]
    assert means == pytest.approx({"clean": 0.5, "noise": 0.5})
    # raw lengths (--source-normalize none): the min-norm point leans on the short noisy gradient
    raw = summaries["more_raw"]["source_weights"]
    assert raw["normalize"] == "none" and raw["mean_weights"]["noise"] > 0.5
    assert all(0 <= w <= 1 for w in logged_weights("more_raw"))
    saved = json.loads((tmp_path / "more" / "summary.json").read_text())
    assert saved["source_weights"]["mode"] == "more" and saved["source_weights"]["normalize"] == "l2"
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


def test_interleaved_source_batches_take_the_sources_in_turn():
    from rewardkit.training.source_weights import interleaved_by_source

    features = [{"source": s, "row": i} for i, s in enumerate([0] * 4 + [1] * 2 + [2] * 3)]
    order = interleaved_by_source(features, seed=3)
    assert sorted(f["row"] for f in order) == list(range(9))  # every row once
    sources = [f["source"] for f in order]
    assert set(sources[:3]) == set(sources[3:6]) == {0, 1, 2}  # each run of three holds every source
    assert sorted(sources[6:8]) == [0, 2] and sources[8] == 0  # then the sources left, in the same turn
    assert interleaved_by_source(features, seed=3) == order  # seeded
    assert any(interleaved_by_source(features, seed=s) != order for s in range(4, 10))
    # a judge's two orders of one pair stay next to each other
    pairs = [{"source": s, "pair": p} for p, s in enumerate([0, 0, 1, 1]) for _ in range(2)]
    kept = interleaved_by_source(pairs, seed=0, group_key="pair")
    assert all(kept[i]["pair"] == kept[i + 1]["pair"] for i in range(0, 8, 2))
    assert [kept[i]["source"] for i in (0, 2)] in ([0, 1], [1, 0])


def test_interleaved_batches_hold_every_source_in_training(tmp_path, tiny_model_dir):
    from rewardkit.methods.bradley_terry import BradleyTerryConfig

    rows = [{"prompt": f"{name} {i}?", "chosen": "a fine answer", "rejected": "bad", "source": name}
            for name in ("a", "b", "c") for i in range(4)]
    data = tmp_path / "three.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    steps = {}
    for batches in ("shuffled", "interleaved"):
        loop = LoopConfig(model=str(tiny_model_dir), data=[str(data)], output=str(tmp_path / batches), epochs=1, lr=1e-3,
                          batch_size=3, max_length=64, warmup_ratio=0.0, save_every=10**6, mixed_precision="no", seed=0)
        train_method("bradley_terry", loop, BradleyTerryConfig(source_weighting="more", source_batches=batches))
        logged = [json.loads(line) for line in (tmp_path / batches / "metrics.jsonl").read_text().splitlines()]
        steps[batches] = [sum(key.startswith("source_weight/") for key in r) for r in logged if "loss" in r]
    assert steps["interleaved"] == [3, 3, 3, 3]  # MORE weighs all three sources at every step
    assert steps["shuffled"] != steps["interleaved"]  # a plain shuffle leaves some batches without one
    with pytest.raises(ConfigError, match="--source-batches interleaved needs --batch-size"):
        BradleyTerryConfig(source_batches="interleaved").source_epoch_order(None, 512)
    with pytest.raises(ConfigError, match="--source-batches must be one of shuffled, interleaved"):
        BradleyTerryConfig(source_batches="round-robin")


def test_a_rows_source_is_its_field_else_its_file_and_a_map_renames(tmp_path):
    from rewardkit.data import load_pairs
    from rewardkit.training.source_weights import read_named_sources

    first, second = tmp_path / "harmless.jsonl", tmp_path / "mixed.jsonl"
    first.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    second.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "a", "rejected": "b", **extra}) + "\n"
                              for i, extra in enumerate([{}, {"source": "UF"}, {"source": "uf-binarized"}])))
    files = [str(first), str(second)]
    names = [r.source for r in read_named_sources(lambda part: load_pairs(part).records, files)]
    assert names == ["harmless", "mixed", "UF", "uf-binarized"]
    mapping = tmp_path / "sources.json"
    mapping.write_text(json.dumps({"harmless.jsonl": "safety", "uf-binarized": "UF"}))
    renamed = read_named_sources(lambda part: load_pairs(part).records, files, str(mapping), check_keys=True)
    assert [r.source for r in renamed] == ["safety", "mixed", "UF", "UF"]  # a file mapped, two sources merged
    mapping.write_text(json.dumps({"harmles": "safety"}))
    with pytest.raises(ConfigError, match=r"--source-map .*sources.json: 'harmles' name no data file"):
        read_named_sources(lambda part: load_pairs(part).records, files, str(mapping), check_keys=True)
    mapping.write_text('{"harmless": "safety",\n "x": 3}')
    with pytest.raises(ConfigError, match=r"key 'x': the name must be a non-empty string"):
        read_named_sources(lambda part: load_pairs(part).records, files, str(mapping))
    mapping.write_text('{"harmless": "safety",\n oops}')
    with pytest.raises(ConfigError, match=r"sources.json, line 2: not JSON"):
        read_named_sources(lambda part: load_pairs(part).records, files, str(mapping))


def test_training_names_sources_by_file_and_by_map(tmp_path, tiny_model_dir):
    from rewardkit.methods.bradley_terry import BradleyTerryConfig

    files = []
    for name in ("alpha", "beta"):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"prompt": f"{name} {i}?", "chosen": "fine", "rejected": "bad"}) + "\n"
                                for i in range(4)))
        files.append(str(path))
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"beta": "second"}))
    loop = LoopConfig(model=str(tiny_model_dir), data=files, eval_data=files, output=str(tmp_path / "run"), max_steps=2,
                      lr=1e-3, batch_size=4, max_length=64, warmup_ratio=0.0, save_every=10**6, mixed_precision="no",
                      seed=0)
    summary = train_method("bradley_terry", loop, BradleyTerryConfig(source_weighting="more", source_map=str(mapping),
                                                                      source_batches="interleaved"))
    assert set(summary["source_weights"]["mean_weights"]) == {"alpha", "second"}
    assert {"eval_accuracy/alpha", "eval_accuracy/second"} <= set(summary)
