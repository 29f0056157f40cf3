"""Best-of-n with a local policy, and preference labelling of candidate sets (for DPO)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from rewardkit.data.readers import iter_objects
from rewardkit.data.tokenize import encode_chat
from rewardkit.errors import DataError
from rewardkit.types import Message, PreferencePair, Prompt, prompt_to_json


@dataclass
class CandidateSet:
    prompt: Prompt
    responses: list[str]
    line: int


def read_prompts(path: str | Path) -> list[Prompt]:
    """JSONL rows with 'prompt' (text or messages), or a .txt file with one prompt per line."""
    path = Path(path)
    if path.suffix == ".txt":
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = []
    for number, row in iter_objects(path):
        value = row.get("prompt")
        if isinstance(value, list):
            prompts.append(tuple(Message(m.get("role", "user"), m.get("content", "")) for m in value))
        elif isinstance(value, str) and value.strip():
            prompts.append(value)
        else:
            raise DataError(str(path), number, "prompt", "must be non-empty text or a message list")
    return prompts


def read_candidates(path: str | Path) -> list[CandidateSet]:
    """JSONL rows {prompt, responses: [...]} (also 'candidates' or 'completions')."""
    sets = []
    for number, row in iter_objects(path):
        key = next((k for k in ("responses", "candidates", "completions") if k in row), None)
        if key is None:
            raise DataError(str(path), number, "responses", "is missing (a list of candidate responses)")
        responses = row[key]
        if not isinstance(responses, list) or len(responses) < 2 or not all(isinstance(r, str) and r.strip() for r in responses):
            raise DataError(str(path), number, key, "must be a list of at least 2 non-empty strings")
        prompt = row.get("prompt")
        if not isinstance(prompt, (str, list)) or not prompt:
            raise DataError(str(path), number, "prompt", "must be non-empty text or a message list")
        if isinstance(prompt, list):
            prompt = tuple(Message(m.get("role", "user"), m.get("content", "")) for m in prompt)
        sets.append(CandidateSet(prompt, responses, number))
    return sets


@torch.inference_mode()
def sample_responses(policy, tokenizer, prompt: Prompt, n: int, *, max_new_tokens: int = 128,
                     temperature: float = 0.8, top_p: float = 0.95, seed: int = 0) -> list[str]:
    """n sampled completions of one prompt from a causal LM, through its own chat template."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else \
        [{"role": m.role, "content": m.content} for m in prompt]
    if getattr(tokenizer, "chat_template", None):  # the user's text stays text: see encode_chat
        tokens = encode_chat(tokenizer, messages, add_generation_prompt=True)
    else:
        tokens = tokenizer(messages[-1]["content"], split_special_tokens=True)["input_ids"]  # with its BOS, if any
    tensor = torch.tensor([tokens], device=policy.device)
    ids = {"input_ids": tensor, "attention_mask": torch.ones_like(tensor)}
    torch.manual_seed(seed)
    out = policy.generate(**ids, do_sample=True, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                          num_return_sequences=n, pad_token_id=tokenizer.pad_token_id)
    start = ids["input_ids"].shape[1]
    return [tokenizer.decode(seq[start:], skip_special_tokens=True).strip() or "(empty)" for seq in out]


def label_pairs(scorer, sets: list[CandidateSet], strategy: str = "round_robin") -> list[PreferencePair]:
    """Best vs worst of each candidate set, with the score gap as the margin."""
    pairs = []
    for cset in sets:
        result = scorer.rank(cset.prompt, cset.responses, strategy=strategy)
        best, worst = result.order[0], result.order[-1]
        pairs.append(PreferencePair(cset.prompt, cset.responses[best], cset.responses[worst], source="rewardkit-label",
                                    margin=float(result.scores[best] - result.scores[worst]),
                                    extra={"strategy": strategy, "chosen_index": best, "rejected_index": worst,
                                           "scores": [float(s) for s in result.scores]}))
    return pairs


def best_of_n_row(prompt: Prompt, candidates: list[str], result) -> dict:
    return {"prompt": prompt_to_json(prompt), "best": candidates[result.best], "best_index": result.best,
            "strategy": result.strategy, "candidates": candidates, "scores": [float(s) for s in result.scores]}
