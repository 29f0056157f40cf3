"""Train = serve parity: the same rows scored through every path a user has, side by side.

The reference is `load_reward_model(MODEL)` at batch size 8 — what `eval`, the adapters and the
server build on. Against it, per path: the largest |Δ| in P(chosen better), Kendall's τ of the
two orderings of the rows, and the change in accuracy. Paths:

  training forward       the method's own in-training evaluation (training/loop.py
                         `evaluate_each`), for methods trained by the loop (judge, Bradley–Terry)
  reload, batch 1 / 32   load_reward_model at other batch sizes
  server                 POST /compare on the HTTP app (in-process)
  transformers, right / left padding
                         the plain `AutoModelForSequenceClassification` load, batch 8, as TRL,
                         OpenRLHF and RewardBench run it (a judge through `export --to seq-cls`)
  backend NAME           each installed exact CPU backend (onnx, openvino; others on request)
  vllm                   where vLLM and a GPU are present

A path that does not apply to a model (a custom head has no plain-transformers form) is listed
with the reason, never silently dropped.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rewardkit.data import load_pairs
from rewardkit.errors import ConfigError, RewardKitError

TOLERANCE = 1e-4
EXACT_BACKENDS = ("onnx", "openvino")  # the fp32 ones; int8 and compile are run only when named


@dataclass
class PathResult:
    name: str
    scores: list[float] | None = None
    skipped: str | None = None  # why the path does not apply
    stats: dict = field(default_factory=dict)


def _accuracy(p: list[float]) -> float:
    from rewardkit.eval.metrics import accuracy

    return accuracy(p)


def compare_with(reference: list[float], scores: list[float]) -> dict:
    from rewardkit.statistics import kendall_tau

    deltas = [abs(a - b) for a, b in zip(reference, scores)]
    return {"max_abs_delta": max(deltas), "mean_abs_delta": sum(deltas) / len(deltas),
            "kendall_tau": kendall_tau(reference, scores),
            "accuracy": _accuracy(scores), "accuracy_change": _accuracy(scores) - _accuracy(reference)}


def _batched(scorer, pairs, size: int) -> list[float]:
    out = []
    for start in range(0, len(pairs), size):
        part = pairs[start:start + size]
        out += scorer.compare([p.prompt for p in part], [p.chosen for p in part], [p.rejected for p in part])
    return [float(x) for x in out]


def _training_forward(model: str, manifest, pairs) -> list[float]:
    from rewardkit.methods import method_for_kind
    from rewardkit.training.loop import evaluate_each
    from rewardkit.training.loop_config import LoopConfig

    method = method_for_kind(manifest.kind)
    if manifest.kind == "pretrained_generator":
        raise _NotApplicable("GRAM stage 1 learns to write answers, not to score them: its training-time evaluation "
                             "is a generation loss, with no per-pair score to compare")
    if manifest.kind not in ("generative_judge", "bradley_terry"):
        raise _NotApplicable(f"a {manifest.kind} model is fitted outside the training loop; its training-time scores "
                             "are its saved heads' (tests/test_precision.py holds them to the reload)")
    if Path(model, "adapter_config.json").is_file():
        raise _NotApplicable("an unmerged LoRA adapter: the training loop starts from its base model")
    precision = manifest.precision or {"weights": "fp32", "autocast": None}
    with tempfile.TemporaryDirectory() as scratch:
        template = None
        if manifest.template:
            template = Path(scratch, "template.json")
            template.write_text(json.dumps(manifest.template))
        loop = LoopConfig(model=model, data=[], output=str(Path(scratch, "out")), max_length=manifest.max_length or 2048,
                          template=str(template) if template else None, dtype=precision.get("weights") or "fp32",
                          mixed_precision="bf16" if precision.get("autocast") == "bf16" else "no", seed=0)
        results = evaluate_each(method, loop, method.Config(), pairs)
    if manifest.kind == "generative_judge":
        return [r["eval_mean_p_chosen"] for r in results]
    return [1.0 / (1.0 + math.exp(-r["eval_mean_margin"])) for r in results]


def _server(scorer, pairs) -> list[float]:
    try:
        from fastapi.testclient import TestClient
    except ImportError:
        raise _NotApplicable("the serve extra is not installed: pip install 'rewardkit[serve]'") from None
    from rewardkit.serve.app import ServeSettings, create_app
    from rewardkit.types import prompt_to_json

    client = TestClient(create_app(scorer, ServeSettings(max_items=max(512, len(pairs)))))
    body = {"prompts": [prompt_to_json(p.prompt) for p in pairs], "responses_a": [p.chosen for p in pairs],
            "responses_b": [p.rejected for p in pairs]}
    response = client.post("/compare", json=body)
    if response.status_code != 200:
        raise RewardKitError(f"server: HTTP {response.status_code}: {response.text[:300]}")
    return [float(x) for x in response.json()["probabilities"]]


def _transformers(model: str, manifest, scorer, pairs, side: str) -> list[float]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    kind = manifest.kind if manifest else "generative_judge"
    with tempfile.TemporaryDirectory() as scratch:
        directory = model
        if kind in ("generative_judge", "pretrained_generator"):
            from rewardkit.methods.judge.export import export_sequence_classifier

            directory = str(export_sequence_classifier(scorer, Path(scratch, "seq-cls")))
        elif kind != "bradley_terry" or Path(model, "adapter_config.json").is_file():
            raise _NotApplicable(f"a {kind} model has no plain sequence-classifier form")
        classifier = AutoModelForSequenceClassification.from_pretrained(directory, dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained(directory)
        tokenizer.padding_side = side
        config = classifier.config

        def logits(texts: list[str]) -> list[float]:
            out = []
            for start in range(0, len(texts), 8):
                batch = tokenizer(texts[start:start + 8], return_tensors="pt", padding=True, add_special_tokens=False)
                with torch.inference_mode():
                    out += classifier(**batch).logits[:, 0].float().tolist()
            return out

        if kind == "bradley_terry":  # the text TRL, OpenRLHF and RewardBench build: the chat template
            def text(prompt, answer):
                from rewardkit.types import prompt_to_json

                turns = prompt_to_json(prompt)
                turns = [{"role": "user", "content": turns}] if isinstance(turns, str) else list(turns)
                return tokenizer.apply_chat_template(turns + [{"role": "assistant", "content": answer}], tokenize=False)

            chosen = logits([text(p.prompt, p.chosen) for p in pairs])
            rejected = logits([text(p.prompt, p.rejected) for p in pairs])
            return [1.0 / (1.0 + math.exp(-(c - r))) for c, r in zip(chosen, rejected)]
        judge = config.rewardkit_judge  # the prompt the export carries, as a vLLM user fills it

        def filled(pair, first, second):
            from rewardkit.types import prompt_to_text

            return judge["prompt"].format(prompt=prompt_to_text(pair.prompt), response_a=first, response_b=second)

        ab = logits([filled(p, p.chosen, p.rejected) for p in pairs])
        ba = logits([filled(p, p.rejected, p.chosen) for p in pairs])
        sigmoid = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
        return [(sigmoid(x) + 1.0 - sigmoid(y)) / 2 for x, y in zip(ab, ba)]


def _backend(model: str, pairs, backend: str) -> list[float]:
    from rewardkit.methods.load import load_reward_model

    try:
        return _batched(load_reward_model(model, backend=backend, dtype="fp32"), pairs, 8)
    except ConfigError as exc:
        raise _NotApplicable(str(exc)) from None


def _vllm(model: str, pairs) -> list[float]:
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is None or not torch.cuda.is_available():
        raise _NotApplicable("vLLM and a GPU are not both present")
    from rewardkit.methods.load import load_reward_model

    return _batched(load_reward_model(model, backend="vllm"), pairs, 8)


class _NotApplicable(Exception):
    pass


def run_parity(model: str, data, *, backends: tuple[str, ...] | None = None, tolerance: float = TOLERANCE,
               progress: Callable[[str], None] | None = None) -> dict:
    """Every path's scores of the rows of `data` against the reference; `passed` when every
    path that applies stays within `tolerance` of it."""
    from rewardkit.methods.load import load_reward_model
    from rewardkit.models.manifest import read_manifest

    pairs = load_pairs(data).records
    if not pairs:
        raise ConfigError(f"--data {data}: no pairs to score")
    manifest = read_manifest(model) if Path(model).is_dir() else None
    scorer = load_reward_model(model)
    reference = _batched(scorer, pairs, 8)
    installed = [b for b in EXACT_BACKENDS if _installed(b)] if backends is None else list(backends)
    paths: list[tuple[str, Callable[[], list[float]]]] = [
        ("training forward", lambda: _training_forward(model, manifest, pairs) if manifest else _no_manifest()),
        ("reload, batch 1", lambda: _batched(scorer, pairs, 1)),
        ("reload, batch 32", lambda: _batched(scorer, pairs, 32)),
        ("server", lambda: _server(scorer, pairs)),
        ("transformers, right padding", lambda: _transformers(model, manifest, scorer, pairs, "right")),
        ("transformers, left padding", lambda: _transformers(model, manifest, scorer, pairs, "left")),
        *[(f"backend {b}", lambda b=b: _backend(model, pairs, b)) for b in installed],
        ("vllm", lambda: _vllm(model, pairs)),
    ]
    results = []
    for name, run in paths:
        if progress:
            progress(name)
        try:
            scores = run()
        except _NotApplicable as exc:
            results.append(PathResult(name, skipped=str(exc)))
            continue
        results.append(PathResult(name, scores, stats=compare_with(reference, scores)))
    for result in results:
        if result.scores is not None:
            result.stats["passed"] = result.stats["max_abs_delta"] <= tolerance
    return {"model": str(model), "data": str(data), "rows": len(pairs), "tolerance": tolerance,
            "reference": "load_reward_model, batch 8", "reference_accuracy": _accuracy(reference),
            "precision": getattr(scorer, "precision", None) and scorer.precision.describe(),
            "paths": {r.name: ({"skipped": r.skipped} if r.skipped else r.stats) for r in results},
            "passed": all(r.stats.get("passed", True) for r in results)}


def _no_manifest():
    raise _NotApplicable("not a rewardkit-trained directory (no rewardkit.json): no training run to compare with")


def _installed(backend: str) -> bool:
    import importlib.util

    module = {"onnx": "onnxruntime", "openvino": "openvino"}.get(backend)
    return module is None or importlib.util.find_spec(module) is not None
