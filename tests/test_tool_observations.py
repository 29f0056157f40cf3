"""Tool-augmented judging (Themis): the tools' findings by hand, the {observations} slot and its
truncation, and the same observation text in training and in scoring — a judge fine-tuned with
observations scores after reload what its training measured."""

from __future__ import annotations

import json

import pytest

from rewardkit import LoopConfig, load_reward_model, train_method
from rewardkit.data.templates import PromptTemplate, default_judge_template, tool_judge_template
from rewardkit.data.tokenize import SegmentEncoder
from rewardkit.errors import ConfigError
from rewardkit.methods.judge import JudgeConfig
from rewardkit.verifiers.observations import NOTHING, ToolContext, calculations, observe_pair

GOOD_CODE = "```python\ndef add(a, b):\n    return a + b\n```"
BAD_CODE = "```python\ndef add(a, b):\n    return a - b\n```"


def test_the_calculator_recomputes_what_answers_wrote():
    found = calculations("12 x 7 = 84, then (3 + 4) * 2 = 15 and 1,000 / 4 = 250; 2 ^ 10 = 1024; 7 - 9 = -2")
    assert [(c.written, c.right) for c in found] == [("12 x 7 = 84", True), ("(3 + 4) * 2 = 15", False),
                                                     ("1000 / 4 = 250", True), ("2 ^ 10 = 1024", True),
                                                     ("7 - 9 = -2", True)]
    assert found[1].actual == 14
    assert calculations("9 ^ 999999 = 1")[0].actual is None  # no runaway power
    assert calculations("5 / 0 = 3")[0].right is False
    assert calculations("no sums here, 2026-12-04") == []


def test_observations_name_each_answer_by_its_position():
    context = ToolContext(answer="42")
    text = observe_pair("6 * 7 = 42. The answer is 42.", "6 * 7 = 48, so the answer is 48.", context)
    assert "Assistant A's 1 calculation(s) are all correct" in text
    assert "Assistant B has 1 of 1 calculation(s) wrong: 6 * 7 = 48 (it is 42)" in text
    assert "Assistant A's final answer matches the known answer; Assistant B's final answer does not" in text
    swapped = observe_pair("6 * 7 = 48, so the answer is 48.", "6 * 7 = 42. The answer is 42.", context)
    assert "Assistant A has 1 of 1 calculation(s) wrong" in swapped and "Assistant B's 1 calculation(s)" in swapped
    tests = observe_pair(GOOD_CODE, BAD_CODE, ToolContext(tests="assert add(2, 3) == 5"))
    assert "Assistant A's code passes the tests; Assistant B's code fails the tests" in tests
    assert observe_pair("hello", "world") == NOTHING
    assert ToolContext.from_extra({"answer": 42, "tests": " "}) == ToolContext("42", None)


def test_the_observations_slot_is_optional_once_and_kept_whole_when_answers_are_cut(tokenizer):
    assert tool_judge_template().observes and not default_judge_template().observes
    tool_judge_template().require_pair_slots()
    with pytest.raises(ConfigError, match="at most once"):
        PromptTemplate(user="{prompt} {response_a} {response_b} {observations} {observations}")
    encoder = SegmentEncoder(tokenizer, tool_judge_template(), 600)
    note = "Calculator: Assistant A's 1 calculation(s) are all correct."
    encoded = encoder.encode("q?", "word " * 500, "other " * 500, observations=note)
    start, end = encoded.spans["observations"]
    assert tokenizer.decode(encoded.input_ids[start:end]) == note and encoded.truncated
    assert len(encoded.input_ids) <= 600
    long_note = "observed " * 400  # more than the row holds: cut where the answers would lose their floor
    encoded = encoder.encode("q?", "a " * 40, "b " * 40, observations=long_note)
    start, end = encoded.spans["observations"]
    assert end - start == 600 - encoder.fixed_length - 2 * 16 - 1 and encoded.truncated
    assert encoded.spans["response_a"][1] - encoded.spans["response_a"][0] >= 16
    assert max(len(line) for line in observe_pair("1 + 1 = 3. " * 100, "2 + 2 = 5. " * 100).splitlines()) <= 200


def rows(n: int, seed: int) -> list[dict]:
    out = []
    for i in range(n):
        a, b = 3 + i + seed, 5 + 2 * i
        right, wrong = f"{a} * {b} = {a * b}. The answer is {a * b}.", f"{a} * {b} = {a * b + 7}. The answer is {a * b + 7}."
        out.append({"prompt": f"What is {a} times {b}?", "chosen": right, "rejected": wrong, "answer": str(a * b)})
    return out


def test_a_judge_trained_with_observations_scores_after_reload_what_training_measured(tmp_path, tiny_model_dir):
    train, held = tmp_path / "train.jsonl", tmp_path / "held.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows(12, 0)))
    held.write_text("".join(json.dumps(r) + "\n" for r in rows(8, 40)))
    loop = LoopConfig(model=str(tiny_model_dir), data=[str(train)], eval_data=[str(held)], output=str(tmp_path / "m"),
                      max_steps=6, lr=1e-2, batch_size=4, max_length=1024, warmup_ratio=0.0, save_every=10**6,
                      mixed_precision="no", freeze_embeddings=False, seed=0)
    summary = train_method("judge", loop, JudgeConfig(tool_observations=True))
    judge = load_reward_model(str(tmp_path / "m"), dtype="fp32")
    assert judge.template.observes  # the saved template carries the slot
    from rewardkit.data import load_pairs
    from rewardkit.eval.runner import score_pairs

    pairs = load_pairs(str(held)).records
    scored = score_pairs(judge, pairs)  # the runner hands the rows' answers to the tools
    mean = sum(r["p_chosen"] for r in scored) / len(scored)
    assert mean == pytest.approx(summary["eval_mean_p_chosen"], abs=1e-5)
    # the observations did enter the prompt: without the known answers the judge reads other text
    blind = load_reward_model(str(tmp_path / "m"), dtype="fp32")
    p = blind.compare([x.prompt for x in pairs], [x.chosen for x in pairs], [x.rejected for x in pairs])
    assert max(abs(a - r["p_chosen"]) for a, r in zip(p, scored)) > 1e-6  # identical inputs would give equal p


def test_training_prompts_carry_the_same_observation_text_as_scoring(tmp_path, tiny_model_dir, tokenizer):
    from rewardkit.data import load_pairs
    from rewardkit.methods.judge.task import JudgeTask

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows(2, 0)))
    loop = LoopConfig(model=str(tiny_model_dir), data=[str(data)], output=str(tmp_path / "o"), max_length=1024)
    task = JudgeTask(loop, JudgeConfig(tool_observations=True))
    task.tokenizer = tokenizer
    task.encoder = SegmentEncoder(tokenizer, task.template, 1024)
    pairs = load_pairs(str(data)).records
    features = task.prepare(pairs).features
    first = tokenizer.decode(features[0]["input_ids"])
    assert "Assistant B has 1 of 1 calculation(s) wrong" in first  # chosen shown first: B is the wrong one
    assert "Assistant A's final answer matches the known answer" in first
    second = tokenizer.decode(features[1]["input_ids"])
    assert "Assistant A has 1 of 1 calculation(s) wrong" in second
    judge = load_reward_model(str(tiny_model_dir), dtype="fp32")
    from rewardkit.methods.judge.scorer import PairwiseJudge

    scorer = PairwiseJudge(judge.model, tokenizer, task.template, max_length=1024)
    scorer.add_tool_contexts(pairs)
    request = scorer._request(pairs[0].prompt, pairs[0].chosen, pairs[0].rejected)
    assert list(request.prefix + request.suffix) == features[0]["input_ids"]  # token for token


def test_tool_observations_with_a_template_without_the_slot_is_refused(tmp_path, tiny_model_dir):
    from rewardkit.methods.judge.task import JudgeTask

    plain = tmp_path / "t.yaml"
    plain.write_text('user: "Q: {prompt}\\nA: {response_a}\\nB: {response_b}"\n')
    loop = LoopConfig(model=str(tiny_model_dir), data=[], output=str(tmp_path / "o"), template=str(plain))
    with pytest.raises(ConfigError, match="has no {observations} slot"):
        JudgeTask(loop, JudgeConfig(tool_observations=True))
