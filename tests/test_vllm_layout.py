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
