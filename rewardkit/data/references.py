"""Reference answers by question, for pointwise rewards from a pairwise judge."""

from __future__ import annotations

from pathlib import Path

from rewardkit.data.readers import iter_objects
from rewardkit.errors import DataError
from rewardkit.types import FieldProblem, prompt_from_json, prompt_to_text


def load_references(path: str | Path) -> dict[str, str]:
    """JSONL rows {prompt, reference} → {question text: reference}."""
    out = {}
    for number, row in iter_objects(path):
        if not isinstance(row.get("reference"), str):
            raise DataError(str(path), number, "reference", "must be a string")
        out[prompt_to_text(row_prompt(path, number, row))] = row["reference"]
    return out


def row_prompt(path, number: int, row: dict):
    """The row's `prompt` field as a Prompt, or a DataError naming file, line and field."""
    try:
        return prompt_from_json(row.get("prompt"), "prompt")
    except FieldProblem as exc:
        raise DataError(str(path), number, exc.field, str(exc)) from None
