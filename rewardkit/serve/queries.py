"""Recover (question, response) from the chat-templated text an RL framework sends.

OpenRLHF's remote reward call posts `query`: the policy's chat template applied to the prompt
plus the generated response, as one string, and `prompts`: the templated prompt alone. The
response is what follows the prompt in the query, with trailing end-of-turn/padding tokens
removed. The question is rebuilt from the prompt's chat markup (ChatML, Llama-3, Mistral
[INST], Gemma turns) into messages; text with no known markup is used as it is, minus
special tokens. The reward model applies its *own* template afterwards: the policy's
template never leaks into the judge prompt.
"""

from __future__ import annotations

import math
import re

from rewardkit.types import Message, Prompt

END_TOKENS = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|end_of_text|>",
              "<pad>", "<|pad|>", "<eos>")
ASSISTANT_HEADERS = ("<|im_start|>assistant\n", "<|start_header_id|>assistant<|end_header_id|>\n\n",
                     "<start_of_turn>model\n", "[/INST]")

_CHATML = re.compile(r"<\|im_start\|>(\w+)\n(.*?)(?:<\|im_end\|>|$)", re.S)
_LLAMA3 = re.compile(r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\n\n(.*?)(?:<\|eot_id\|>|$)", re.S)
_GEMMA = re.compile(r"<start_of_turn>(\w+)\n(.*?)(?:<end_of_turn>|$)", re.S)
_INST = re.compile(r"\[INST\](.*?)\[/INST\]", re.S)
_SPECIAL = re.compile(r"<\|[^|<>]{1,40}\|>|</?s>|<bos>|<eos>")


class QueryError(ValueError):
    pass


def split_query(query: str, prompt: str | None) -> tuple[Prompt, str]:
    """(question as messages or text, response text) for one OpenRLHF-style query. The
    response follows the templated prompt. OpenRLHF left-truncates a long prompt before
    generating (keeping its last tokens) but still passes the whole prompt: then the question
    is rebuilt from that whole prompt, and the response starts after the prompt's kept tail
    (or, failing that, after the query's last assistant header)."""
    if prompt and query.startswith(prompt):
        return parse_prompt(prompt), strip_end_tokens(query[len(prompt):])
    cut = _after_prompt_tail(query, prompt) if prompt else None
    if cut is not None:  # the query holds the prompt's tail: the question is the whole prompt
        return parse_prompt(prompt), strip_end_tokens(query[cut:])
    headers = [h for h in ASSISTANT_HEADERS if h in query]
    if not headers:
        raise QueryError("cannot find where the response starts: the query does not start with its prompt (or "
                         "its tail) and has no assistant header (ChatML, Llama-3, Gemma or [INST] markup)")
    cut = max(query.rfind(h) + len(h) for h in headers)
    return parse_prompt(query[:cut]), strip_end_tokens(query[cut:])


def _after_prompt_tail(query: str, prompt: str, probe: int = 48) -> int | None:
    """Where the response starts in a query that begins with a tail of `prompt` (what decoding
    the prompt's last tokens gives), or None when it does not."""
    start = prompt.find(query[:min(probe, len(query))])
    while start > 0:
        tail = prompt[start:]
        if query.startswith(tail):
            return len(tail)
        start = prompt.find(query[:min(probe, len(query))], start + 1)
    return None


def label_reference(label) -> str | None:
    """An OpenRLHF label as a reference answer: text as it is, a number (a math answer) as its
    text; None or blank means "no reference for this item"."""
    if isinstance(label, bool) or label is None:
        return None
    if isinstance(label, float) and not math.isfinite(label):  # NaN / Infinity in a JSON label: no answer at all
        raise QueryError(f"a label must be text or a finite number, got {label}")
    if isinstance(label, (int, float)):
        return repr(label) if isinstance(label, float) and not label.is_integer() else str(int(label))
    if isinstance(label, str):
        return label if label.strip() else None
    raise QueryError(f"a label must be text or a number, got {type(label).__name__}")


def strip_end_tokens(text: str) -> str:
    changed = True
    text = text.rstrip()
    while changed:
        changed = False
        for token in END_TOKENS:
            if text.endswith(token):
                text, changed = text[: -len(token)].rstrip(), True
    return text.strip()


def parse_prompt(text: str) -> Prompt:
    for pattern in (_CHATML, _LLAMA3, _GEMMA):
        turns = [(role, content.strip()) for role, content in pattern.findall(text)]
        turns = [(r, c) for r, c in turns if c or r != "assistant"]  # the empty generation header
        if turns:
            roles = {"model": "assistant"}
            return tuple(Message(roles.get(r, r), c) for r, c in turns)
    inst = _INST.findall(text)
    if inst:
        return tuple(Message("user", _SPECIAL.sub("", t).strip()) for t in inst)
    return _SPECIAL.sub("", text).strip()


def split_openrlhf(queries, prompts, labels) -> tuple[list, list[str], list[str | None]]:
    """OpenRLHF's (queries, prompts, labels) → (questions, responses, per-item references or
    None), for the /get_reward route and the reward_func file alike."""
    questions, responses, references = [], [], []
    for i, query in enumerate(queries):
        try:
            question, response = split_query(query, prompts[i] if prompts else None)
            references.append(label_reference(labels[i]) if labels else None)
        except QueryError as exc:
            raise QueryError(f"query[{i}]: {exc}") from None
        questions.append(question)
        responses.append(response)
    return questions, responses, references
