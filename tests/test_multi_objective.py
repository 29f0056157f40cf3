"""Multi-objective reward models (ArmoRM attribute heads + gate, DMoERM category experts)."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from typer.testing import CliRunner

from rewardkit import LoopConfig, load_reward_model, train_method
from rewardkit.cli.main import app as cli
from rewardkit.data.ratings import load_ratings
from rewardkit.errors import ConfigError, DataError
from rewardkit.eval import evaluate_files, evaluate_ratings
from rewardkit.eval.metrics import spearman
from rewardkit.methods import get_method
from rewardkit.methods.multi_objective.attributes import decorrelation_lambdas, fit_ridge
from rewardkit.methods.multi_objective.gating import PairStates, pair_metrics, pearson, train_experts, train_gate
from rewardkit.methods.multi_objective.head import MultiObjectiveHead
from rewardkit.methods.multi_objective.states import StateReader, States

WORDS = "good bad helpful harmful correct wrong yes no sure sorry".split()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rated_rows(n=48, seed=0):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        response = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 18)))
        rows.append({"prompt": f"question {i % 6}", "response": response, "scale": [0, 4],
                     "attributes": {"helpfulness": response.count("good") % 5,
                                    "correctness": None if i % 4 == 0 else response.count("correct") % 5,
                                    "verbosity": min(4, len(response.split()) // 4)}})
    return rows


def pair_rows(n=32):
    return [{"prompt": f"question {i % 6}", "chosen": "good helpful correct", "rejected": "bad harmful wrong",
             "source": "alpha" if i % 2 else "beta"} for i in range(n)]


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("multi")
    ratings = write_jsonl(work / "ratings.jsonl", rated_rows())
    pairs = write_jsonl(work / "pairs.jsonl", pair_rows())
    result = CliRunner().invoke(cli, ["train-multi", "--model", str(tiny_model_dir), "--ratings", str(ratings),
                                      "--pairs", str(pairs), "--output", str(work / "model"), "--gate-steps", "30",
                                      "--max-length", "128"])
    assert result.exit_code == 0, result.output
    return work


# ---- the reader ----------------------------------------------------------------------------

def test_ratings_mask_missing_attributes_and_read_three_layouts(tmp_path):
    rows = [{"prompt": "p", "response": "a", "attributes": {"helpfulness": 3, "coherence": None}, "scale": [0, 4]},
            {"prompt": "p", "response": "b", "helpfulness": 2, "coherence": 4},  # HelpSteer's own columns
            {"instruction": "q", "completions": [  # UltraFeedback fine-grained
                {"response": "x", "annotations": {"helpfulness": {"Rating": "5"}, "honesty": {"Rating": "N/A"}}},
                {"response": "y", "annotations": {"helpfulness": {"Rating": "2"}, "honesty": {"Rating": "4"}}}]}]
    ratings = load_ratings(write_jsonl(tmp_path / "r.jsonl", rows))
    assert len(ratings.records) == 4
    assert ratings.attributes == ("helpfulness", "coherence", "honesty")
    assert ratings.masked == {"helpfulness": 0, "coherence": 3, "honesty": 3}  # the UF rows lack coherence
    targets = ratings.targets()
    assert targets[0][0] == pytest.approx(0.75) and math.isnan(targets[0][1])  # masked, not zero
    assert targets[2][0] == pytest.approx(1.0) and targets[3][0] == pytest.approx(0.25)  # 1–5 scale


def test_rating_outside_the_scale_names_file_line_and_field(tmp_path):
    rows = [{"prompt": "p", "response": "a", "attributes": {"helpfulness": 3}, "scale": [0, 4]},
            {"prompt": "p", "response": "b", "attributes": {"helpfulness": 7}, "scale": [0, 4]}]
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    with pytest.raises(DataError) as error:
        load_ratings(path)
    assert f"{path}:2" in str(error.value) and "attributes.helpfulness" in str(error.value)
    assert "outside the declared scale" in str(error.value)
    with pytest.raises(DataError, match="scale"):
        load_ratings([{"prompt": "p", "response": "a", "attributes": {"x": 1}}])  # no scale anywhere


# ---- stage 1 -------------------------------------------------------------------------------

def synthetic_states(n, hidden, seed):
    return torch.randn(n, hidden, generator=torch.Generator().manual_seed(seed))


def test_ridge_recovers_known_linear_attributes():
    z = synthetic_states(300, 16, 0)
    truth = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    targets = z @ truth.T + 0.05 * synthetic_states(300, 3, 2)
    fit = fit_ridge(z[:200], targets[:200], ["a", "b", "c"], [0.01, 0.1, 1.0, 10.0, 1000.0])
    predicted = z[200:] @ fit.weight.T + fit.bias
    for k in range(3):
        assert pearson(predicted[:, k], targets[200:, k]) > 0.99
    assert set(fit.alphas.values()) <= {0.01, 0.1, 1.0, 10.0, 1000.0}


def test_trained_linear_heads_also_recover_the_attributes_and_respect_the_mask():
    from rewardkit.methods.multi_objective.attributes import fit_linear

    z = synthetic_states(300, 16, 7)
    truth = torch.randn(2, 16, generator=torch.Generator().manual_seed(8))
    targets = z @ truth.T
    masked = targets.clone()
    masked[:100, 1] = 1e6  # garbage that only a zero- or value-fill would see
    masked[:100, 1] = float("nan")
    fit = fit_linear(z[:240], masked[:240], ["a", "b"], steps=400, lr=0.05, weight_decay=0.0)
    predicted = z[240:] @ fit.weight.T + fit.bias
    assert pearson(predicted[:, 0], targets[240:, 0]) > 0.98 and pearson(predicted[:, 1], targets[240:, 1]) > 0.98
    assert fit.rows == {"a": 240, "b": 140}


def test_masked_attributes_are_left_out_not_zero_filled():
    z = synthetic_states(120, 8, 3)
    truth = torch.randn(8, generator=torch.Generator().manual_seed(4))
    target = (z @ truth)[:, None] + 2.0  # far from zero: a zero fill would drag the fit
    masked = target.clone()
    masked[::3] = float("nan")
    fit = fit_ridge(z, masked, ["a"], [0.1])
    on_rated = fit_ridge(z[~torch.isnan(masked[:, 0])], target[~torch.isnan(masked[:, 0])], ["a"], [0.1])
    zero_filled = fit_ridge(z, torch.nan_to_num(masked), ["a"], [0.1])
    assert torch.allclose(fit.weight, on_rated.weight, atol=1e-5) and fit.rows == {"a": 80}
    assert not torch.allclose(fit.weight, zero_filled.weight, atol=1e-2)


# ---- stage 2 -------------------------------------------------------------------------------

def head_over_identity(names, hidden, **kwargs):
    """A head whose attribute k scores the response state's dimension k (standardisation off)."""
    head = MultiObjectiveHead(hidden, names, gate_hidden=16, **kwargs)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[:, :len(names)] = torch.eye(len(names))
    return head


def states(response, prompt, length):
    return States(response, prompt, length)


def test_decorrelation_lowers_a_planted_length_correlation():
    n, g = 400, torch.Generator().manual_seed(5)
    quality, wordy = torch.randn(2 * n, generator=g), torch.randn(2 * n, generator=g)
    response = torch.zeros(2 * n, 8)
    response[:, 0], response[:, 1] = quality, wordy
    length = torch.exp(4 + wordy)  # longer where "wordy" is high
    prompt = torch.randn(2 * n, 8, generator=g)
    # labels follow quality, plus a lean to the longer response: the bias a reward can buy
    margin = (quality[:n] - quality[n:]) + 0.7 * (wordy[:n] - wordy[n:])
    first_wins = margin > 0
    ch = torch.where(first_wins, torch.arange(n), torch.arange(n, 2 * n))
    rj = torch.where(first_wins, torch.arange(n, 2 * n), torch.arange(n))
    pairs = PairStates(states(response[ch], prompt[ch], length[ch]), states(response[rj], prompt[rj], length[rj]))

    scores = torch.stack([quality + 0.8 * wordy, wordy], dim=1)
    lambdas = decorrelation_lambdas(scores, wordy, skip=[1])
    assert abs(pearson(scores[:, 0] - lambdas[0] * wordy, wordy).item()) < 1e-4 and lambdas[1] == 0

    correlations = {}
    for penalty in (0.0, 10.0):
        head = head_over_identity(["quality", "wordy"], 8)
        train_gate(head, pairs, steps=200, lr=0.05, length_penalty=penalty, seed=0)
        correlations[penalty] = abs(pair_metrics(head, pairs)["length_correlation"])
    assert correlations[0.0] > 0.3
    assert correlations[10.0] < correlations[0.0] / 2


def test_gate_weights_sum_to_one_and_route_two_categories_to_their_experts():
    n, g = 300, torch.Generator().manual_seed(6)
    category = torch.arange(n) % 2
    prompt = torch.randn(n, 8, generator=g)
    prompt[:, 0] += torch.where(category == 0, 3.0, -3.0)  # the prompt tells the category
    chosen, rejected = torch.randn(n, 8, generator=g), torch.randn(n, 8, generator=g)
    # category 0 prefers a high dimension 1, category 1 a high dimension 2
    for i in range(n):
        d = 1 + int(category[i])
        if chosen[i, d] < rejected[i, d]:
            chosen[i], rejected[i] = rejected[i].clone(), chosen[i].clone()
    length = torch.full((n,), 10.0)
    pairs = PairStates(states(chosen, prompt, length), states(rejected, prompt, length), category)
    head = MultiObjectiveHead(8, ["zero", "one"], gate_hidden=16, mode="experts")
    report = train_experts(head, pairs, steps=200, lr=0.05)
    gates = head.gate_weights(prompt).detach()
    assert torch.allclose(gates.sum(-1), torch.ones(n), atol=1e-6) and (gates >= 0).all()
    assert report["router_train_accuracy"] > 0.95
    assert (gates.argmax(-1) == category).float().mean() > 0.95
    assert pair_metrics(head, pairs)["accuracy"] > 0.9
    # one expert alone is right on its own category only
    single = head.scores(chosen)[:, 0] > head.scores(rejected)[:, 0]
    assert single[category == 1].float().mean() < 0.75


def test_gate_weights_are_zero_on_unmixed_attributes():
    head = MultiObjectiveHead(4, ["a", "b", "verbosity"], gate_hidden=8, mixed=["a", "b"])
    gates = head.gate_weights(torch.randn(5, 4)).detach()
    assert torch.allclose(gates.sum(-1), torch.ones(5)) and (gates[:, 2] == 0).all()


# ---- the method end to end on a tiny model ---------------------------------------------------

def test_train_multi_saves_a_model_that_reloads_with_the_same_scores(trained):
    model = trained / "model"
    saved = json.loads((model / "metrics.json").read_text())
    assert saved["masked"] == {"helpfulness": 0, "correctness": 12, "verbosity": 0}
    assert saved["rated_rows"]["correctness"] == 36 and saved["mixed"] == ["helpfulness", "correctness"]
    scorer = load_reward_model(str(model))
    assert scorer.kind == "multi_objective" and scorer.pointwise
    pairs = pair_rows()
    prompts = [p["prompt"] for p in pairs]
    rewards = scorer.score(prompts + prompts, [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs])
    lengths = torch.log1p(torch.tensor([float(len(p["chosen"])) for p in pairs] +
                                       [float(len(p["rejected"])) for p in pairs]))
    # the correlation training measured on its own pairs, recomputed from the reloaded model
    assert pearson(torch.tensor(rewards), lengths).item() == pytest.approx(saved["length_correlation"], abs=1e-4)
    again = load_reward_model(str(model)).score(prompts[:3], [p["chosen"] for p in pairs[:3]])
    assert again == pytest.approx(rewards[:3], abs=1e-6)
    table = scorer.attributes(prompts[:2], ["good good good", "bad"])
    assert [row.reward for row in table] == pytest.approx(scorer.score(prompts[:2], ["good good good", "bad"]), abs=1e-5)
    assert set(table[0].scores) == {"helpfulness", "correctness", "verbosity"}
    assert sum(table[0].weights.values()) == pytest.approx(1.0) and table[0].weights["verbosity"] == 0.0


def test_train_multi_resumes_from_cached_states(tiny_model_dir, tmp_path, monkeypatch):
    ratings = write_jsonl(tmp_path / "r.jsonl", rated_rows(24))
    pairs = write_jsonl(tmp_path / "p.jsonl", pair_rows(16))
    method = get_method("multi_objective")
    loop = LoopConfig(model=str(tiny_model_dir), output=str(tmp_path / "out"), max_length=128)
    options = method.Config(ratings=[str(ratings)], pairs=[str(pairs)], gate_steps=10)
    first = train_method(method, loop, options)
    cached = sorted(p.name for p in (tmp_path / "out" / ".states").iterdir())
    assert len(cached) == 3  # ratings, chosen, rejected
    def backbone_must_not_run(*args, **kwargs):
        raise AssertionError("states were computed again on resume")

    monkeypatch.setattr(StateReader, "read", backbone_must_not_run)
    loop.resume = True
    second = train_method(method, loop, options)
    assert second["accuracy"] == first["accuracy"]
    assert sorted(p.name for p in (tmp_path / "out" / ".states").iterdir()) == cached


def test_category_experts_train_and_load(tiny_model_dir, tmp_path):
    pairs = write_jsonl(tmp_path / "p.jsonl", pair_rows(40))
    result = CliRunner().invoke(cli, ["train-multi", "--model", str(tiny_model_dir), "--pairs", str(pairs),
                                      "--experts", "source", "--min-expert-pairs", "10", "--gate-steps", "20",
                                      "--output", str(tmp_path / "experts"), "--max-length", "128"])
    assert result.exit_code == 0, result.output
    scorer = load_reward_model(str(tmp_path / "experts"))
    row = scorer.attributes(["question 1"], ["good helpful correct"])[0]
    assert set(row.weights) == {"alpha", "beta"} and sum(row.weights.values()) == pytest.approx(1.0)


def test_bad_multi_objective_inputs_fail_before_the_model_loads(tmp_path):
    pairs = write_jsonl(tmp_path / "p.jsonl", pair_rows(40))
    method = get_method("multi_objective")
    loop = LoopConfig(model=str(tmp_path / "no-such-model"), output=str(tmp_path / "out"))
    mapping = tmp_path / "experts.json"
    mapping.write_text(json.dumps({"alpha": "first"}))
    with pytest.raises(ConfigError, match=r"experts.json: no expert for these categories.*beta"):
        train_method(method, loop, method.Config(pairs=[str(pairs)], experts=str(mapping)))
    with pytest.raises(ConfigError, match="fewer than --min-expert-pairs 30"):
        train_method(method, loop, method.Config(pairs=[str(pairs)], experts="source", min_expert_pairs=30))
    with pytest.raises(ConfigError, match="--ratings"):
        train_method(method, loop, method.Config(pairs=[str(pairs)]))
    no_verbosity = write_jsonl(tmp_path / "nv.jsonl", [{"prompt": "p", "response": "a", "scale": [0, 4],
                                                        "attributes": {"helpfulness": 2}}])
    with pytest.raises(ConfigError, match="no 'verbosity' attribute"):
        train_method(method, loop, method.Config(ratings=[str(no_verbosity)], pairs=[str(pairs)]))
    with pytest.raises(ConfigError, match="--decorrelate must be one of"):
        method.Config(decorrelate="sometimes")


# ---- serving and evaluation ------------------------------------------------------------------

def test_served_reward_carries_the_attribute_scores(trained):
    from fastapi.testclient import TestClient

    from rewardkit.serve.app import ServeSettings, create_app

    scorer = load_reward_model(str(trained / "model"))
    with TestClient(create_app(scorer, ServeSettings(max_wait_ms=5))) as client:
        body = client.post("/reward", json={"prompts": ["question 1"] * 2, "responses": ["good", "bad bad"]}).json()
        expected = scorer.score(["question 1"] * 2, ["good", "bad bad"])
        assert body["rewards"] == pytest.approx(expected, abs=1e-5)
        assert sum(body["attributes"][0]["weights"].values()) == pytest.approx(1.0)
        logs = client.post("/get_reward", json={"query": ["<|im_start|>user\nquestion 1<|im_end|>\n"
                                                          "<|im_start|>assistant\ngood<|im_end|>"]}).json()
        assert set(logs["extra_logs"]) >= {"helpfulness", "verbosity", "gate_helpfulness"}
        assert len(logs["extra_logs"]["helpfulness"]) == 1


def test_eval_reports_attribute_correlations_and_reward_length_correlation(trained, tmp_path):
    scorer = load_reward_model(str(trained / "model"))
    ratings = write_jsonl(tmp_path / "held.jsonl", rated_rows(20, seed=9))
    report = evaluate_ratings(scorer, str(ratings))
    assert report["rows"] == 20 and report["masked"]["correctness"] == 5
    assert set(report["per_attribute"]) == {"helpfulness", "correctness", "verbosity"}
    assert report["per_attribute"]["correctness"]["rows"] == 15
    assert "head" in report["per_attribute"]["verbosity"]
    results, rows = evaluate_files(scorer, [str(trained / "pairs.jsonl")])
    rewards = [r["reward_chosen"] for r in rows] + [r["reward_rejected"] for r in rows]
    lengths = [r["chosen_chars"] for r in rows] + [r["rejected_chars"] for r in rows]
    assert results["reward_length_spearman"] == pytest.approx(spearman(rewards, lengths))


def test_spearman_averages_tied_ranks():
    from scipy.stats import spearmanr

    x, y = [1, 2, 2, 3, 5, 5, 5], [2, 1, 4, 3, 7, 6, 6]
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
