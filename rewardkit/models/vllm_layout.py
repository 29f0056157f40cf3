"""What vLLM needs to serve a saved reward model, checked against a directory.

From vLLM 0.33's source (`model_executor/models/adapters.py`, `layers/pooler/`,
`config/pooler.py`, `entrypoints/pooling/classify/`): an architecture named
`<Base>ForSequenceClassification` whose `<Base>ForCausalLM` vLLM implements is converted by
`as_seq_cls_model` — the causal model's body plus a `score` linear layer of
`config.num_labels` outputs, loaded from the checkpoint's `score.weight` (and `score.bias` if
present); the pooled state is the **last** token's (the default sequence pooling); the output
goes through an activation chosen from `config.problem_type`: `"regression"` → none (the raw
score), `"single_label_classification"` or unset → sigmoid for one label. `POST /classify`
returns it as `probs`.

So a Bradley–Terry directory must say `problem_type: "regression"` for vLLM to return r itself,
and a judge exported with `--to seq-cls` returns σ(logit) = P(response_a better) in one order.
Nothing here imports vLLM (it needs a GPU); `tests/test_vllm_layout.py` holds our directories
to these rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from safetensors import safe_open

SUFFIX = "ForSequenceClassification"


@dataclass
class VllmLayout:
    architecture: str | None
    activation: str  # "none" (the raw score) or "sigmoid"
    problems: list[str] = field(default_factory=list)


def read_vllm_layout(directory: str | Path) -> VllmLayout:
    """How vLLM would load `directory` as a classifier, and what stops it."""
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    architectures = config.get("architectures") or [None]
    architecture, problems = architectures[0], []
    if not (isinstance(architecture, str) and architecture.endswith(SUFFIX)):
        problems.append(f"config.json architectures is {architectures}; vLLM converts `<Base>{SUFFIX}`")
    labels = config.get("num_labels", len(config.get("id2label") or {}) or None)
    if labels != 1:
        problems.append(f"config.json num_labels is {labels}; a reward model has one output")
    activation = "none" if config.get("problem_type") == "regression" else "sigmoid"
    if config.get("problem_type") not in (None, "regression", "single_label_classification"):
        problems.append(f"config.json problem_type {config['problem_type']!r} gives vLLM a multi-label activation")
    shapes = _tensor_shapes(directory)
    hidden = config.get("hidden_size")
    if "score.weight" not in shapes:
        problems.append("no score.weight in the safetensors: vLLM's converted model loads its head from it")
    elif hidden is not None and shapes["score.weight"] != [1, hidden]:
        problems.append(f"score.weight has shape {shapes['score.weight']}, expected [1, {hidden}]")
    if config.get("pad_token_id") is None:
        problems.append("config.json has no pad_token_id")
    return VllmLayout(architecture, activation, problems)


def _tensor_shapes(directory: Path) -> dict[str, list[int]]:
    shapes = {}
    for file in sorted(directory.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                shapes[name] = list(handle.get_slice(name).get_shape())
    return shapes
