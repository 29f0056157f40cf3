"""TRL and verl adapters against their documented call shapes; best-of-n and labelling."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rewardkit import load_reward_model
from rewardkit.cli.main import app
from rewardkit.errors import RewardKitError
from rewardkit.integrations import JudgeRewardFunction, RemoteScorer
from rewardkit.integrations.verl import compute_score, compute_score_batch
from rewardkit.serve.app import ServeSettings, create_app
from rewardkit.types import Message


@pytest.fixture(scope="module")
def judge(tiny_model_dir):
    return load_reward_model(tiny_model_dir, dtype="fp32")


def logodds(p):
    return math.log(p / (1 - p))


def test_trl_reference_mode_standard_and_conversational(judge):
    fn = JudgeRewardFunction(judge, mode="reference")
    assert fn.__name__ == "rewardkit_reference"
    prompts = ["how to boil rice?"] * 2
    completions = ["rinse and boil", "no idea"]
    rewards = fn(prompts=prompts, completions=completions, reference=["boil it", "boil it"], trainer_state=None)
    expected = [logodds(p) for p in judge.compare_to_references(prompts, completions, ["boil it"] * 2)]
    assert rewards == pytest.approx(expected, abs=1e-5)
    conv = fn(prompts=[[{"role": "user", "content": p}] for p in prompts],
              completions=[[{"role": "assistant", "content": c}] for c in completions],
              reference=["boil it", "boil it"])
    expected_conv = [logodds(p) for p in judge.compare_to_references(
        [(Message("user", "how to boil rice?"),)] * 2, completions, ["boil it"] * 2)]
    assert conv == pytest.approx(expected_conv, abs=1e-5)
    with pytest.raises(RewardKitError, match="reference"):
        fn(prompts=prompts, completions=completions)


def test_trl_round_robin_groups_consecutive_completions(judge):
    fn = JudgeRewardFunction(judge, mode="round_robin")
    prompts = ["q1"] * 3 + ["q2"] * 2 + ["q3"]
    completions = ["good answer", "bad", "sure good", "yes", "no", "alone"]
    with pytest.warns(UserWarning, match="single completion"):
        rewards = fn(prompts=prompts, completions=completions)
    # a lone completion has nothing to be compared with: None (TRL: NaN), not a silent 0.0 (issue #12)
    assert len(rewards) == 6 and rewards[-1] is None
    assert sum(rewards[:3]) == pytest.approx(0, abs=1e-6) and sum(rewards[3:5]) == pytest.approx(0, abs=1e-6)
    rank = judge.rank("q1", completions[:3], strategy="round_robin")
    assert rewards[:3] == pytest.approx(rank.scores, abs=1e-6)


def test_trl_round_robin_groups_interleaved_prompts_by_key(judge):
    """Online DPO sends [p0, p1, p0, p1]: grouping by adjacency gave every row 0.0."""
    fn = JudgeRewardFunction(judge, mode="round_robin")
    rewards = fn(prompts=["q1", "q2", "q1", "q2"], completions=["good answer", "yes", "bad", "no"])
    q1 = judge.rank("q1", ["good answer", "bad"], strategy="round_robin").scores
    q2 = judge.rank("q2", ["yes", "no"], strategy="round_robin").scores
    assert rewards == pytest.approx([q1[0], q2[0], q1[1], q2[1]], abs=1e-6)
    assert any(abs(r) > 1e-9 for r in rewards)


def test_trl_reference_mode_edge_cases(judge):
    """TRL passes a None reference per row, list-of-parts content, and assistant turns with
    content None (tool calls): none of them raises."""
    fn = JudgeRewardFunction(judge, mode="reference")
    prompts = [[{"role": "user", "content": [{"type": "text", "text": "2+"}, {"type": "text", "text": "2?"}]}],
               [{"role": "user", "content": "2+2?"}]]
    completions = [[{"role": "assistant", "content": None, "tool_calls": [{"name": "calc"}]},
                    {"role": "assistant", "content": "4"}],
                   [{"role": "assistant", "content": "5"}]]
    with pytest.warns(UserWarning, match="no reference"):
        rewards = fn(prompts=prompts, completions=completions, reference=["4", None])
    assert rewards[1] is None
    expected = judge.reward([(Message("user", "2+2?"),)], ["4"], ["4"])
    assert rewards[0] == pytest.approx(expected[0], abs=1e-5)
    with pytest.raises(RewardKitError, match=r"prompts\[0\]\[0\]"):
        fn(prompts=[[{"content": "no role"}]], completions=["x"], reference=["y"])


def test_verl_compute_score_single_and_batch(judge):
    single = compute_score("gsm8k", "the answer is 4", "4", {"question": "2+2?"}, scorer=judge)
    batch = compute_score_batch(["gsm8k"] * 2, ["the answer is 4", "5"], ["4", "4"],
                                [{"question": "2+2?"}, {"question": "2+2?"}], scorer=judge)
    assert batch[0] == pytest.approx(single, abs=1e-6)
    expected = [logodds(p) for p in judge.compare_to_references(["2+2?"] * 2, ["the answer is 4", "5"], ["4", "4"])]
    assert batch == pytest.approx(expected, abs=1e-5)


def test_verl_needs_a_model(monkeypatch):
    from rewardkit.integrations import shared

    shared._shared = None
    monkeypatch.delenv("REWARDKIT_URL", raising=False)
    monkeypatch.delenv("REWARDKIT_MODEL", raising=False)
    with pytest.raises(RewardKitError, match="REWARDKIT_URL"):
        compute_score("x", "a", "b")


def test_remote_scorer_through_the_server(judge, monkeypatch):
    client = TestClient(create_app(judge, ServeSettings(api_key="k")))
    remote = RemoteScorer("http://testserver", api_key="k")
    remote.client = client  # TestClient speaks the same httpx API
    client.headers["Authorization"] = "Bearer k"
    fn = JudgeRewardFunction(remote, mode="reference")
    local = JudgeRewardFunction(judge, mode="reference")
    args = dict(prompts=["q"] * 2, completions=["good", "bad"], reference=["ok", "ok"])
    assert fn(**args) == pytest.approx(local(**args), abs=1e-5)
    assert remote.rank("q", ["a", "b", "c"], strategy="round_robin").order == \
        judge.rank("q", ["a", "b", "c"], strategy="round_robin").order


def test_label_command_writes_dpo_pairs(tmp_path, tiny_model_dir, judge):
    data = tmp_path / "cands.jsonl"
    data.write_text(json.dumps({"prompt": "q1", "responses": ["good answer", "bad", "sure"]}) + "\n" +
                    json.dumps({"prompt": [{"role": "user", "content": "q2"}], "candidates": ["yes", "no"]}) + "\n")
    out = tmp_path / "pairs.jsonl"
    result = CliRunner().invoke(app, ["label", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(out),
                                      "--dtype", "fp32"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 2 and all({"prompt", "chosen", "rejected", "margin"} <= set(r) for r in rows)
    rank = judge.rank("q1", ["good answer", "bad", "sure"], strategy="round_robin")
    assert rows[0]["chosen"] == ["good answer", "bad", "sure"][rank.order[0]]
    assert rows[0]["rejected"] == ["good answer", "bad", "sure"][rank.order[-1]] and rows[0]["margin"] > 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "responses": ["only one"]}) + "\n")
    result = CliRunner().invoke(app, ["label", "--model", str(tiny_model_dir), "--data", str(bad), "--output", str(out)])
    assert result.exit_code == 2 and "bad.jsonl:1: field 'responses'" in result.output


def test_best_of_n_command(tmp_path, tiny_model_dir):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("how do I cook rice?\nsay something good\n")
    out = tmp_path / "bon.jsonl"
    result = CliRunner().invoke(app, ["best-of-n", "--policy", str(tiny_model_dir), "--model", str(tiny_model_dir),
                                      "--prompts", str(prompts), "-n", "4", "--strategy", "knockout",
                                      "--max-new-tokens", "8", "--output", str(out), "--dtype", "fp32"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert len(row["candidates"]) == 4 and row["best"] == row["candidates"][row["best_index"]]
        assert max(range(4), key=lambda i: row["scores"][i]) == row["best_index"]


def test_verl_reward_loop_call_shape_and_checks(judge):
    """verl 0.9's reward loop passes keywords of its own and awaits coroutine functions."""
    import asyncio

    from rewardkit.integrations.verl import compute_score_async

    loop_kwargs = {"reward_router_address": "127.0.0.1:9999", "reward_model_tokenizer": object(), "my_kwarg": 1}
    single = compute_score(data_source="gsm8k", solution_str="4", ground_truth="4", extra_info={"question": "2+2?"},
                           scorer=judge, **loop_kwargs)
    awaited = asyncio.run(compute_score_async(data_source="gsm8k", solution_str="4", ground_truth="4",
                                              extra_info={"question": "2+2?"}, scorer=judge, **loop_kwargs))
    assert awaited == pytest.approx(single, abs=1e-6)
    assert compute_score_batch(["d"], ["4"], [4], [{"question": "2+2?"}], scorer=judge)[0] == pytest.approx(
        judge.reward(["2+2?"], ["4"], ["4"])[0], abs=1e-5)  # a numeric ground truth is its text
    with pytest.raises(RewardKitError, match="extra_info has no question"):
        compute_score("d", "4", "4", {"index": 3}, scorer=judge)
    with pytest.raises(RewardKitError, match="ground_truth is empty"):
        compute_score("d", "4", None, {"question": "2+2?"}, scorer=judge)


def test_verl_threads_share_one_model_and_merge_calls(monkeypatch, tiny_model_dir):
    """verl's thread pool: one load per process, concurrent calls merged into few scorer calls."""
    from concurrent.futures import ThreadPoolExecutor

    import rewardkit
    from rewardkit.integrations import shared

    loads = []
    real_load = rewardkit.load_reward_model
    monkeypatch.setattr(rewardkit, "load_reward_model", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    monkeypatch.setattr(shared, "_shared", None)
    monkeypatch.delenv("REWARDKIT_URL", raising=False)
    monkeypatch.setenv("REWARDKIT_MODEL", str(tiny_model_dir))
    with ThreadPoolExecutor(8) as pool:
        scores = list(pool.map(lambda i: compute_score("d", f"answer {i}", "ref", {"question": "q"}), range(24)))
    assert len(loads) == 1 and len(scores) == 24
    merged = shared.shared_scorer()
    assert merged.calls < 24
    direct = merged.scorer.reward(["q"] * 24, [f"answer {i}" for i in range(24)], ["ref"] * 24)
    assert scores == pytest.approx(direct, abs=1e-5)


def test_openrlhf_get_reward_edge_cases(judge, tokenizer):
    """What OpenRLHF 0.11 really sends: numeric labels, prompts it left-truncated, a blank
    label among good ones (per item, with the server's references as the fallback)."""
    client = TestClient(create_app(judge, ServeSettings(references={"how many?": "three"})))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "how many?"}], tokenize=False,
                                           add_generation_prompt=True)
    queries = [prompt + "3<|im_end|>", prompt + "four<|im_end|>", prompt + "two<|im_end|>"]
    truncated = prompt[5:]  # OpenRLHF cut the prompt's start: the query no longer starts with it
    res = client.post("/get_reward", json={"query": queries, "prompts": [prompt, truncated, prompt],
                                           "labels": [3, "", "three"]})
    assert res.status_code == 200, res.text
    question = (Message("user", "how many?"),)
    expected = judge.compare_to_references([question] * 3, ["3", "four", "two"], ["3", "three", "three"])
    assert res.json()["extra_logs"]["p_better_than_reference"] == pytest.approx(expected, abs=1e-6)
    no_fallback = TestClient(create_app(judge, ServeSettings()))
    res = no_fallback.post("/get_reward", json={"query": queries, "prompts": [prompt] * 3, "labels": ["a", None, "c"]})
    assert res.status_code == 400 and "[1]" in res.json()["error"]


def test_openrlhf_reward_func_file(monkeypatch, tiny_model_dir, tokenizer):
    """The Python file OpenRLHF imports for --remote_rm_url: reward_func(queries, prompts, labels)."""
    import importlib.util

    import rewardkit.integrations.openrlhf as module
    from rewardkit.integrations import shared

    spec = importlib.util.spec_from_file_location("reward_func", module.__file__)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)  # as OpenRLHF's agent does
    monkeypatch.setattr(shared, "_shared", None)
    monkeypatch.delenv("REWARDKIT_URL", raising=False)
    monkeypatch.setenv("REWARDKIT_MODEL", str(tiny_model_dir))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "q?"}], tokenize=False, add_generation_prompt=True)
    out = loaded.reward_func([prompt + "yes<|im_end|>"], [prompt], ["no"])
    assert set(out) == {"rewards", "scores", "extra_logs"} and len(out["rewards"]) == 1
    p = shared.shared_scorer().scorer.compare_to_references([(Message("user", "q?"),)], ["yes"], ["no"])[0]
    assert out["rewards"][0] == pytest.approx(logodds(p), abs=1e-5)
