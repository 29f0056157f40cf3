"""Inference backends (models/backends.py): each must reproduce eager fp32 within the stated
tolerance (verdicts agree, P(A) within 0.02) — skipped where its package is not installed."""

from __future__ import annotations

import importlib.util

import pytest

from rewardkit import load_reward_model
from rewardkit.errors import ConfigError
from rewardkit.models.backends import BACKENDS, choose_backend

NEEDS = {"onnx": ("onnx", "onnxscript", "onnxruntime"), "openvino": ("onnx", "onnxscript", "openvino"),
         "openvino-int8": ("onnx", "onnxscript", "openvino", "nncf"), "int8": ("torchao",)}
PROMPTS = ["how do I cook rice?", "which answer is better?", "say something helpful"] * 2
A = ["rinse, boil, simmer.", "Answer A is better.", "sure, good helpful answer", "yes", "no sorry", "the quick fox"]
B = ["no", "bad harmful wrong", "cannot", "good helpful correct yes sure", "the lazy dog", "Answer B is better."]


@pytest.mark.parametrize("backend", sorted(NEEDS))
def test_backend_matches_eager_fp32(backend, tiny_model_dir, tmp_path, monkeypatch):
    for module in NEEDS[backend]:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install 'rewardkit[cpu]')")
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path))
    eager = load_reward_model(str(tiny_model_dir), dtype="fp32").compare(PROMPTS, A, B)
    other = load_reward_model(str(tiny_model_dir), dtype="fp32", backend=backend)
    assert other.backend == backend and other.engine.use_prefix_cache is False
    probs = other.compare(PROMPTS, A, B)
    tolerance = 0.02 if backend in ("onnx", "openvino") else 0.05  # int8: see the benchmark's figures
    assert probs == pytest.approx(eager, abs=tolerance)
    if backend in ("onnx", "openvino"):
        assert probs == pytest.approx(eager, abs=1e-4)  # the same fp32 graph
    # batching must not change a row: one pair alone scores as it did in the batch
    assert other.compare(PROMPTS[:1], A[:1], B[:1])[0] == pytest.approx(probs[0], abs=1e-5)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ConfigError, match="--backend must be auto or one of"):
        choose_backend("tensorrt")
    assert choose_backend("auto") == "eager" and "onnx" in BACKENDS  # measured: nothing beat eager (README)
