"""Run under an older transformers (PYTHONPATH puts it first): load a saved directory the way
plain loaders do — AutoTokenizer, AutoModelForSequenceClassification, the chat template — and
print JSON: the transformers version, the tokenizer class, rope theta as read, and one score per
row. argv = directory, rows as JSON ([[prompt, response], ...] for a BT model; token id lists
for an exported judge)."""

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
    print(json.dumps({"transformers": transformers.__version__, "tokenizer": type(tokenizer).__name__,
                      "rope_theta": getattr(config, "rope_theta", None), "scores": scores}))


if __name__ == "__main__":
    main()
