"""Reference answers by question, for pointwise rewards from a pairwise judge.

A question is matched by its text and, failing that, by its user turn(s) alone: an RL
framework's prompt carries the policy's chat template, which may add a system turn of its own
(SmolLM2's template adds a default one), so the question rebuilt from it has a system message
the reference file never had.
"""

from __future__ import annotations

from pathlib import Path

from rewardkit.data.readers import iter_objects
from rewardkit.errors import DataError
from rewardkit.types import FieldProblem, prompt_from_json, prompt_to_text


def user_text(prompt) -> str:
    """The user turn(s) of a prompt as text (a plain-text prompt is its own user turn)."""
    if isinstance(prompt, str):
        return prompt.strip()
    users = [m for m in prompt if m.role == "user"]
    return users[0].content.strip() if len(users) == 1 else prompt_to_text(tuple(users))


def find_reference(references: dict[str, str], prompt) -> str | None:
    """The reference for `prompt`: by its whole text, else by its user turn(s) alone."""
    exact = references.get(prompt_to_text(prompt))
    return exact if exact is not None else references.get(user_text(prompt))


def load_references(path: str | Path) -> dict[str, str]:
    """JSONL rows {prompt, reference} → {question text: reference}, each question also under its
    user turn(s) alone where that is unambiguous (see find_reference)."""
    out, by_user, ambiguous = {}, {}, set()
    for number, row in iter_objects(path):
        if not isinstance(row.get("reference"), str):
            raise DataError(str(path), number, "reference", "must be a string")
        prompt = row_prompt(path, number, row)
        out[prompt_to_text(prompt)] = row["reference"]
        key = user_text(prompt)
        if by_user.get(key, row["reference"]) != row["reference"]:
            ambiguous.add(key)  # the same user turn with different references: only the whole text matches
        by_user[key] = row["reference"]
    return {**{k: v for k, v in by_user.items() if k not in ambiguous}, **out}


def row_prompt(path, number: int, row: dict):
    """The row's `prompt` field as a Prompt, or a DataError naming file, line and field."""
    try:
        return prompt_from_json(row.get("prompt"), "prompt")
    except FieldProblem as exc:
        raise DataError(str(path), number, exc.field, str(exc)) from None
