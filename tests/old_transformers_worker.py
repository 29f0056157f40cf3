"""Run under an older transformers (PYTHONPATH puts it first): load a saved directory the way
plain loaders do — AutoTokenizer, AutoModelForSequenceClassification, the chat template — and
print JSON: the transformers version, the tokenizer class, rope theta as read, and one score per
row. argv = directory, rows as JSON ([[prompt, response], ...] for a BT model; token id lists
for an exported judge). Where RewardBench 0.1.4 is installed beside transformers, a BT model's
rows also go through its own `RewardBenchPipeline` (loaded from its file: the package's
__init__ pulls in its CLI's dependencies), with only its hard-coded `.to("cuda")` sent to the CPU."""

from __future__ import annotations

import json
import sys

import torch
import transformers
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer


def main() -> None:
    directory, rows = sys.argv[1], json.loads(sys.argv[2])
    tokenizer = AutoTokenizer.from_pretrained(directory)
    config = AutoConfig.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory, torch_dtype=torch.float32).eval()
    scores = []
    with torch.no_grad():
        for row in rows:
            if isinstance(row[0], str):  # [prompt, response]: the chat template, as RewardBench and TRL do
                text = tokenizer.apply_chat_template([{"role": "user", "content": row[0]},
                                                      {"role": "assistant", "content": row[1]}], tokenize=False)
                ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
            else:
                ids = torch.tensor([row])
            logit = model(input_ids=ids).logits[0, 0].item()
            scores.append(logit if getattr(config, "problem_type", None) == "regression" else 1 / (1 + 2.718281828459045 ** -logit))
    report = {"transformers": transformers.__version__, "tokenizer": type(tokenizer).__name__,
              "rope_theta": getattr(config, "rope_theta", None), "scores": scores}
    pipeline = _rewardbench_pipeline()
    if pipeline is not None and rows and isinstance(rows[0][0], str):
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                                               tokenize=False) for p, r in rows]  # as its prepare_dialogue_from_tokenizer
        scorer = pipeline("text-classification", model, tokenizer)
        report["rewardbench_scores"] = [scorer([text])[0, 0].item() for text in texts]
    print(json.dumps(report))


def _rewardbench_pipeline():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("rewardbench")
    if spec is None:
        return None
    from transformers import BatchEncoding

    to = BatchEncoding.to
    BatchEncoding.to = lambda self, device, **k: to(self, "cpu" if device == "cuda" else device, **k)  # no GPU here
    file = Path(spec.submodule_search_locations[0]) / "models" / "pipeline.py"
    module_spec = importlib.util.spec_from_file_location("rewardbench_pipeline", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.RewardBenchPipeline


if __name__ == "__main__":
    main()
