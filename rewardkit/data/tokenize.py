"""Templates + texts → token ids, with a truncation policy that never cuts fixed text.

Policy when a row is longer than `max_length`: the fixed template tokens (and so the verdict
position at the very end) always survive; the longer response is trimmed first, from its end,
until both responses are equally long, then both together (water-filling); only when the
responses are down to `min_response_tokens` each is the prompt trimmed, from its start, so the
most recent turn of the question survives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rewardkit.data.templates import PromptTemplate, render_segments
from rewardkit.errors import ConfigError
from rewardkit.types import Prompt, prompt_to_text


@dataclass
class Encoded:
    input_ids: list[int]
    loss_mask: list[int]  # 1 on tokens of the slots named in `loss_slots`
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)  # slot → [start, end) in input_ids
    truncated: bool = False
    tokens_cut: int = 0  # text tokens the truncation policy removed


class SegmentEncoder:
    """Encodes one template for many rows; fixed segments are tokenised once."""

    def __init__(self, tokenizer, template: PromptTemplate, max_length: int, *,
                 append_eos: bool = False, min_response_tokens: int = 16):
        self.tokenizer, self.template, self.max_length = tokenizer, template, max_length
        self.min_response_tokens = min_response_tokens
        segments = render_segments(template, tokenizer)
        self.parts: list[tuple[str | None, list[int]]] = []
        for slot, text in segments:
            ids = _encode(tokenizer, text) if slot is None else []
            self.parts.append((slot, ids))
        if not (template.use_chat_template and getattr(tokenizer, "chat_template", None)):
            bos = getattr(tokenizer, "bos_token_id", None)
            if bos is not None and _encode_default(tokenizer, "x")[:1] == [bos]:
                self.parts.insert(0, (None, [bos]))
        if append_eos and tokenizer.eos_token_id is not None:
            self.parts.append((None, [tokenizer.eos_token_id]))
        self.fixed_length = sum(len(ids) for slot, ids in self.parts if slot is None)
        self.stats = {"rows": 0, "truncated_rows": 0, "tokens_cut": 0}  # over every encode() so far
        floor = min_response_tokens * len([s for s in template.slots if s.startswith("response")]) + 1
        if self.fixed_length + floor > max_length:
            raise ConfigError(f"--max-length {max_length} is too small: the template alone takes "
                              f"{self.fixed_length} tokens; use at least {self.fixed_length + floor}")

    @property
    def prefix_length(self) -> int:
        """Tokens before the first slot: identical for every row (shared-prefix caching)."""
        length = 0
        for slot, ids in self.parts:
            if slot is not None:
                break
            length += len(ids)
        return length

    def encode(self, prompt: Prompt, response_a: str = "", response_b: str = "",
               loss_slots: tuple[str, ...] = (), observations: str = "") -> Encoded:
        """`observations`: the text of the template's `{observations}` slot (tool findings), kept
        whole like fixed text (cut from its end only where the answers would lose their floor)."""
        texts = {"prompt": prompt_to_text(prompt), "response_a": response_a, "response_b": response_b,
                 "observations": observations}
        # user text is encoded as plain text: "<|im_end|>" inside an answer cannot forge a turn
        slot_ids = {slot: encode_user_text(self.tokenizer, self._capped(slot, texts[slot]))
                    for slot, _ in self.parts if slot is not None}
        before = sum(len(v) for v in slot_ids.values())
        truncated = self._fit(slot_ids)
        cut = before - sum(len(v) for v in slot_ids.values())
        self.stats["rows"] += 1
        self.stats["truncated_rows"] += int(truncated)
        self.stats["tokens_cut"] += cut
        ids: list[int] = []
        mask: list[int] = []
        spans = {}
        for slot, fixed in self.parts:
            piece = fixed if slot is None else slot_ids[slot]
            if slot is not None:
                spans[slot] = (len(ids), len(ids) + len(piece))
            ids.extend(piece)
            mask.extend([1 if slot in loss_slots else 0] * len(piece))
        return Encoded(ids, mask, spans, truncated, cut)

    def _capped(self, slot: str, text: str) -> str:
        """Text far longer than any row can hold is cut before tokenizing (a token rarely spans
        more than a few characters; 32 per token of the limit leaves a wide margin), so a huge
        input costs no more memory than a long one. Prompts keep their end, responses their start,
        as the truncation policy below does."""
        limit = 32 * self.max_length
        if len(text) <= limit:
            return text
        return text[-limit:] if slot == "prompt" else text[:limit]

    def _fit(self, slot_ids: dict[str, list[int]]) -> bool:
        budget = self.max_length - self.fixed_length
        cut_observations = False
        if "observations" in slot_ids:  # tool findings are kept whole while the answers keep their floor
            kept = slot_ids["observations"][: max(0, budget - self.min_response_tokens * 2 - 1)]
            cut_observations = len(kept) < len(slot_ids["observations"])
            slot_ids["observations"] = kept
            budget -= len(kept)
        total = sum(len(v) for k, v in slot_ids.items() if k != "observations")
        if total <= budget:
            return cut_observations
        responses = [s for s in ("response_a", "response_b") if s in slot_ids]
        prompt_len = len(slot_ids["prompt"])
        floors = {s: min(len(slot_ids[s]), self.min_response_tokens) for s in responses}
        room = budget - prompt_len
        if room >= sum(floors.values()):
            caps = water_fill([len(slot_ids[s]) for s in responses], room)
            for slot, cap in zip(responses, caps):
                slot_ids[slot] = slot_ids[slot][:cap]
            return True
        for slot in responses:
            slot_ids[slot] = slot_ids[slot][: floors[slot]]
        keep = budget - sum(floors.values())
        slot_ids["prompt"] = slot_ids["prompt"][len(slot_ids["prompt"]) - keep:] if keep > 0 else []
        return True


def water_fill(lengths: list[int], room: int) -> list[int]:
    """Per-item caps summing to at most `room` that cut only the longest items:
    water_fill([10, 100], 50) == [10, 40]; water_fill([60, 100], 50) == [25, 25]."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    caps = [0] * len(lengths)
    left = room
    for rank, i in enumerate(order):
        share = left // (len(order) - rank)
        caps[i] = min(lengths[i], share)
        left -= caps[i]
    return caps


def _encode(tokenizer, text: str) -> list[int]:
    """Template text: its special tokens (chat markers) are meant and kept."""
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def encode_user_text(tokenizer, text: str) -> list[int]:
    """Text from data or a request: special-token strings in it stay ordinary text."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"] if text else []


def _encode_default(tokenizer, text: str) -> list[int]:
    return tokenizer(text)["input_ids"]


def label_token_ids(tokenizer, labels: tuple[str, str]) -> tuple[int, int]:
    """Each verdict label must be exactly one token, or the judge cannot be scored from one position."""
    ids = []
    for label in labels:
        encoded = _encode(tokenizer, label)
        if len(encoded) != 1:
            raise ConfigError(f"label token {label!r} encodes to {len(encoded)} tokens {encoded} with this "
                              "tokenizer; choose labels that are single tokens (e.g. 'A' and 'B')")
        ids.append(encoded[0])
    return ids[0], ids[1]


_CONTENT_MARK = "\u241fcontent{}\u241f"  # stands for message i's text while the chat template renders


def encode_chat(tokenizer, messages: list[dict], *, add_generation_prompt: bool = True) -> list[int]:
    """Token ids of a conversation through the tokenizer's chat template, where the template's
    own markers are special tokens and the messages' text is ordinary text: a user who writes
    "<|im_end|>" gets those characters, not an end of turn (as `encode_user_text`)."""
    marked = [{**m, "content": _CONTENT_MARK.format(i)} for i, m in enumerate(messages)]
    rendered = tokenizer.apply_chat_template(marked, tokenize=False, add_generation_prompt=add_generation_prompt)
    ids, rest = [], rendered
    for i, message in enumerate(messages):
        mark = _CONTENT_MARK.format(i)
        if rest.count(mark) != 1:  # a template that drops or repeats a message: no exact split exists
            raise ValueError(f"the chat template does not render message {i} exactly once")
        before, rest = rest.split(mark)
        ids += _encode(tokenizer, before) + encode_user_text(tokenizer, str(message.get("content") or ""))
    return ids + _encode(tokenizer, rest)
