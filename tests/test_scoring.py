"""Scoring engine, judge math, ranking and evaluation metrics."""

from __future__ import annotations

import json
import math
import random
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rewardkit import load_reward_model
from rewardkit.cli.main import app
from rewardkit.data.templates import default_judge_template
from rewardkit.errors import RewardKitError
from rewardkit.eval import metrics
from rewardkit.eval.rewardbench import EXAMPLE_COUNTS, section_scores
from rewardkit.methods.judge import PairwiseJudge
from rewardkit.methods.judge.scorer import verdict_probability_a
from rewardkit.models.heads import cache_keyword
from rewardkit.ranking import bradley_terry_scores, rank_responses

sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731


@pytest.fixture(scope="module")
def judge(tiny_model_dir):
    return load_reward_model(tiny_model_dir, dtype="fp32", max_batch_tokens=100000)


def texts(n, seed=0):
    rng = random.Random(seed)
    words = ["good", "bad", "fox", "answer", "helpful", "sorry", "rice", "boil"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 40))) for _ in range(n)]


def test_verdict_normalised_within_a_row_not_across_rows():
    p = verdict_probability_a(torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
    assert torch.allclose(p, torch.tensor([sigmoid(2), sigmoid(-2)]))


def test_swap_averaging_with_hand_made_logits(judge, monkeypatch):
    # order AB says "A" (a first) strongly, order BA says "B" (a second) strongly: a confident,
    # consistent judge for a → probability σ(3), not 0.5
    monkeypatch.setattr(judge.engine, "run", lambda requests: torch.tensor([[3.0, 0.0], [0.0, 3.0]]))
    (detail,) = judge.compare_details(["q"], ["a"], ["b"])
    assert detail.p_ab == pytest.approx(sigmoid(3)) and detail.p_ba == pytest.approx(sigmoid(3))
    assert detail.probability == pytest.approx(sigmoid(3)) and detail.consistent
    # position bias: always "A" → a wins shown first, loses shown second → 0.5 and inconsistent
    monkeypatch.setattr(judge.engine, "run", lambda requests: torch.tensor([[3.0, 0.0], [3.0, 0.0]]))
    with pytest.warns(DeprecationWarning, match="compare_details"):  # the old spelling still works
        (detail,) = judge.compare(["q"], ["a"], ["b"], return_details=True)
    assert detail.probability == pytest.approx(0.5) and not detail.consistent


def test_prefix_cache_matches_no_cache(tiny_model_dir):
    cached = load_reward_model(tiny_model_dir, dtype="fp32", use_prefix_cache=True)
    plain = load_reward_model(tiny_model_dir, dtype="fp32", use_prefix_cache=False)
    prompts, a, b = texts(6, 1), texts(6, 2), texts(6, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, y = cached.compare(prompts, a, b), plain.compare(prompts, a, b)
    assert np.allclose(x, y, atol=1e-4)
    # the cache goes in by the name this transformers takes: a deprecated name is dropped in a
    # later release, and the rows would then be scored without their prefix
    assert not [w for w in caught if "past_key_values" in str(w.message)]
    assert cached.engine.stats["prefix_passes"] >= 1 and plain.engine.stats["prefix_passes"] == 0
    refs = {p: r for p, r in zip(prompts, texts(6, 4))}
    rx, ry = cached.reward(prompts, a, refs), plain.reward(prompts, a, refs)
    assert np.allclose(rx, ry, atol=1e-4)
    # the reference-anchored path equals compare(response, reference)
    direct = plain.compare(prompts, a, [refs[p] for p in prompts])
    assert np.allclose(plain.reward(prompts, a, refs, scale="prob"), direct, atol=1e-5)


def test_cache_keyword_follows_the_forward_signature():
    class Renamed(torch.nn.Module):
        def forward(self, input_ids, cache=None, use_cache=False, **kwargs):
            return input_ids

    class Older(torch.nn.Module):
        def forward(self, input_ids, past_key_values=None, use_cache=False, **kwargs):
            return input_ids

    assert cache_keyword(Renamed()) == "cache"
    assert cache_keyword(Older()) == "past_key_values"
    hooked = Renamed()  # a device hook replaces the instance's forward by a (*args, **kwargs) wrapper
    hooked.forward = lambda *args, **kwargs: Renamed.forward(hooked, *args, **kwargs)
    assert cache_keyword(hooked) == "cache"


def test_same_scores_whatever_the_batch_size_and_order(tiny_model_dir):
    big = load_reward_model(tiny_model_dir, dtype="fp32", max_batch_tokens=100000)
    one = load_reward_model(tiny_model_dir, dtype="fp32", max_batch_tokens=1)
    prompts, a, b = texts(8, 5), texts(8, 6), texts(8, 7)
    x = big.compare(prompts, a, b)
    y = one.compare(prompts, a, b)
    # one row per forward with a 1-token budget; the big budget merges rows
    assert one.engine.stats["forward_calls"] == one.engine.stats["rows"] == 16
    assert big.engine.stats["forward_calls"] < one.engine.stats["forward_calls"]
    assert np.allclose(x, y, atol=1e-5)
    perm = list(range(8))
    random.Random(0).shuffle(perm)
    z = big.compare([prompts[i] for i in perm], [a[i] for i in perm], [b[i] for i in perm])
    assert np.allclose([x[i] for i in perm], z, atol=1e-5)
    assert big.compare(prompts, a, b) == x  # deterministic


def test_single_order_is_seeded_by_content(judge):
    prompts, a, b = texts(10, 8), texts(10, 9), texts(10, 10)
    first = judge.compare_details(prompts, a, b, both_orders=False)
    again = judge.compare_details(prompts, a, b, both_orders=False)
    assert first == again
    used = {d.p_ab is None for d in first}
    assert used == {True, False}  # both orders occur across examples


def test_reward_needs_reference(judge):
    with pytest.raises(RewardKitError, match="reference"):
        judge.reward(["q"], ["a"])
    with pytest.raises(RewardKitError, match="same length"):
        judge.compare(["q"], ["a", "b"], ["c"])


def test_bradley_terry_aggregation_recovers_strengths():
    truth = np.array([1.5, 0.5, 0.0, -0.7, -1.3])
    wins = 1 / (1 + np.exp(-(truth[:, None] - truth[None, :])))
    scores = bradley_terry_scores(wins, l2=1e-8)
    assert np.allclose(scores, truth - truth.mean(), atol=1e-3)
    # an item that wins everything stays finite
    dominant = np.array([[0, 1, 1], [0, 0, 0.5], [0, 0.5, 0]], dtype=float)
    assert np.isfinite(bradley_terry_scores(dominant)).all()


class FakeJudge:
    """compare() from hidden qualities; counts calls to check batching."""

    def __init__(self, quality):
        self.quality, self.calls = quality, 0
        self.index = {}

    def compare(self, prompts, a, b, both_orders=True, return_details=False):
        self.calls += 1
        return [sigmoid(self.quality[int(x)] - self.quality[int(y)]) for x, y in zip(a, b)]

    def compare_to_references(self, prompts, responses, references):
        return self.compare(prompts, responses, references)


@pytest.mark.parametrize("strategy", ["linear", "knockout", "round_robin", "reference"])
def test_rank_strategies_find_the_best(strategy):
    quality = [0.1, 2.0, -1.0, 0.5, 1.2, -0.3, 0.0, 0.9]
    fake = FakeJudge(quality)
    result = rank_responses(fake, "q", [str(i) for i in range(8)], strategy=strategy)
    assert result.best == 1
    expected_calls = {"linear": 7, "knockout": 3, "round_robin": 1, "reference": 1}[strategy]
    assert fake.calls == expected_calls
    if strategy == "round_robin":
        assert result.order == sorted(range(8), key=lambda i: -quality[i])
    with pytest.raises(RewardKitError, match="unknown ranking strategy"):
        rank_responses(fake, "q", ["0", "1"], strategy="bubble")


def test_metrics_by_hand():
    p = [0.9, 0.8, 0.3, 0.5]
    assert metrics.accuracy(p) == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert metrics.brier(p) == pytest.approx((0.01 + 0.04 + 0.49 + 0.25) / 4)
    # confidences 0.9, 0.8, 0.7, 0.5; correct 1, 1, 0, 0 → bins [0.5,.55) [0.7,.75) [0.8,.85) [0.9,.95)
    ece = (abs(0 - 0.5) + abs(0 - 0.7) + abs(1 - 0.8) + abs(1 - 0.9)) / 4
    assert metrics.expected_calibration_error(p) == pytest.approx(ece)
    assert metrics.position_consistency([0.9, 0.2, None], [0.7, 0.6, 0.4]) == pytest.approx(0.5)
    bias = metrics.length_bias([0.9, 0.2, 0.8], [10, 5, 3], [5, 10, 3])
    assert bias["chosen_longer"] == {"count": 1, "accuracy": 1.0}
    assert bias["chosen_shorter"] == {"count": 1, "accuracy": 0.0}
    assert bias["prefers_longer"] == 1.0


def test_rewardbench_section_weighting():
    subsets = {"Natural": 0.8, "Adversarial/Neighbor": 0.5, "hep-go": 1.0, "math-prm": 0.0, "other": 0.1}
    sections = section_scores(subsets)
    chat_hard = (0.8 * 100 + 0.5 * 134) / 234
    assert sections["Chat Hard"]["score"] == pytest.approx(chat_hard) and not sections["Chat Hard"]["complete"]
    assert sections["Reasoning"]["score"] == pytest.approx(164 / (164 + EXAMPLE_COUNTS["math-prm"]))
    assert "Chat" not in sections and "Safety" not in sections


def test_trained_models_load_with_their_kind(tmp_path, tiny_model_dir):
    from rewardkit.methods.bradley_terry import BradleyTerryScorer
    from rewardkit.methods.train_config import TrainConfig, train

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad wrong"}) + "\n"
                            for i in range(8)))
    common = dict(model=str(tiny_model_dir), data=[str(data)], max_steps=2, max_length=512, batch_size=4)
    train(TrainConfig(task="bt", output=str(tmp_path / "bt"), **common))
    bt = load_reward_model(tmp_path / "bt", dtype="fp32")
    assert isinstance(bt, BradleyTerryScorer)
    r = bt.score(["q1", "q1"], ["good answer", "bad wrong"])
    (p,) = bt.compare(["q1"], ["good answer"], ["bad wrong"])
    assert p == pytest.approx(sigmoid(r[0] - r[1]), abs=1e-6)
    assert bt.rank("q1", ["bad wrong", "good answer"]).order == ([1, 0] if r[1] < r[0] else [0, 1])

    template = tmp_path / "t.yaml"
    template.write_text("user: 'Q {prompt} A {response_a} B {response_b}'\nlabels: ['1', '2']\n")
    train(TrainConfig(task="finetune", output=str(tmp_path / "lora"), lora=True, lora_rank=4,
                      template=str(template), **common))
    judge = load_reward_model(tmp_path / "lora", dtype="fp32")
    assert isinstance(judge, PairwiseJudge) and judge.template.labels == ("1", "2")
    assert 0 < judge.compare(["q"], ["good answer"], ["bad wrong"])[0] < 1


def test_plain_causal_lm_is_a_zero_shot_judge(judge):
    assert isinstance(judge, PairwiseJudge) and judge.template == default_judge_template()


def test_cli_eval_writes_report(tmp_path, tiny_model_dir):
    data = tmp_path / "llmbar_like.jsonl"
    rows = [{"prompt": f"q{i}", "chosen": "good " * (i % 5 + 1), "rejected": "bad " * (3 - i % 3),
             "subset": ["Natural", "Adversarial/Neighbor", "misc"][i % 3]} for i in range(9)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(out),
                                      "--dtype", "fp32"])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    assert res["num_pairs"] == 9 and 0 <= res["accuracy"] <= 1 and res["position_consistency"] is not None
    assert set(res["per_subset"]) == {"Natural", "Adversarial/Neighbor", "misc"}
    assert "Chat Hard" in res["rewardbench_sections"]
    assert {"ece", "brier", "length_bias", "per_file"} <= set(res)
    scores = [json.loads(x) for x in (out / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 9 and all(0 <= s["p_chosen"] <= 1 for s in scores)
    assert metrics.accuracy([s["p_chosen"] for s in scores]) == pytest.approx(res["accuracy"])
    for name in ("report.md", "subset_accuracy.png", "reliability.png"):
        assert (out / name).stat().st_size > 0
    scored = tmp_path / "scores.jsonl"
    result = CliRunner().invoke(app, ["score", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(scored),
                                      "--dtype", "fp32"])
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["p_a_better"] for x in scored.read_text().splitlines()] == \
        pytest.approx([s["p_chosen"] for s in scores], abs=1e-5)


def test_verdict_logits_and_rewards_are_fp32_even_in_bf16(tiny_model_dir):
    """A bf16 logit (8-bit mantissa) near 20 moves in steps of 0.125: the judge's P(A) would then
    take a handful of values. The heads must compute in fp32 from bf16 states and weights."""
    from rewardkit.models.heads import candidate_logits, value_rewards
    from rewardkit.models.loading import load_backbone

    model, _ = load_backbone(str(tiny_model_dir), dtype=torch.bfloat16, device="cpu")
    weight = model.get_output_embeddings().weight
    ids = torch.tensor([5, 6])
    torch.manual_seed(0)
    hidden = (torch.randn(4, weight.shape[1]) * 40).to(torch.bfloat16)
    exact = hidden.float() @ weight[ids].float().T
    for autocast in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            got = candidate_logits(model, hidden, ids)
        assert got.dtype == torch.float32
        assert torch.allclose(got, exact, atol=1e-4, rtol=1e-5)
    assert (exact.abs() > 4).any()  # large enough that bf16 rounding would have shown

    class WithHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.score = torch.nn.Linear(weight.shape[1], 1, bias=False).to(torch.bfloat16)

    holder = WithHead()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rewards = value_rewards(holder, hidden)
    assert rewards.dtype == torch.float32
    assert torch.allclose(rewards, (hidden.float() @ holder.score.weight.float().T)[:, 0], atol=1e-4)


def test_lora_trained_bradley_terry_reloads_its_head(tmp_path, tiny_model_dir):
    """A LoRA BT model saved as an adapter must reload with its trained value head (peft saves
    the `score` module beside the adapter), scoring exactly like the same run saved merged."""
    from rewardkit import LoopConfig, train_method

    data = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad wrong"} for i in range(8)]

    def run(name, merge):
        loop = LoopConfig(model=str(tiny_model_dir), data=data, output=str(tmp_path / name), max_steps=3, lr=1e-2,
                          max_length=512, batch_size=4, lora=True, lora_rank=4, merge_lora=merge, mixed_precision="no")
        train_method("bradley_terry", loop)
        return load_reward_model(tmp_path / name, dtype="fp32")

    adapter, merged = run("adapter", False), run("merged", True)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    prompts, responses = ["q1", "q1", "q2"], ["good answer", "bad wrong", "sorry"]
    assert adapter.score(prompts, responses) == pytest.approx(merged.score(prompts, responses), abs=1e-4)
    from rewardkit.models.loading import load_classifier

    fresh, _ = load_classifier(str(tiny_model_dir), dtype="fp32", num_labels=1)  # a new, random value head
    trained_head = adapter.model.score.weight
    assert not torch.allclose(fresh.score.weight, trained_head)


def test_scoring_uses_the_models_position_limit_not_the_training_cap(tmp_path, tiny_model_dir):
    """A judge trained with a small --max-length scores a long pair whole (the cap is kept in
    rewardkit.json as information); an explicit max_length still truncates."""
    from rewardkit import LoopConfig, train_method

    data = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad wrong"} for i in range(4)]
    train_method("judge", LoopConfig(model=str(tiny_model_dir), data=data, output=str(tmp_path / "j"), max_steps=1,
                                     max_length=320, batch_size=4, mixed_precision="no"))
    assert json.loads((tmp_path / "j" / "rewardkit.json").read_text())["max_length"] == 320
    judge = load_reward_model(tmp_path / "j", dtype="fp32")
    assert judge.max_length == 2048  # the tiny model's max_position_embeddings
    long_answer = "good answer " * 120
    encoded = judge.encoder.encode("q", long_answer, "bad wrong")
    assert len(encoded.input_ids) > 320 and encoded.truncated == 0
    capped = load_reward_model(tmp_path / "j", dtype="fp32", max_length=320)
    assert capped.encoder.encode("q", long_answer, "bad wrong").truncated == 1


def test_eval_report_counts_truncated_rows_and_tokens(tmp_path, tiny_model_dir):
    """A crafted file: two short pairs and one pair whose chosen answer is far over the limit;
    the report says exactly how many rows (both orders of the long pair) and tokens were cut."""
    from rewardkit.eval import evaluate_files, write_report

    judge = load_reward_model(tiny_model_dir, dtype="fp32", max_length=400)
    long_answer = "good answer " * 200
    rows = [{"prompt": "q1", "chosen": "yes", "rejected": "no"}, {"prompt": "q2", "chosen": "sure", "rejected": "bad"},
            {"prompt": "q3", "chosen": long_answer, "rejected": "no"}]
    data = tmp_path / "crafted.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    full = judge.encoder.encode("q3", long_answer, "no")  # what one order of the long pair keeps
    untruncated = load_reward_model(tiny_model_dir, dtype="fp32").encoder.encode("q3", long_answer, "no")
    cut_per_row = len(untruncated.input_ids) - len(full.input_ids)
    assert cut_per_row > 0 and full.tokens_cut == cut_per_row
    results, scored = evaluate_files(judge, [data])
    assert results["truncation"] == {"rows": 6, "truncated_rows": 2, "tokens_cut": 2 * cut_per_row}
    assert results["per_file"]["crafted.jsonl"]["truncation"]["truncated_rows"] == 2
    write_report(tmp_path / "report", results, scored, model="tiny")
    report = (tmp_path / "report" / "report.md").read_text()
    assert f"Truncation at 400 tokens: 2 of 6 scored rows cut, {2 * cut_per_row} tokens in all." in report


def test_plain_transformers_reproduces_bradley_terry_rewards(tmp_path, tiny_model_dir):
    """A BT model trained here scores the same in a standard loader (AutoModelForSequenceClassification
    on tokenizer.apply_chat_template([user, assistant]), as TRL, OpenRLHF and RewardBench read it),
    and carries the reward mean/std where OpenRLHF's normalisation looks."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardkit import LoopConfig, train_method

    data = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad wrong"} for i in range(8)]
    train_method("bradley_terry", LoopConfig(model=str(tiny_model_dir), data=data, output=str(tmp_path / "bt"),
                                             max_steps=3, lr=1e-2, max_length=512, batch_size=4, mixed_precision="no"))
    ours = load_reward_model(tmp_path / "bt", dtype="fp32")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "bt", dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "bt")
    for prompt, response in [("q1", "good answer"), ("q2", "bad wrong"), ("q3", "sorry cannot")]:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
                                            tokenize=True, return_tensors="pt", return_dict=True)["input_ids"]
        with torch.no_grad():
            plain = model(input_ids=ids).logits[0, 0].item()
        assert ours.score([prompt], [response])[0] == pytest.approx(plain, abs=1e-4)
    config = json.loads((tmp_path / "bt" / "config.json").read_text())
    rewards = ours.score([f"q{i}" for i in range(8)] * 2, ["good answer"] * 8 + ["bad wrong"] * 8)
    assert config["mean"] == pytest.approx(float(np.mean(rewards)), abs=1e-4)
    assert config["std"] == pytest.approx(float(np.std(rewards, ddof=1)), abs=1e-4)


def test_export_judge_as_sequence_classifier(tmp_path, tiny_model_dir):
    """Plain transformers on the exported classifier gives the judge's one-order probability."""
    from transformers import AutoModelForSequenceClassification

    result = CliRunner().invoke(app, ["export", str(tiny_model_dir), str(tmp_path / "cls"), "--to", "seq-cls"])
    assert result.exit_code == 0, result.output
    judge = load_reward_model(tiny_model_dir, dtype="fp32")
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path / "cls", dtype=torch.float32).eval()
    config = json.loads((tmp_path / "cls" / "config.json").read_text())
    prompt_text = config["rewardkit_judge"]["prompt"]
    for question, a, b in [("q1", "good answer", "bad wrong"), ("2+2?", "4", "5 or so")]:
        (detail,) = judge.compare_details([question], [a], [b])
        ids = torch.tensor([judge.encoder.encode(question, a, b).input_ids])
        with torch.no_grad():
            logit = classifier(input_ids=ids).logits[0, 0].item()
        assert sigmoid(logit) == pytest.approx(detail.p_ab, abs=1e-5)
        text = prompt_text.format(prompt=question, response_a=a, response_b=b)
        from_text = judge.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            assert sigmoid(classifier(input_ids=from_text).logits[0, 0].item()) == pytest.approx(detail.p_ab, abs=1e-4)
