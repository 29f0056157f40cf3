"""Row shapes of public preference data, detected from a row's keys and parsed to records.

Shapes (also selectable by name with `format=`):
  canonical    {"prompt", "chosen", "rejected", ...}  strings; prompt may be a message list
  trl          TRL preference rows: conversational (message lists) or implicit prompt
  hh           HH-RLHF transcripts {"chosen": "\\n\\nHuman: …\\n\\nAssistant: …", "rejected": …}
  sharegpt     LLaMA-Factory pairwise {"conversations": [...], "chosen": {...}, "rejected": {...}}
  rmbench      RM-Bench {"prompt", "chosen": [3 styles], "rejected": [3 styles]} → 9 pairs
  rewardbench  RewardBench rows {"prompt", "chosen", "rejected", "chosen_model", "rejected_model", "subset", "id"}
  judgebench   JudgeBench rows {"question", "response_A", "response_B", "label": "A>B" | "B>A"}
  unlabeled    {"prompt", "response_a", "response_b"}  (ResponsePair, for pre-training)

A parser raises `FieldProblem(field, message)`; `load.py` adds the file and line.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from rewardkit.types import FieldProblem, Message, PreferencePair, Prompt, ResponsePair, message_from_dict

Parser = Callable[[dict], list]


def _text(row: dict, key: str, *, allow_empty: bool = False) -> str:
    if key not in row or row[key] is None:
        raise FieldProblem(key, "is missing")
    value = row[key]
    if not isinstance(value, str):
        raise FieldProblem(key, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise FieldProblem(key, "is empty")
    return value


def _messages(value: Any, key: str) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise FieldProblem(key, "must be a non-empty list of {role, content} messages")
    return tuple(message_from_dict(item, f"{key}[{i}]") for i, item in enumerate(value))


def _prompt(row: dict, key: str = "prompt") -> Prompt:
    value = row.get(key)
    if isinstance(value, list):
        return _messages(value, key)
    return _text(row, key)


def _extras(row: dict, used: set[str]) -> dict:
    return {k: v for k, v in row.items() if k not in used}


def _pair(row: dict, prompt: Prompt, chosen: str, rejected: str, used: set[str], **kw) -> PreferencePair:
    if not chosen.strip():
        raise FieldProblem("chosen", "is empty")
    if not rejected.strip():
        raise FieldProblem("rejected", "is empty")
    if chosen == rejected:
        raise FieldProblem("rejected", "is identical to 'chosen'; a pair needs two different responses")
    margin = _number(row, "margin")
    if margin is None:
        high, low = _number(row, "score_chosen"), _number(row, "score_rejected")
        margin = None if high is None or low is None else high - low
        if margin is not None and not math.isfinite(margin):
            raise FieldProblem("score_chosen", f"score_chosen − score_rejected ({high!r} − {low!r}) is beyond a float; "
                                               "give smaller scores or a 'margin'")
    ident = row.get("id")
    return PreferencePair(
        prompt=prompt, chosen=chosen, rejected=rejected,
        id=None if ident is None else str(ident),
        source=kw.get("source", row.get("source") or ""),
        subset=kw.get("subset", row.get("subset") or ""),
        margin=None if margin is None else float(margin),
        extra=kw.get("extra", _extras(row, used | {"id", "source", "subset", "margin"})),
    )


def _number(row: dict, key: str) -> float | None:
    value = row.get(key)
    if value is None or isinstance(value, bool):
        return None if value is None else _bad_number(key, value)
    number = None
    if isinstance(value, (int, float)):
        number = _as_float(value)
    elif isinstance(value, str):  # CSV cells arrive as text
        try:
            number = float(value)
        except ValueError:
            pass
    if number is None:
        return _bad_number(key, value)
    if not math.isfinite(number):  # JSON's NaN/Infinity would train a NaN model
        raise FieldProblem(key, f"must be a finite number, got {value!r}")
    return number


def _as_float(value) -> float | None:
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float
        return None


def _bad_number(key: str, value) -> float:
    raise FieldProblem(key, f"must be a number, got {type(value).__name__} {str(value)[:40]!r}")


def parse_canonical(row: dict) -> list[PreferencePair]:
    return [_pair(row, _prompt(row), _text(row, "chosen"), _text(row, "rejected"), {"prompt", "chosen", "rejected"})]


def parse_rewardbench(row: dict) -> list[PreferencePair]:
    pair = parse_canonical(row)[0]
    source = row.get("source") or "rewardbench"
    return [PreferencePair(pair.prompt, pair.chosen, pair.rejected, pair.id, source, pair.subset, pair.margin, pair.extra)]


def _last_assistant(value: Any, key: str) -> tuple[tuple[Message, ...], str]:
    """Split a conversation into (history, final assistant text)."""
    if isinstance(value, str):
        return (), value
    messages = _messages(value, key)
    if messages[-1].role != "assistant":
        raise FieldProblem(key, f"must end with an assistant message, ends with '{messages[-1].role}'")
    return messages[:-1], messages[-1].content


def parse_trl(row: dict) -> list[PreferencePair]:
    chosen_hist, chosen = _last_assistant(row.get("chosen"), "chosen")
    rejected_hist, rejected = _last_assistant(row.get("rejected"), "rejected")
    if "prompt" in row and row["prompt"] is not None:
        prompt = _prompt(row)
        if chosen_hist:  # explicit prompt plus extra turns inside the completion
            prompt = (prompt if isinstance(prompt, tuple) else (Message("user", prompt),)) + chosen_hist
    elif isinstance(row.get("chosen"), list):  # implicit prompt: the shared leading turns
        if chosen_hist != rejected_hist:
            raise FieldProblem("rejected", "conversation history differs from 'chosen'; cannot find a shared prompt")
        if not chosen_hist:
            raise FieldProblem("chosen", "has no prompt turns before the final assistant message")
        prompt = chosen_hist
    else:  # implicit prompt, standard strings: the shared text prefix
        full_c, full_r = _text(row, "chosen"), _text(row, "rejected")
        cut = _common_prefix_at_space(full_c, full_r)
        if cut == 0:
            raise FieldProblem("prompt", "is missing and 'chosen' and 'rejected' share no leading text")
        prompt, chosen, rejected = full_c[:cut].strip(), full_c[cut:], full_r[cut:]
    return [_pair(row, prompt, chosen, rejected, {"prompt", "chosen", "rejected"})]


def _common_prefix_at_space(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    if n == min(len(a), len(b)):
        return n
    while n > 0 and not a[n - 1].isspace():
        n -= 1
    return n


_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def split_hh_transcript(text: str, key: str) -> tuple[Message, ...]:
    parts = _HH_TURN.split("\n\n" + text.lstrip("\n") if not text.startswith("\n\n") else text)
    if len(parts) < 3 or parts[0].strip():
        raise FieldProblem(key, "is not an HH-RLHF transcript ('\\n\\nHuman: …\\n\\nAssistant: …')")
    roles = {"Human": "user", "Assistant": "assistant"}
    return tuple(Message(roles[parts[i]], parts[i + 1]) for i in range(1, len(parts), 2))


def parse_hh(row: dict) -> list[PreferencePair]:
    chosen_turns = split_hh_transcript(_text(row, "chosen"), "chosen")
    rejected_turns = split_hh_transcript(_text(row, "rejected"), "rejected")
    for key, turns in (("chosen", chosen_turns), ("rejected", rejected_turns)):
        if turns[-1].role != "assistant":
            raise FieldProblem(key, "must end with an Assistant turn")
    if chosen_turns[:-1] != rejected_turns[:-1]:
        raise FieldProblem("rejected", "conversation history differs from 'chosen'")
    return [_pair(row, chosen_turns[:-1], chosen_turns[-1].content, rejected_turns[-1].content, {"chosen", "rejected"})]


def parse_sharegpt(row: dict) -> list[PreferencePair]:
    history = list(_messages(row.get("conversations"), "conversations"))
    if isinstance(row.get("system"), str) and row["system"].strip():
        history.insert(0, Message("system", row["system"]))
    answers = []
    for key in ("chosen", "rejected"):
        value = row.get(key)
        if isinstance(value, dict):
            value = _messages([value], key)[0].content
        if not isinstance(value, str):
            raise FieldProblem(key, "must be a {from, value} object or a string")
        answers.append(value)
    return [_pair(row, tuple(history), answers[0], answers[1], {"conversations", "chosen", "rejected", "system"})]


def parse_rmbench(row: dict) -> list[PreferencePair]:
    prompt = _prompt(row)
    lists = {}
    for key in ("chosen", "rejected"):
        value = row.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise FieldProblem(key, "must be a non-empty list of non-empty strings (one per style)")
        lists[key] = value
    base = _extras(row, {"prompt", "chosen", "rejected", "id", "source", "subset", "domain"})
    pairs = []
    for i, chosen in enumerate(lists["chosen"]):
        for j, rejected in enumerate(lists["rejected"]):
            if chosen == rejected:  # a pair of one answer with itself would train and score on noise
                raise FieldProblem("rejected", f"rejected[{j}] is identical to chosen[{i}]; every chosen answer must "
                                               "differ from every rejected one")
            extra = {**base, "chosen_style": i, "rejected_style": j}
            ident = f"{row['id']}:{i}-{j}" if row.get("id") is not None else None
            pairs.append(PreferencePair(prompt, chosen, rejected, ident, row.get("source") or "rm-bench",
                                        row.get("subset") or row.get("domain") or "", None, extra))
    return pairs


def parse_judgebench(row: dict) -> list[PreferencePair]:
    label = _text(row, "label").strip()
    if label not in ("A>B", "B>A"):
        raise FieldProblem("label", f"must be 'A>B' or 'B>A' (ties cannot form a pair), got {label!r}")
    a, b = _text(row, "response_A"), _text(row, "response_B")
    chosen, rejected = (a, b) if label == "A>B" else (b, a)
    used = {"question", "response_A", "response_B", "label", "pair_id"}
    fake = {**row, "id": row.get("pair_id", row.get("id"))}
    return [_pair(fake, _prompt(row, "question"), chosen, rejected, used, source=row.get("source") or "judgebench")]


def parse_unlabeled(row: dict) -> list[ResponsePair]:
    a, b = _text(row, "response_a"), _text(row, "response_b")
    ident = row.get("id")
    return [ResponsePair(_prompt(row), a, b, None if ident is None else str(ident), row.get("source") or "", row.get("subset") or "")]


FORMATS: dict[str, Parser] = {
    "canonical": parse_canonical,
    "trl": parse_trl,
    "hh": parse_hh,
    "sharegpt": parse_sharegpt,
    "rmbench": parse_rmbench,
    "rewardbench": parse_rewardbench,
    "judgebench": parse_judgebench,
    "unlabeled": parse_unlabeled,
}


def detect_format(row: Any) -> str | None:
    """The shape a row looks like, from its keys and value types; None if none fits."""
    if not isinstance(row, dict):
        return None
    chosen = row.get("chosen")
    if "question" in row and "response_A" in row:
        return "judgebench"
    if "response_a" in row and "response_b" in row:
        return "unlabeled"
    if "conversations" in row:
        return "sharegpt"
    if "chosen" not in row or "rejected" not in row:
        # a prompt with half a pair is a canonical row with a missing field, worth naming
        return "canonical" if "prompt" in row and ("chosen" in row or "rejected" in row) else None
    if isinstance(chosen, list) and chosen and all(isinstance(v, str) for v in chosen):
        return "rmbench"
    if isinstance(chosen, list):
        return "trl"
    if "prompt" not in row:
        return "hh" if isinstance(chosen, str) and "Human:" in chosen and "Assistant:" in chosen else "trl"
    if "chosen_model" in row and "rejected_model" in row and "source" not in row:
        return "rewardbench"
    return "canonical"
