"""Saved models are vLLM-ready: the layout vLLM 0.33 loads a classifier from (see
rewardkit/models/vllm_layout.py for the rules, read from its source), and — computed the way
vLLM computes it, from the files alone: the causal body's last-token state, the `score` row,
the activation `problem_type` selects — the number our scorer gives. vLLM itself needs a GPU
and is not run here."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from rewardkit import LoopConfig, load_reward_model, train_method
from rewardkit.cli.main import app
from rewardkit.errors import ConfigError
from rewardkit.models.vllm_layout import read_vllm_layout


def vllm_style_output(directory, input_ids: list[int]) -> float:
    """What vLLM's converted `<Base>ForSequenceClassification` returns for one sequence."""
    from transformers import AutoConfig, AutoModel

    config = json.loads((directory / "config.json").read_text())
    body = AutoModel.from_pretrained(directory, config=AutoConfig.from_pretrained(directory), dtype=torch.float32).eval()
    weights = {k: v for f in sorted(directory.glob("*.safetensors")) for k, v in load_file(f).items()}
    with torch.no_grad():
        last = body(input_ids=torch.tensor([input_ids])).last_hidden_state[0, -1]  # LAST pooling
        logit = (weights["score.weight"].float() @ last).item() + (weights["score.bias"].item() if "score.bias" in weights else 0.0)
    return logit if config.get("problem_type") == "regression" else 1 / (1 + math.exp(-logit))


def test_a_bradley_terry_directory_serves_its_raw_reward_in_vllm(tmp_path, tiny_model_dir):
    data = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad wrong"} for i in range(8)]
    train_method("bradley_terry", LoopConfig(model=str(tiny_model_dir), data=data, output=str(tmp_path / "bt"),
                                             max_steps=3, lr=1e-2, max_length=512, batch_size=4, mixed_precision="no"))
    layout = read_vllm_layout(tmp_path / "bt")
    assert layout.problems == [] and layout.architecture == "LlamaForSequenceClassification"
    assert layout.activation == "none"  # problem_type "regression": vLLM returns r, not σ(r)
    scorer = load_reward_model(str(tmp_path / "bt"), dtype="fp32")
    for prompt, response in [("q1", "good answer"), ("q2", "bad wrong")]:
        ids = scorer.encoder.encode(prompt, response).input_ids
        assert vllm_style_output(tmp_path / "bt", ids) == pytest.approx(scorer.score([prompt], [response])[0], abs=1e-4)


def test_an_exported_judge_serves_p_first_better_in_vllm(tmp_path, tiny_model_dir):
    assert CliRunner().invoke(app, ["export", str(tiny_model_dir), str(tmp_path / "cls"), "--to", "seq-cls"]).exit_code == 0
    layout = read_vllm_layout(tmp_path / "cls")
    assert layout.problems == [] and layout.activation == "sigmoid"
    judge = load_reward_model(str(tiny_model_dir), dtype="fp32")
    (detail,) = judge.compare_details(["2+2?"], ["4"], ["5 or so"])
    ids = judge.encoder.encode("2+2?", "4", "5 or so").input_ids
    assert vllm_style_output(tmp_path / "cls", ids) == pytest.approx(detail.p_ab, abs=1e-5)


def test_the_rules_name_what_a_directory_lacks(tmp_path, tiny_model_dir):
    layout = read_vllm_layout(tiny_model_dir)  # a causal LM, not a classifier
    assert any("architectures" in p for p in layout.problems) and any("score.weight" in p for p in layout.problems)


# ---- --backend vllm ---------------------------------------------------------------------------

class FilesClassifier:
    """A stand-in for vLLM 0.33's `LLM(model=DIR, runner="pooling")` on this GPU-less machine:
    `classify(prompts)` takes TokensPrompt dicts and returns, per prompt, an object whose
    `.outputs.probs` is what vLLM computes from the directory's files (vllm_style_output)."""

    def __init__(self, directory, dtype):
        from pathlib import Path
        from types import SimpleNamespace

        self.directory, self.dtype, self.calls, self._ns = Path(directory), dtype, 0, SimpleNamespace

    def classify(self, prompts, use_tqdm=True):
        self.calls += 1
        return [self._ns(outputs=self._ns(probs=[vllm_style_output(self.directory, p["prompt_token_ids"])]))
                for p in prompts]


@pytest.fixture
def stand_in_vllm(monkeypatch, tmp_path):
    from rewardkit.methods import vllm_backend

    opened = []
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(vllm_backend, "check_vllm_available", lambda: None)
    monkeypatch.setattr(vllm_backend, "open_vllm", lambda d, dtype: opened.append(FilesClassifier(d, dtype)) or opened[-1])
    return opened


def test_the_vllm_backend_gives_a_bradley_terry_model_its_eager_scores(tmp_path, tiny_model_dir, stand_in_vllm):
    data = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad wrong"} for i in range(8)]
    train_method("bradley_terry", LoopConfig(model=str(tiny_model_dir), data=data, output=str(tmp_path / "bt"),
                                             max_steps=3, lr=1e-2, max_length=512, batch_size=4, mixed_precision="no"))
    eager = load_reward_model(str(tmp_path / "bt"), dtype="fp32")
    served = load_reward_model(str(tmp_path / "bt"), dtype="fp32", backend="vllm")
    assert served.backend == "vllm" and stand_in_vllm[0].directory == tmp_path / "bt"  # served as it is
    prompts, responses = ["q1", "q2", "q3"], ["good answer", "bad wrong", "good answer but longer"]
    assert served.score(prompts, responses) == pytest.approx(eager.score(prompts, responses), abs=1e-4)
    assert served.compare(prompts, responses, responses[::-1]) == pytest.approx(
        eager.compare(prompts, responses, responses[::-1]), abs=1e-4)


def test_the_vllm_backend_exports_a_judge_once_and_gives_its_eager_verdicts(tmp_path, tiny_model_dir, stand_in_vllm):
    eager = load_reward_model(str(tiny_model_dir), dtype="fp32")
    served = load_reward_model(str(tiny_model_dir), dtype="fp32", backend="vllm")
    exported = stand_in_vllm[0].directory
    assert exported.parent == tmp_path / "cache" / "vllm" and read_vllm_layout(exported).problems == []
    args = (["2+2?", "capital of France?"], ["4", "Paris"], ["5 or so", "Lyon, surely"])
    for mine, theirs in zip(served.compare_details(*args), eager.compare_details(*args)):
        assert (mine.p_ab, mine.p_ba, mine.probability) == pytest.approx((theirs.p_ab, theirs.p_ba, theirs.probability),
                                                                         abs=1e-5)
    assert served.reward(["2+2?"], ["4"], ["5"]) == pytest.approx(eager.reward(["2+2?"], ["4"], ["5"]), abs=1e-4)
    made = exported.stat().st_mtime_ns
    load_reward_model(str(tiny_model_dir), dtype="fp32", backend="vllm")
    assert stand_in_vllm[1].directory == exported and exported.stat().st_mtime_ns == made  # exported once
    with pytest.raises(ConfigError, match="pair embeddings"):
        served.pair_states(*args)


def test_the_vllm_backend_says_what_is_missing_before_loading_a_model(monkeypatch, tiny_model_dir):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    with pytest.raises(ConfigError, match=r"vLLM is not installed; pip install .rewardkit\[vllm\]."):
        load_reward_model("no/such-model", backend="vllm")  # refused before the (missing) model is looked up
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real(name, *a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="vLLM needs a GPU and this machine has none"):
        load_reward_model(str(tiny_model_dir), backend="vllm")


def test_score_with_the_vllm_backend_on_this_machine_is_a_clear_error(tmp_path, tiny_model_dir):
    if torch.cuda.is_available():
        pytest.skip("a GPU machine: --backend vllm may run here")
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    result = CliRunner().invoke(app, ["score", "--model", str(tiny_model_dir), "--data", str(data), "--output",
                                      str(tmp_path / "out.jsonl"), "--backend", "vllm"])
    assert result.exit_code != 0 and "--backend vllm" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.jsonl").exists()
