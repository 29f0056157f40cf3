"""Prompt templates: the judge prompt (stage 2 and scoring) and the pair-generation prompt
(stage 1 pre-training). Wording is rewardkit's own; the layout follows the GRAM method.

A template is system / user / assistant text with `{prompt}`, `{response_a}`, `{response_b}`
slots. `render_segments` lays it out through the tokenizer's chat template (when it has one)
and returns named segments, so that tokenisation can truncate the variable parts and never
the fixed ones (the verdict position is the end of the last fixed segment).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from rewardkit.config_files import read_mapping, read_text_file
from rewardkit.errors import ConfigError

PAIR_SLOTS = ("prompt", "response_a", "response_b")
# `{observations}`: what tools found in the two answers (verifiers/observations.py), for a
# tool-augmented judge; optional, after the answers
SLOTS = PAIR_SLOTS + ("observations",)

JUDGE_USER = (
    "Two AI assistants answered the user question below. Decide which answer is better for the "
    "user: check whether it follows the instructions and is correct, helpful, honest and "
    "harmless. Neither the order of the answers nor their length should sway you. Reply with a "
    "single letter: A if Assistant A's answer is better, B if Assistant B's answer is better.\n\n"
    "[User Question]\n{prompt}\n\n"
    "[The Start of Assistant A's Answer]\n{response_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{response_b}\n[The End of Assistant B's Answer]"
)

JUDGE_TOOLS_USER = (
    JUDGE_USER.replace("Reply with a single letter",
                       "Tools have been run on both answers (a calculator, a check of the final answer "
                       "against the known one, the question's tests); trust what they report. Reply with a single letter")
    + "\n\n[Tool Observations]\n{observations}\n[End of Tool Observations]"
)

PRETRAIN_USER = "Write two different answers to the user question below.\n\n[User Question]\n{prompt}"
PRETRAIN_ASSISTANT = (
    "[The Start of Assistant A's Answer]\n{response_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{response_b}\n[The End of Assistant B's Answer]"
)


@dataclass(frozen=True)
class PromptTemplate:
    user: str
    assistant: str = ""  # text after the generation prompt; for the judge, what precedes the verdict
    system: str | None = None  # None: the chat template's own default
    labels: tuple[str, str] = ("A", "B")  # verdict texts for "A is better", "B is better"
    use_chat_template: bool = True
    # close the assistant turn as the chat template does (end-of-turn tokens after the answer):
    # the text every standard reward-model loader builds with apply_chat_template([user, assistant])
    close_turn: bool = False

    def __post_init__(self):
        text = self.user + self.assistant
        for slot in SLOTS:
            if text.count("{" + slot + "}") > 1:
                raise ConfigError(f"template: '{{{slot}}}' may appear at most once in user+assistant text")
        if "{prompt}" not in text:
            raise ConfigError("template: the text must contain the '{prompt}' slot")
        if len(self.labels) != 2 or self.labels[0] == self.labels[1] or not all(self.labels):
            raise ConfigError(f"template labels: need two different non-empty labels, got {self.labels!r}")

    @property
    def slots(self) -> tuple[str, ...]:
        text = self.user + self.assistant
        return tuple(slot for slot in SLOTS if "{" + slot + "}" in text)

    def require_pair_slots(self, where: str = "template") -> None:
        if not set(PAIR_SLOTS) <= set(self.slots):
            raise ConfigError(f"{where}: needs all of {{prompt}}, {{response_a}} and {{response_b}}, has {self.slots}")

    @property
    def observes(self) -> bool:
        """Whether the template shows tool observations (the `{observations}` slot)."""
        return "observations" in self.slots

    def to_dict(self) -> dict:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_dict(cls, data: dict, where: str = "template") -> "PromptTemplate":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")
        for key in ("user", "assistant", "system"):
            if key in data and not isinstance(data[key], str) and not (key == "system" and data[key] is None):
                raise ConfigError(f"{where}: '{key}' must be text, got {type(data[key]).__name__} {data[key]!r}")
        for key in ("use_chat_template", "close_turn"):
            if key in data and not isinstance(data[key], bool):
                raise ConfigError(f"{where}: '{key}' must be true or false, got {data[key]!r}")
        if "labels" in data:
            labels = data["labels"]
            if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
                raise ConfigError(f"{where}: 'labels' must be a list of two texts (e.g. [A, B]), got {labels!r}")
            data = {**data, "labels": tuple(labels)}
        return cls(**data)


def default_judge_template() -> PromptTemplate:
    return PromptTemplate(user=JUDGE_USER)


def tool_judge_template() -> PromptTemplate:
    """The judge prompt with tool observations after the answers (Themis-style)."""
    return PromptTemplate(user=JUDGE_TOOLS_USER)


def default_reward_template() -> PromptTemplate:
    """The Bradley-Terry model's input: the prompt as the user turn, the response as the closed
    assistant turn — exactly what TRL, OpenRLHF and RewardBench feed a sequence classifier, so
    the reward is read at the position they read it."""
    return PromptTemplate(user="{prompt}", assistant="{response_a}", close_turn=True)


def default_pretrain_template() -> PromptTemplate:
    return PromptTemplate(user=PRETRAIN_USER, assistant=PRETRAIN_ASSISTANT)


def load_template(path: str | Path) -> PromptTemplate:
    """A YAML/JSON file with the dataclass's keys, or a plain text file used as the user text."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        data = read_mapping(path, f"template file {path}", allow_empty=False)
        return PromptTemplate.from_dict(data, where=str(path))
    return PromptTemplate(user=read_text_file(path, f"template file {path}"))


_MARK = "\u241f{}\u241f"  # a symbol no tokenizer's chat template escapes or strips


def render_segments(template: PromptTemplate, tokenizer) -> list[tuple[str | None, str]]:
    """The template laid out as [(slot name or None for fixed text, text), ...]."""
    marked = {slot: _MARK.format(slot) for slot in template.slots}
    try:
        user = template.user.format(**marked)
        assistant = template.assistant.format(**marked)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"template: unknown slot or stray brace ({exc}); write literal braces as '{{{{' and '}}}}'") from None
    if template.use_chat_template and getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": template.system}] if template.system else [])
        messages.append({"role": "user", "content": user})
        if template.close_turn and template.assistant:
            messages.append({"role": "assistant", "content": assistant})
            text = tokenizer.apply_chat_template(messages, tokenize=False)
        else:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + assistant
    else:
        text = (template.system + "\n\n" if template.system else "") + user + "\n\n" + assistant
    segments: list[tuple[str | None, str]] = []
    rest = text
    while rest:
        positions = [(rest.find(mark), slot) for slot, mark in marked.items() if mark in rest]
        if not positions:
            segments.append((None, rest))
            break
        index, slot = min(positions)
        if index:
            segments.append((None, rest[:index]))
        segments.append((slot, ""))
        rest = rest[index + len(marked[slot]):]
    return segments
