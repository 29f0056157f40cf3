"""CompositeReward: a verifier decides where it can, the learned model elsewhere, on the model's
scale — the same through the TRL, OpenRLHF and verl adapters and the server as called directly."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

from rewardkit import load_reward_model
from rewardkit.errors import ConfigError
from rewardkit.scoring.composite import CompositeReward

QUESTIONS = ["What is 2 + 2?", "What is half of 1?", "Say something nice.", "What is 3 * 3?"]
ANSWERS = ["It is 4.", "That is 0.75.", "You are great.", "The answer is $9$."]
REFERENCES = ["4", "0.5", "Have a nice day.", "9"]  # the third has no math: the model decides


@pytest.fixture(scope="module")
def judge(tiny_model_dir):
    return load_reward_model(str(tiny_model_dir), dtype="fp32")


def expected(judge, mode="verifier_first", weight=0.5, bound=5.0):
    learned = judge.reward(QUESTIONS, ANSWERS, REFERENCES)
    verdicts = [True, False, None, True]
    out = []
    for verdict, model in zip(verdicts, learned):
        if verdict is None:
            out.append(model)
        else:
            verified = bound if verdict else -bound
            out.append(verified if mode == "verifier_first" else weight * verified + (1 - weight) * model)
    return out


def test_the_verifier_decides_where_it_can_and_the_model_elsewhere(judge):
    composite = CompositeReward(judge, "math")
    assert composite.reward(QUESTIONS, ANSWERS, REFERENCES) == pytest.approx(expected(judge))
    assert [v.passed for v in composite.last_verdicts] == [True, False, None, True]
    mixed = CompositeReward(judge, "math", mode="mix", weight=0.25, verified_reward=2.0)
    assert mixed.reward(QUESTIONS, ANSWERS, REFERENCES) == pytest.approx(expected(judge, "mix", 0.25, 2.0))
    probabilities = composite.compare_to_references(QUESTIONS, ANSWERS, REFERENCES)
    assert probabilities == pytest.approx([1 / (1 + math.exp(-r)) for r in expected(judge)])
    assert composite.reward(QUESTIONS, ANSWERS, REFERENCES, scale="prob") == pytest.approx(probabilities)
    assert composite.kind == judge.kind and composite.pointwise == judge.pointwise
    with pytest.raises(ConfigError, match="--verifier 'regex'"):
        CompositeReward(judge, "regex")


def test_the_composite_through_trl_verl_openrlhf_and_the_server(judge, monkeypatch):
    from rewardkit.integrations import verl
    from rewardkit.integrations.openrlhf import score_queries
    from rewardkit.integrations.trl import JudgeRewardFunction
    from rewardkit.serve.app import create_app

    composite = CompositeReward(judge, "math")
    want = expected(judge)
    trl = JudgeRewardFunction(composite)(QUESTIONS, ANSWERS, reference=REFERENCES)
    assert trl == pytest.approx(want)
    batch = verl.compute_score_batch(["math"] * 4, ANSWERS, REFERENCES, [{"question": q} for q in QUESTIONS],
                                     scorer=composite)
    assert batch == pytest.approx(want)
    queries = [f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>" for q, a in zip(QUESTIONS, ANSWERS)]
    prompts = [f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n" for q in QUESTIONS]
    openrlhf = score_queries(composite, queries, prompts, REFERENCES)
    assert openrlhf["rewards"] == pytest.approx(want, abs=1e-5)
    client = TestClient(create_app(composite))
    served = client.post("/reward", json={"prompts": QUESTIONS, "responses": ANSWERS, "references": REFERENCES})
    assert served.status_code == 200 and served.json()["rewards"] == pytest.approx(want, abs=1e-5)

    from rewardkit.integrations import shared  # the environment route verl and OpenRLHF workers take

    monkeypatch.setenv("REWARDKIT_VERIFIER", "math")
    monkeypatch.setenv("REWARDKIT_VERIFIED_REWARD", "3.0")
    wrapped = shared.with_verifier(judge)
    assert isinstance(wrapped, CompositeReward) and wrapped.verified_reward == 3.0
    assert wrapped.reward(QUESTIONS, ANSWERS, REFERENCES)[0] == 3.0


def test_code_answers_are_checked_against_the_tests_given_as_the_reference(judge):
    composite = CompositeReward(judge, "code")
    answers = ["```python\ndef add(a, b):\n    return a + b\n```", "```python\ndef add(a, b):\n    return a * b\n```"]
    rewards = composite.reward(["Write add."] * 2, answers, ["assert add(2, 3) == 5"] * 2)
    assert rewards == [5.0, -5.0]
