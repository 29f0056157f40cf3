"""HTTP contracts, OpenRLHF shape, malformed requests, overload and auth."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from rewardkit import load_reward_model
from rewardkit.scoring.calibration import calibrate
from rewardkit.serve.app import ServeSettings, create_app
from rewardkit.serve.queries import parse_prompt, split_query, strip_end_tokens
from rewardkit.types import Message


@pytest.fixture(scope="module")
def judge(tiny_model_dir):
    return load_reward_model(tiny_model_dir, dtype="fp32")


@pytest.fixture(scope="module")
def client(judge):
    return TestClient(create_app(judge, ServeSettings(max_items=8)))


def test_compare_and_reward_contracts(client, judge):
    body = {"prompts": ["q1", [{"role": "user", "content": "q2"}]], "responses_a": ["good", "yes sure"],
            "responses_b": ["bad", "sorry"]}
    res = client.post("/compare", json=body)
    assert res.status_code == 200
    expected = judge.compare(["q1", (Message("user", "q2"),)], ["good", "yes sure"], ["bad", "sorry"])
    assert res.json()["probabilities"] == pytest.approx(expected, abs=1e-6)
    res = client.post("/reward", json={"prompts": ["q1"], "responses": ["good"], "references": ["bad"]})
    assert res.status_code == 200
    (p,) = judge.compare_to_references(["q1"], ["good"], ["bad"])
    assert res.json()["rewards"] == pytest.approx([math.log(p / (1 - p))], abs=1e-5)
    res = client.post("/rank", json={"prompt": "q", "responses": ["a", "b", "c"], "strategy": "round_robin"})
    assert res.status_code == 200 and sorted(res.json()["order"]) == [0, 1, 2]


def test_reward_without_reference_is_a_clear_400(client):
    res = client.post("/reward", json={"prompts": ["q1"], "responses": ["good"]})
    assert res.status_code == 400 and "reference" in res.json()["error"]


def test_openrlhf_get_reward(client, judge, tokenizer):
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "how do I cook rice?"}], tokenize=False,
                                           add_generation_prompt=True)
    queries = [prompt + "rinse, boil, simmer.<|im_end|>", prompt + "no idea<|im_end|>"]
    res = client.post("/get_reward", json={"query": queries, "prompts": [prompt, prompt],
                                           "labels": ["boil it in water", "boil it in water"]})
    assert res.status_code == 200, res.text
    data = res.json()
    assert set(data) == {"rewards", "scores", "extra_logs"} and len(data["rewards"]) == 2
    expected = judge.compare_to_references([(Message("user", "how do I cook rice?"),)] * 2,
                                           ["rinse, boil, simmer.", "no idea"], ["boil it in water"] * 2)
    assert data["extra_logs"]["p_better_than_reference"] == pytest.approx(expected, abs=1e-6)
    # without 'prompts' the response is found after the last assistant header
    res2 = client.post("/get_reward", json={"query": queries, "labels": ["boil it in water"] * 2})
    assert res2.json()["rewards"] == pytest.approx(data["rewards"], abs=1e-6)


@pytest.mark.parametrize("payload,fragment", [
    ("{not json", "malformed"),
    (json.dumps({"prompts": ["q"], "responses_a": [1], "responses_b": ["b"]}), "responses_a.0"),
    (json.dumps({"prompts": ["q"], "responses_a": ["a"]}), "responses_b"),
    (json.dumps({"prompts": ["q"], "responses_a": ["a"], "responses_b": ["b"], "colour": 1}), "colour"),
])
def test_malformed_requests_get_400(client, payload, fragment):
    res = client.post("/compare", content=payload, headers={"content-type": "application/json"})
    assert res.status_code == 400
    assert fragment in json.dumps(res.json())


def test_size_limits(client):
    res = client.post("/compare", json={"prompts": ["q"], "responses_a": ["a", "b"], "responses_b": ["b"]})
    assert res.status_code == 400 and "same length" in res.json()["error"]
    res = client.post("/compare", json={"prompts": ["q"] * 9, "responses_a": ["a"] * 9, "responses_b": ["b"] * 9})
    assert res.status_code == 400 and "at most 8" in res.json()["error"]
    big = TestClient(create_app(None, ServeSettings(max_body_bytes=100)))
    res = big.post("/compare", json={"prompts": ["q" * 200], "responses_a": ["a"], "responses_b": ["b"]})
    assert res.status_code == 413


def test_bearer_token(judge):
    secured = TestClient(create_app(judge, ServeSettings(api_key="s3cret")))
    body = {"prompts": ["q"], "responses_a": ["a"], "responses_b": ["b"]}
    assert secured.post("/compare", json=body).status_code == 401
    assert secured.post("/compare", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert secured.post("/compare", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert secured.get("/health").status_code == 200  # health stays open for load balancers


class SlowScorer:
    """Counts calls; each call takes a fixed time, like a busy model."""

    kind = "generative_judge"
    pointwise = False

    def __init__(self, delay=0.05):
        self.delay, self.calls, self.sizes = delay, 0, []
        self.lock = threading.Lock()

    def compare(self, prompts, a, b, both_orders=True):
        with self.lock:
            self.calls += 1
            self.sizes.append(len(prompts))
        time.sleep(self.delay)
        return [0.75] * len(prompts)

    def compare_to_references(self, prompts, responses, references):
        return self.compare(prompts, responses, references)


def run_concurrently(app, n, body, path="/compare"):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            return await asyncio.gather(*[ac.post(path, json=body) for _ in range(n)])

    return asyncio.run(go())


def test_requests_are_batched_across_clients():
    scorer = SlowScorer()
    app = create_app(scorer, ServeSettings(max_wait_ms=20))
    responses = run_concurrently(app, 24, {"prompts": ["q"], "responses_a": ["a"], "responses_b": ["b"]})
    assert all(r.status_code == 200 and r.json()["probabilities"] == [0.75] for r in responses)
    assert scorer.calls < 24 and max(scorer.sizes) > 1


def test_overload_gives_503_then_recovers():
    scorer = SlowScorer(delay=0.2)
    app = create_app(scorer, ServeSettings(max_queue=4, max_batch_items=2, max_wait_ms=1))
    responses = run_concurrently(app, 30, {"prompts": ["q"], "responses_a": ["a"], "responses_b": ["b"]})
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 503} and 503 in codes and 200 in codes
    assert all(r.headers.get("retry-after") == "1" for r in responses if r.status_code == 503)
    (again,) = run_concurrently(app, 1, {"prompts": ["q"], "responses_a": ["a"], "responses_b": ["b"]})
    assert again.status_code == 200
    metrics = TestClient(app).get("/metrics").json()
    assert metrics["rejected_503"] == codes.count(503) and metrics["latency_ms"]["p99"] is not None


def test_normalisation_from_calibration_file(tmp_path, judge):
    path = tmp_path / "cal.jsonl"
    rows = [{"prompt": f"q{i}", "response": "good " * i, "reference": "bad"} for i in range(1, 7)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mean, std = calibrate(judge, str(path))
    app = TestClient(create_app(judge, ServeSettings(normalization=(mean, std))))
    body = {"prompts": [r["prompt"] for r in rows], "responses": [r["response"] for r in rows],
            "references": [r["reference"] for r in rows]}
    rewards = app.post("/reward", json=body).json()["rewards"]
    assert sum(rewards) / len(rewards) == pytest.approx(0, abs=1e-4)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "response": "r"}) + "\n")
    from rewardkit.errors import DataError

    with pytest.raises(DataError, match="bad.jsonl:1: field 'reference'"):
        calibrate(judge, str(bad))


def test_split_query_formats():
    chatml = "<|im_start|>system\nbe nice<|im_end|>\n<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n"
    prompt, response = split_query(chatml + "Hello!<|im_end|><|endoftext|>", chatml)
    assert prompt == (Message("system", "be nice"), Message("user", "hi there")) and response == "Hello!"
    llama = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
             "<|start_header_id|>assistant<|end_header_id|>\n\n")
    prompt, response = split_query(llama + "4<|eot_id|>", None)
    assert prompt == (Message("user", "What is 2+2?"),) and response == "4"
    assert parse_prompt("<s>[INST] tell me a joke [/INST]") == (Message("user", "tell me a joke"),)
    assert parse_prompt("plain question") == "plain question"
    assert strip_end_tokens("answer</s><pad><pad>") == "answer"
    from rewardkit.serve.queries import QueryError

    with pytest.raises(QueryError):
        split_query("no markup at all", None)
    with pytest.raises(QueryError):
        split_query("abc", "xyz")


@pytest.fixture(scope="module")
def bt_scorer(tmp_path_factory, tiny_model_dir):
    from rewardkit import LoopConfig, train_method

    out = tmp_path_factory.mktemp("bt") / "model"
    data = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad wrong"} for i in range(8)]
    train_method("bradley_terry", LoopConfig(model=str(tiny_model_dir), data=data, output=str(out), max_steps=2,
                                             max_length=512, batch_size=4, mixed_precision="no"))
    return load_reward_model(out, dtype="fp32")


def test_bradley_terry_rewards_through_the_server_are_batched(bt_scorer):
    """A BT model's pointwise rewards (no reference) merge across concurrent requests like
    judge comparisons do, and equal the library's rewards."""
    calls = []
    original = bt_scorer.reward

    def counting_reward(prompts, responses, references=None, scale="raw"):
        calls.append(len(prompts))
        time.sleep(0.05)  # a busy model: requests arriving meanwhile queue up and merge
        return original(prompts, responses, references, scale)

    bt_scorer.reward = counting_reward
    try:
        app = create_app(bt_scorer, ServeSettings(max_wait_ms=20))
        body = {"prompts": ["q1", "q2"], "responses": ["good answer", "bad wrong"]}
        responses = run_concurrently(app, 16, body, path="/reward")
    finally:
        del bt_scorer.reward
    expected = bt_scorer.reward(["q1", "q2"], ["good answer", "bad wrong"])
    assert all(r.status_code == 200 for r in responses)
    for r in responses:
        assert r.json()["rewards"] == pytest.approx(expected, abs=1e-5)
        assert r.json()["probabilities"] == pytest.approx([1 / (1 + math.exp(-x)) for x in expected], abs=1e-6)
    assert len(calls) < 16 and max(calls) > 2  # merged: fewer scorer calls than requests, several requests per call
    # with references the BT reward is the difference of the two scalars (same prompt for both)
    same = {"prompts": ["q1", "q1"], "responses": ["good answer", "bad wrong"]}
    expected = bt_scorer.reward(same["prompts"], same["responses"])
    res = TestClient(app).post("/reward", json={**same, "references": ["bad wrong", "good answer"]})
    assert res.json()["rewards"] == pytest.approx([expected[0] - expected[1], expected[1] - expected[0]], abs=1e-4)


def test_bt_reference_rewards_score_a_shared_reference_once(bt_scorer):
    """A GRPO group shares one reference: it is scored once, and rewards are unchanged."""
    rows = []
    original = bt_scorer.score

    def counting(prompts, responses):
        rows.append(len(responses))
        return original(prompts, responses)

    bt_scorer.score = counting
    try:
        rewards = bt_scorer.reward(["q"] * 4, ["a", "b", "c", "d"], ["ref"] * 4)
    finally:
        del bt_scorer.score
    assert rows == [4, 1]
    direct = bt_scorer.score(["q"] * 5, ["a", "b", "c", "d", "ref"])
    assert rewards == pytest.approx([r - direct[4] for r in direct[:4]], abs=1e-5)
