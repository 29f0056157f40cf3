"""The records every other module passes around.

A prompt is either plain text or a tuple of chat `Message`s; responses are plain text.
Records are frozen: readers build them once, nothing downstream mutates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence, Union


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant" (other roles are kept as given)
    content: str


Prompt = Union[str, tuple[Message, ...]]


@dataclass(frozen=True)
class PreferencePair:
    """A labeled comparison: `chosen` is the better response to `prompt`."""

    prompt: Prompt
    chosen: str
    rejected: str
    id: str | None = None
    source: str = ""
    subset: str = ""
    margin: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResponsePair:
    """An unlabeled pair of responses to one prompt (stage-1 pre-training data)."""

    prompt: Prompt
    response_a: str
    response_b: str
    id: str | None = None
    source: str = ""
    subset: str = ""


def prompt_to_text(prompt: Prompt) -> str:
    """A readable single string for a prompt; chat turns become `Role: content` lines."""
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1 and prompt[0].role == "user":
        return prompt[0].content
    return "\n".join(f"{m.role.capitalize()}: {m.content}" for m in prompt)


def prompt_to_json(prompt: Prompt) -> str | list[dict[str, str]]:
    if isinstance(prompt, str):
        return prompt
    return [{"role": m.role, "content": m.content} for m in prompt]


class FieldProblem(ValueError):
    """A value that cannot become a record; `field` names where (e.g. `prompt[2].content`).
    Readers add the file and line (or the row index of in-memory data)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field


ROLE_ALIASES = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant"}


def content_text(content: Any, where: str) -> str:
    """Message content as text: a string as it is, `None` (a tool-call turn) as "", a list of
    parts (OpenAI / TRL multimodal style) as its text parts joined; anything else is refused."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        texts = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif not (isinstance(part, Mapping) and part.get("type") not in (None, "text")):
                raise FieldProblem(f"{where}[{i}]", "a content part needs a string 'text'")
        return "".join(texts)
    raise FieldProblem(where, f"must be text, a list of content parts or null, got {type(content).__name__}")


def message_from_dict(item: Any, where: str) -> Message:
    """The one dict → Message rule for data files, HTTP bodies and RL adapters: `role` (or
    ShareGPT's `from`, with its aliases) is required, and so is the `content` (or `value`) key,
    whose value goes through `content_text`."""
    if not isinstance(item, Mapping):
        raise FieldProblem(where, f"must be an object, got {type(item).__name__}")
    role = item.get("role", item.get("from"))
    if not isinstance(role, str) or not role:
        raise FieldProblem(where, "needs a string 'role' (or 'from')")
    if "content" not in item and "value" not in item:
        raise FieldProblem(where, "needs 'content' (or 'value'); null content is allowed for tool-call turns")
    content = item["content"] if "content" in item else item["value"]
    return Message(ROLE_ALIASES.get(role, role), content_text(content, f"{where}.content"))


def prompt_from_json(value: Any, where: str = "prompt") -> Prompt:
    """Text, or a non-empty list of message dicts, as a `Prompt`."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value:
        return tuple(message_from_dict(item, f"{where}[{i}]") for i, item in enumerate(value))
    raise FieldProblem(where, "must be text or a non-empty list of {role, content} messages")
