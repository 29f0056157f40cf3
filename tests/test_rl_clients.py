"""The RL clients as they really run, round two (issue 28): one test per defect, driven through
the client's own code at the version named — TRL 1.16's GRPOTrainer, OpenRLHF 0.11.2's agent
executor and argument parser, verl 0.9.1's reward loop and config composition — plus the
server and RemoteScorer they talk to. scripts/setup.sh installs the clients' code (without
their GPU stacks)."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit import load_reward_model
from rewardkit.integrations import JudgeRewardFunction

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def judge(tiny_model_dir):
    return load_reward_model(tiny_model_dir, dtype="fp32")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- TRL 1.16 -------------------------------------------------------------------------------

class Recording(JudgeRewardFunction):
    """rewardkit's TRL reward function, keeping every call TRL made: (prompts, completions, columns, rewards)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def __call__(self, prompts, completions, **columns):
        rewards = super().__call__(prompts, completions, **columns)
        self.calls.append((prompts, completions, columns, rewards))
        return rewards


def grpo_train(tmp_path, model_dir, rows: list[dict], reward, **config) -> None:
    """Steps of TRL's own GRPOTrainer on CPU with `reward` as its reward function."""
    pytest.importorskip("trl")
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(output_dir=str(tmp_path / "out"), report_to=[], logging_steps=1, use_cpu=True,
                      save_strategy="no", bf16=False, max_steps=1, **config)
    GRPOTrainer(model=str(model_dir), args=args, train_dataset=datasets.Dataset.from_list(rows),
                reward_funcs=[reward]).train()


def test_trl_1_a_numeric_reference_column_is_its_text(tmp_path, tiny_model_dir, judge):
    reward = Recording(judge, mode="reference")
    grpo_train(tmp_path, tiny_model_dir, [{"prompt": f"{i} + 0.5 = ?", "reference": i + 0.5} for i in range(4)], reward,
               per_device_train_batch_size=4, num_generations=2, max_completion_length=4)
    prompts, completions, columns, rewards = reward.calls[0]
    references = columns["reference"]
    assert all(isinstance(r, float) for r in references)  # TRL passed the column through as numbers
    assert rewards == pytest.approx(judge.reward(prompts, completions, [repr(r) for r in references]), abs=1e-6)


def test_trl_2_round_robin_ranks_a_group_split_over_two_processes_as_one_process_would(tmp_path, tiny_model_dir,
                                                                                      judge):
    pytest.importorskip("trl")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                             str(free_port()), str(TESTS / "trl_grpo_worker.py"), str(tiny_model_dir), str(tmp_path),
                             "round_robin"], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    calls = [[json.loads(line) for line in (tmp_path / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    assert len(calls[0]) == len(calls[1]) == 2  # one reward call per rank per step
    alone = JudgeRewardFunction(judge, mode="round_robin")
    for first, second in zip(*calls):
        prompts, completions = first["prompts"] + second["prompts"], first["completions"] + second["completions"]
        assert len(set(first["prompts"]) & set(second["prompts"])) > 0  # TRL did split a group over the ranks
        assert first["rewards"] + second["rewards"] == pytest.approx(alone(prompts, completions), abs=1e-6)


def remote_for(scorer, settings=None):
    from fastapi.testclient import TestClient

    from rewardkit.integrations import RemoteScorer
    from rewardkit.serve.app import ServeSettings, create_app

    remote = RemoteScorer("http://testserver")
    remote.client = TestClient(create_app(scorer, settings or ServeSettings()))  # the same httpx API
    return remote


def test_trl_3_remote_requests_are_split_to_fit_the_servers_limits(judge):
    from rewardkit.serve.app import ServeSettings

    remote = remote_for(judge, ServeSettings(max_items=16, max_rank_comparisons=20))
    assert remote.limits == {"max_items": 16, "max_rank_comparisons": 20}  # read from the server's /health
    completions = [f"answer number {i}" + "!" * (i % 3) for i in range(24)]  # 276 comparisons, 24 items
    prompts = ["what is it?"] * 24
    round_robin = JudgeRewardFunction(remote, mode="round_robin")(prompts, completions)
    assert round_robin == pytest.approx(JudgeRewardFunction(judge, mode="round_robin")(prompts, completions), abs=1e-5)
    references = ["the reference"] * 24
    assert JudgeRewardFunction(remote)(prompts, completions, reference=references) == pytest.approx(
        judge.reward(prompts, completions, references), abs=1e-5)
    queries = [f"<|im_start|>user\nwhat is it?<|im_end|>\n<|im_start|>assistant\n{c}<|im_end|>" for c in completions]
    rewards = remote.get_reward(queries, None, references)
    assert len(rewards["rewards"]) == 24 and len(rewards["extra_logs"]["p_better_than_reference"]) == 24


def test_trl_3_grpo_with_24_generations_against_a_server_with_its_default_limits(tmp_path, tiny_model_dir, judge):
    """TRL's own trainer, num_generations=24 (276 comparisons per group, over the server's 256)."""
    from rewardkit.integrations import RemoteScorer
    from rewardkit.serve.app import ServeSettings

    server = Server(judge, ServeSettings())
    try:
        reward = Recording(RemoteScorer(f"http://127.0.0.1:{server.port}"), mode="round_robin")
        grpo_train(tmp_path, tiny_model_dir, [{"prompt": "say something?"}] * 2, reward,
                   per_device_train_batch_size=24, num_generations=24, max_completion_length=3)
    finally:
        server.close()
    ((*_, rewards),) = reward.calls
    assert len(rewards) == 24 and all(r is not None and math.isfinite(r) for r in rewards)


# ---- OpenRLHF 0.11.2 --------------------------------------------------------------------------

# a ChatML template that, like SmolLM2's, adds a system turn of its own when the chat has none
DEFAULT_SYSTEM_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a careful helper.<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture
def policy_tokenizer():
    from tiny import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.chat_template = DEFAULT_SYSTEM_TEMPLATE
    return tokenizer


class Server:
    """`rewardkit serve` as uvicorn runs it, on 127.0.0.1, in a thread."""

    def __init__(self, scorer, settings):
        import threading

        import uvicorn

        from rewardkit.serve.app import create_app

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(scorer, settings), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        import time

        while not self.server.started:
            time.sleep(0.02)

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)


def openrlhf_rollout(executor, tokenizer, row: dict, response: str, *, label_key=None, max_length=2048, max_tokens=16):
    """One sample through OpenRLHF's own code: its dataset templating (`preprocess_data`, as
    PromptDataset calls it with --data.apply_chat_template) and `SingleTurnAgentExecutor.execute`,
    with only the vLLM engine replaced by one that "generates" `response`."""
    import asyncio
    from types import SimpleNamespace

    from openrlhf.datasets.prompts_dataset import preprocess_data

    prompt, label = preprocess_data(row, input_key="prompt", label_key=label_key,
                                    apply_chat_template=tokenizer.apply_chat_template)
    tokens = tokenizer(response + "<|im_end|>", add_special_tokens=False)["input_ids"]

    class Engine:
        async def generate(self, prompt_token_ids, params, multi_modal_data=None):
            self.prompt_token_ids = prompt_token_ids
            return SimpleNamespace(outputs=[SimpleNamespace(token_ids=tokens, finish_reason="stop", logprobs=None)])

    params = SimpleNamespace(max_tokens=max_tokens, logprobs=None)
    return prompt, asyncio.run(executor.execute(prompt, label, params, max_length, tokenizer, Engine()))


def test_openrlhf_4_the_documented_command_lines_parse_with_openrlhfs_own_parser():
    """Every `openrlhf.cli.train_ppo_ray` line in docs/serving.md, parsed by the argument parser
    that OpenRLHF 0.11.2's train_ppo_ray.py builds (taken from its source: it is built under
    `if __name__ == "__main__"`), then hierarchised as OpenRLHF does."""
    pytest.importorskip("openrlhf")
    import argparse
    import importlib.util
    import shlex
    import textwrap

    from openrlhf.utils.config import hierarchize

    # read, not imported: the module imports vLLM and Ray's GPU launchers at the top
    package = Path(importlib.util.find_spec("openrlhf").submodule_search_locations[0])
    source = (package / "cli" / "train_ppo_ray.py").read_text()
    block = source[source.index("    parser = argparse.ArgumentParser()"):source.index("    args = parser.parse_args()")]
    namespace = {"argparse": argparse, "datetime": __import__("datetime").datetime, "os": os}
    exec(textwrap.dedent(block), namespace)  # noqa: S102 - OpenRLHF's own parser code
    parser = namespace["parser"]
    doc = (TESTS.parent / "docs" / "serving.md").read_text()
    commands = [" ".join(shlex.split(line.replace("\\\n", " "))) for line in
                doc.replace("\\\n", " ").splitlines() if "openrlhf.cli.train_ppo_ray" in line and "python" in line]
    assert len(commands) >= 3
    for command in commands:
        words = shlex.split(command)
        flags = words[words.index("openrlhf.cli.train_ppo_ray") + 1:]
        try:
            args = hierarchize(parser.parse_args(flags))
        except SystemExit:
            pytest.fail(f"OpenRLHF 0.11.2 rejects the documented command: {command}")
        assert args.reward.remote_url or args.reward.model_name_or_path, command
    with pytest.raises(SystemExit):  # the parser does reject what the old docs said
        parser.parse_args(["--remote_rm_url", "http://127.0.0.1:8000/get_reward"])


def test_openrlhf_5_references_are_found_when_the_policys_template_adds_a_system_turn(judge, policy_tokenizer):
    pytest.importorskip("openrlhf")
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    from rewardkit.serve.app import ServeSettings
    from rewardkit.types import Message

    server = Server(judge, ServeSettings(references={"What is 6*7?": "42"}))
    try:
        executor = SingleTurnAgentExecutor(remote_rm_url=f"http://127.0.0.1:{server.port}/get_reward")
        prompt, output = openrlhf_rollout(executor, policy_tokenizer, {"prompt": "What is 6*7?"}, "It is 42.")
    finally:
        server.close()
    assert "You are a careful helper." in prompt  # the policy's template did add its system turn
    assert output["reward"] is not None, "OpenRLHF got no reward: the reference lookup missed"
    question = (Message("system", "You are a careful helper."), Message("user", "What is 6*7?"))
    assert output["reward"] == pytest.approx(judge.reward([question], ["It is 42."], ["42"]), abs=1e-5)


def test_openrlhf_6_a_left_truncated_prompt_keeps_its_whole_question(judge, tokenizer, monkeypatch, tiny_model_dir):
    pytest.importorskip("openrlhf")
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    import rewardkit.integrations.openrlhf as ours
    from rewardkit.integrations import shared
    from rewardkit.types import Message

    monkeypatch.setattr(shared, "_shared", None)
    monkeypatch.delenv("REWARDKIT_URL", raising=False)
    monkeypatch.setenv("REWARDKIT_MODEL", str(tiny_model_dir))
    seen = []
    real = shared.ThreadMergingScorer.compare_to_references
    monkeypatch.setattr(shared.ThreadMergingScorer, "compare_to_references",
                        lambda self, q, r, refs: seen.append((q, r)) or real(self, q, r, refs))
    question = "Answer briefly. " + "The quick brown fox jumps over the lazy dog. " * 6 + "END OF QUESTION"
    executor = SingleTurnAgentExecutor(remote_rm_url=ours.__file__)  # OpenRLHF imports our reward_func file
    prompt, output = openrlhf_rollout(executor, tokenizer, {"prompt": question, "label": "yes"}, "sure yes",
                                      label_key="label", max_length=40, max_tokens=8)
    kept = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert kept > 32  # OpenRLHF did cut the prompt to its last 32 tokens before generating
    assert output["reward"] is not None
    (questions, responses), = seen
    assert questions == [(Message("user", question),)] and responses == ["sure yes"]


def test_openrlhf_12_the_monitor_logs_through_openrlhfs_extra_logs(judge, tokenizer, monkeypatch, tiny_model_dir):
    """REWARDKIT_MONITOR turns the monitor on in the Python-file reward; OpenRLHF's executor turns
    our extra_logs into its per-sample info tensors, the monitor's metrics among them."""
    pytest.importorskip("openrlhf")
    import torch
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    import rewardkit.integrations.openrlhf as ours
    from rewardkit.integrations import shared

    monkeypatch.setattr(shared, "_shared", None)
    monkeypatch.setattr(shared, "_monitor", None)
    monkeypatch.delenv("REWARDKIT_URL", raising=False)
    monkeypatch.setenv("REWARDKIT_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("REWARDKIT_MONITOR", "warn")
    monkeypatch.setenv("REWARDKIT_MONITOR_WINDOW", "8")
    executor = SingleTurnAgentExecutor(remote_rm_url=ours.__file__)
    outputs = [openrlhf_rollout(executor, tokenizer, {"prompt": f"What is {i}+{i}?", "label": str(2 * i)},
                                "It is " + "very " * i + str(2 * i), label_key="label")[1] for i in range(3)]
    monitor = shared.shared_monitor()
    assert monitor is not None and monitor.calls == 3 and monitor.window == 8
    last = outputs[-1]["extra_logs"]
    assert last["rewardkit/reward/mean"] == pytest.approx([sum(o["reward"][0] for o in outputs) / 3])
    assert set(outputs[0]["extra_logs"]) == set(last)  # the same keys on every sample
    info = {key: torch.tensor([value]) for key, value in last.items()}  # what OpenRLHF's generator does with them
    assert torch.isfinite(info["rewardkit/length_spearman"]).all()


# ---- verl 0.9.1 -------------------------------------------------------------------------------

def verl_overrides() -> list[list[str]]:
    """The Hydra overrides of every `verl.trainer.main_ppo` line in docs/serving.md."""
    import shlex

    doc = (TESTS.parent / "docs" / "serving.md").read_text().replace("\\\n", " ")
    lines = [line for line in doc.splitlines() if "verl.trainer.main_ppo" in line and "python" in line]
    words = [shlex.split(line) for line in lines]
    return [[w for w in ws[ws.index("verl.trainer.main_ppo") + 1:] if "=" in w] for ws in words]


def verl_manager(overrides: list[str], tokenizer):
    """verl's own reward manager, as its reward loop builds it: ppo_trainer.yaml composed by
    Hydra with the overrides, then `load_reward_manager` (which loads the custom function
    through `get_custom_reward_fn`)."""
    import importlib.util

    from hydra import compose, initialize_config_dir
    from verl.trainer.ppo.reward import load_reward_manager

    ours = str(TESTS.parent / "rewardkit" / "integrations" / "verl.py")
    root = Path(importlib.util.find_spec("verl").submodule_search_locations[0])
    with initialize_config_dir(config_dir=str(root / "trainer" / "config"), version_base=None):
        config = compose("ppo_trainer", overrides=[o.replace("/path/to/rewardkit/integrations/verl.py", ours)
                                                    for o in overrides])
    return load_reward_manager(config, tokenizer)


def verl_samples(tokenizer, rows: list[tuple[str, str, object]]):
    """One DataProto per (question, response, ground truth), shaped as verl's rollout makes them."""
    import numpy as np
    import torch
    from verl import DataProto

    samples = []
    for question, response, truth in rows:
        prompt_ids = tokenizer(question, add_special_tokens=False)["input_ids"]
        response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        samples.append(DataProto.from_dict(
            tensors={"prompts": torch.tensor([prompt_ids]), "responses": torch.tensor([response_ids]),
                     "attention_mask": torch.ones(1, len(prompt_ids) + len(response_ids), dtype=torch.long)},
            non_tensors={"data_source": np.array(["mine"], dtype=object),
                         "reward_model": np.array([{"ground_truth": truth}], dtype=object),
                         "extra_info": np.array([{"question": question}], dtype=object)}))
    return samples


def run_verl(manager, samples) -> list[float]:
    """Every sample's run_single at once, on the manager's event loop (as the reward loop does)."""
    import asyncio

    async def everyone():
        return await asyncio.gather(*(manager.run_single(s) for s in samples))

    return [r["reward_score"] for r in manager.loop.run_until_complete(everyone())]


@pytest.fixture
def verl_env(monkeypatch, tiny_model_dir):
    pytest.importorskip("verl")
    from rewardkit.integrations import shared
    from rewardkit.integrations import verl as ours

    monkeypatch.setattr(shared, "_shared", None)
    monkeypatch.setattr(ours, "_remote", None)
    monkeypatch.delenv("REWARDKIT_URL", raising=False)
    monkeypatch.setenv("REWARDKIT_MODEL", str(tiny_model_dir))
    return shared


def test_verl_7_reference_anchored_calls_from_the_reward_loop_are_merged(verl_env, tokenizer):
    (overrides, *_) = verl_overrides()
    manager = verl_manager(overrides, tokenizer)
    rows = [(f"question {i}?", "good answer" if i % 2 else "bad wrong", "correct and helpful") for i in range(16)]
    scores = run_verl(manager, verl_samples(tokenizer, rows))
    merged = verl_env.shared_scorer()
    forward = merged.scorer.engine.stats["forward_calls"]  # the judge's forward passes (2 rows per sample)
    assert forward < 8, f"{forward} forward passes for 16 samples: the reference-anchored calls were not merged"
    alone = merged.scorer  # the REWARDKIT_MODEL judge itself, in the precision this machine picks
    expected = alone.reward([q for q, _, _ in rows], [r for _, r, _ in rows], [t for _, _, t in rows])
    assert scores == pytest.approx(expected, abs=1e-6)


def test_verl_8_a_bradley_terry_server_scores_samples_without_ground_truth(verl_env, monkeypatch, tokenizer,
                                                                          tmp_path, tiny_model_dir):
    from rewardkit import LoopConfig, train_method
    from rewardkit.serve.app import ServeSettings

    data = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad wrong"} for i in range(8)]
    train_method("bradley_terry", LoopConfig(model=str(tiny_model_dir), data=data, output=str(tmp_path / "bt"),
                                             max_steps=2, max_length=512, batch_size=4, mixed_precision="no"))
    bt = load_reward_model(str(tmp_path / "bt"), dtype="fp32")
    server = Server(bt, ServeSettings())
    try:
        monkeypatch.setenv("REWARDKIT_URL", f"http://127.0.0.1:{server.port}")
        (overrides, *_) = verl_overrides()
        rows = [("question 1?", "good answer", ""), ("question 2?", "bad wrong", None)]
        scores = run_verl(verl_manager(overrides, tokenizer), verl_samples(tokenizer, rows))
    finally:
        server.close()
    assert scores == pytest.approx(bt.reward(["question 1?", "question 2?"], ["good answer", "bad wrong"]), abs=1e-5)


def test_verl_9_only_the_documented_routes_reach_rewardkit(verl_env, tokenizer):
    from rewardkit.integrations import verl as ours

    routes = verl_overrides()
    assert len(routes) >= 2
    for overrides in routes:  # every documented route loads our function into verl's own reward manager
        manager = verl_manager(overrides, tokenizer)
        loaded = manager.compute_score.args[0]  # verl wraps the loaded function in a partial
        assert loaded.__code__.co_filename == ours.__file__
        (score,) = run_verl(manager, verl_samples(tokenizer, [("2+2?", "4", "5")]))
        assert score == pytest.approx(verl_env.shared_scorer().scorer.reward(["2+2?"], ["4"], ["5"])[0], abs=1e-6)
    # what the old docs said does not reach rewardkit in 0.9.1: the top-level route falls back to
    # verl's own rules (its default scorer), and the batch manager is unknown
    legacy = verl_manager([f"+custom_reward_function.path={ours.__file__}", "+custom_reward_function.name=compute_score"],
                          tokenizer)
    assert getattr(legacy.compute_score, "__module__", "").startswith("verl.")  # verl's own rules, not ours
    with pytest.raises(ValueError, match="Unknown reward manager: batch"):
        verl_manager(["reward.reward_manager.name=batch"], tokenizer)


def test_verl_10_the_monitor_reports_through_verls_reward_extras(verl_env, monkeypatch, tokenizer):
    monkeypatch.setattr(verl_env, "_monitor", None)
    monkeypatch.setenv("REWARDKIT_MONITOR", "warn")
    (overrides, *_) = verl_overrides()
    manager = verl_manager(overrides, tokenizer)
    rows = [(f"question {i}?", "good answer " * (i + 1), "correct and helpful") for i in range(8)]
    import asyncio

    async def everyone():
        return await asyncio.gather(*(manager.run_single(s) for s in verl_samples(tokenizer, rows)))

    results = manager.loop.run_until_complete(everyone())
    expected = verl_env.shared_scorer().scorer.reward([q for q, _, _ in rows], [r for _, r, _ in rows],
                                                     [t for _, _, t in rows])
    assert [r["reward_score"] for r in results] == pytest.approx(expected, abs=1e-6)  # the monitor changed nothing
    keys = {frozenset(r["reward_extra_info"]) for r in results}
    assert len(keys) == 1 and "rewardkit/order_disagreement" in next(iter(keys))  # same keys on every sample
    assert verl_env.shared_monitor().calls == 8


# ---- RewardBench 0.1.4 (transformers 4.51) and our oldest transformers (4.46) ----------------

OLD_TRANSFORMERS = TESTS.parent / ".venv" / "old-transformers"  # scripts/setup.sh installs them there


def in_old_transformers(version: str, directory: Path, rows: list) -> dict:
    target = OLD_TRANSFORMERS / version
    if not target.is_dir():
        pytest.skip(f"transformers {version} is not installed in {target} (scripts/setup.sh installs it)")
    result = subprocess.run([sys.executable, str(TESTS / "old_transformers_worker.py"), str(directory), json.dumps(rows)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(target), "TRANSFORMERS_VERBOSITY": "error"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def smollm_shaped_dir(tmp_path_factory) -> Path:
    """A tiny model with SmolLM2's rotary base (θ = 100,000; the transformers 4.x default is 10,000)."""
    import torch
    from tiny import build_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                         rope_parameters={"rope_type": "default", "rope_theta": 100000.0})
    directory = tmp_path_factory.mktemp("smollm-shaped")
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.mark.parametrize("version", ["4.51.0", "4.46.3"])
def test_rewardbench_10_11_a_bradley_terry_directory_loads_and_scores_the_same_in_older_transformers(
        tmp_path_factory, smollm_shaped_dir, version):
    from rewardkit import LoopConfig, train_method

    bt = tmp_path_factory.mktemp("bt")
    data = [{"prompt": f"q{i}", "chosen": "good answer " * 20, "rejected": "bad wrong " * 20} for i in range(8)]
    train_method("bradley_terry", LoopConfig(model=str(smollm_shaped_dir), data=data, output=str(bt), max_steps=2,
                                             lr=1e-2, max_length=512, batch_size=4, mixed_precision="no"))
    rows = [["q1", "good answer " * 30], ["q2 " * 10, "bad wrong " * 40], ["q3", "sorry cannot"]]  # long: θ shows
    old = in_old_transformers(version, bt, rows)
    assert old["transformers"] == version and old["rope_theta"] == 100000.0
    ours = load_reward_model(str(bt), dtype="fp32").score([r[0] for r in rows], [r[1] for r in rows])
    assert old["scores"] == pytest.approx(ours, abs=1e-4)
    if version == "4.51.0":  # RewardBench's own pipeline, in the environment it pins
        assert "rewardbench_scores" in old, "RewardBench 0.1.4 is not installed beside transformers 4.51"
        assert old["rewardbench_scores"] == pytest.approx(ours, abs=1e-4)


@pytest.mark.parametrize("version", ["4.51.0", "4.46.3"])
def test_rewardbench_10_11_an_exported_judge_loads_and_scores_the_same_in_older_transformers(
        tmp_path, smollm_shaped_dir, version):
    from typer.testing import CliRunner

    from rewardkit.cli.main import app

    assert CliRunner().invoke(app, ["export", str(smollm_shaped_dir), str(tmp_path / "cls"), "--to", "seq-cls"]).exit_code == 0
    judge = load_reward_model(str(smollm_shaped_dir), dtype="fp32")
    pairs = [("2+2? " * 20, "4, because two and two make four. " * 5, "5 or so")]
    ids = [judge.encoder.encode(*pair).input_ids for pair in pairs]
    old = in_old_transformers(version, tmp_path / "cls", ids)
    assert old["transformers"] == version and old["rope_theta"] == 100000.0
    assert old["scores"] == pytest.approx([judge.compare_details(*map(list, zip(*pairs)))[0].p_ab], abs=1e-5)


# ---- one rule for blank references, and centred round_robin scores ---------------------------

def test_blank_references_mean_no_reference_for_every_client(judge, tmp_path, tiny_model_dir):
    from rewardkit import LoopConfig, train_method

    with pytest.warns(UserWarning, match="no reference answer"):
        rewards = JudgeRewardFunction(judge)(["q"] * 3, ["a", "b", "c"], reference=["ok", "  ", None])
    assert rewards[0] is not None and rewards[1:] == [None, None]  # a judge: no reward, TRL makes it NaN
    data = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad wrong"} for i in range(8)]
    train_method("bradley_terry", LoopConfig(model=str(tiny_model_dir), data=data, output=str(tmp_path / "bt"),
                                             max_steps=1, max_length=512, batch_size=4, mixed_precision="no"))
    bt = load_reward_model(str(tmp_path / "bt"), dtype="fp32")
    assert JudgeRewardFunction(bt)(["q"] * 2, ["a", "b"], reference=["", None]) == pytest.approx(
        bt.reward(["q"] * 2, ["a", "b"]), abs=1e-6)  # a pointwise model needs none
    centred = JudgeRewardFunction(bt, mode="round_robin")(["q"] * 3, ["good answer", "bad wrong", "sure"])
    raw = bt.score(["q"] * 3, ["good answer", "bad wrong", "sure"])
    assert sum(centred) == pytest.approx(0, abs=1e-9)  # centred within the group, like the judge's
    assert centred == pytest.approx([r - sum(raw) / 3 for r in raw], abs=1e-6)
