"""Rated responses: one response with several attribute scores, the data of multi-objective
reward models (HelpSteer, HelpSteer2, UltraFeedback's fine-grained annotations).

Three row shapes are read, from files or memory (see `sources.py`):
  - ours:        {"prompt", "response", "attributes": {name: number | null}, "scale": [lo, hi]}
  - HelpSteer:   {"prompt", "response", "helpfulness": 3, "correctness": 4, ...}  (scale 0–4)
  - UltraFeedback fine-grained: {"instruction", "completions": [{"response", "annotations":
                 {aspect: {"Rating": "4" | "N/A"}}}]}  (scale 1–5; one row → several responses)
An attribute a row lacks (absent, null, "N/A") is *masked*: it takes no part in fitting that
attribute, and how many rows lack each attribute is reported — never filled with a zero.
A value outside the scale is an error naming the file, line and field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from rewardkit.data.readers import RawRow
from rewardkit.data.sources import iter_source, split_source
from rewardkit.errors import DataError
from rewardkit.types import FieldProblem, Prompt, prompt_from_json

HELPSTEER_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
HELPSTEER_SCALE = (0.0, 4.0)
ULTRAFEEDBACK_SCALE = (1.0, 5.0)


@dataclass(frozen=True)
class RatedResponse:
    prompt: Prompt
    response: str
    attributes: Mapping[str, float | None]  # None: not rated (masked)
    scale: tuple[float, float]
    source: str = ""
    subset: str = ""


@dataclass
class Ratings:
    records: list[RatedResponse]
    attributes: tuple[str, ...]  # every attribute any row rates, in first-seen order
    masked: dict[str, int] = field(default_factory=dict)  # attribute → rows without a rating

    def targets(self, names: tuple[str, ...] | None = None) -> list[list[float]]:
        """Rows × attributes, NaN where masked, each value mapped to 0–1 by its row's scale."""
        names = names or self.attributes
        out = []
        for record in self.records:
            lo, hi = record.scale
            out.append([math.nan if record.attributes.get(n) is None else (record.attributes[n] - lo) / (hi - lo)
                        for n in names])
        return out


def load_ratings(source: Any, *, scale: tuple[float, float] | None = None) -> Ratings:
    """Every rated response of `source` (a path, paths, or rows in memory), validated.

    `scale` applies to rows that do not declare their own."""
    records: list[RatedResponse] = []
    for part in split_source(source):
        for row in iter_source(part):
            if not isinstance(row, RawRow):
                raise DataError(str(part), None, None, f"expected rated-response rows, got {type(row).__name__}")
            records.extend(_records_of(row, scale))
    if not records:
        raise DataError(_label(source), None, None, "no rated responses")
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record.attributes))
    masked = {n: sum(r.attributes.get(n) is None for r in records) for n in names}
    return Ratings(records, tuple(names), masked)


def _records_of(row: RawRow, scale) -> list[RatedResponse]:
    def fail(field_name, message):
        return DataError(row.path, row.line, field_name, message, in_memory=row.in_memory)

    if row.parse_error:
        raise fail(None, row.parse_error)
    data = row.data
    if not isinstance(data, Mapping):
        raise fail(None, f"a row must be a JSON object, got {type(data).__name__}")
    try:
        if "completions" in data:
            return _ultrafeedback(data, scale)
        return [_rated(data, scale)]
    except FieldProblem as problem:
        raise fail(problem.field, str(problem)) from None


def _rated(data: Mapping, scale) -> RatedResponse:
    prompt = prompt_from_json(data.get("prompt"), "prompt")
    response = _text(data.get("response"), "response")
    if "attributes" in data:
        raw = data["attributes"]
        if not isinstance(raw, Mapping) or not raw:
            raise FieldProblem("attributes", "must be a non-empty object {name: number or null}")
        where = "attributes."
        row_scale = _scale(data.get("scale"), scale)
    else:  # HelpSteer's own layout: one column per attribute
        raw = {n: data[n] for n in HELPSTEER_ATTRIBUTES if n in data}
        if not raw:
            raise FieldProblem("attributes", "is missing (and no HelpSteer attribute columns such as 'helpfulness')")
        where = ""
        row_scale = _scale(data.get("scale"), scale or HELPSTEER_SCALE)
    attributes = {str(n): _value(v, f"{where}{n}", row_scale) for n, v in raw.items()}
    if all(v is None for v in attributes.values()):
        raise FieldProblem("attributes", "every attribute is missing; a row needs at least one rating")
    return RatedResponse(prompt, response, attributes, row_scale, str(data.get("source", "")), str(data.get("subset", "")))


def _ultrafeedback(data: Mapping, scale) -> list[RatedResponse]:
    prompt = prompt_from_json(data.get("instruction", data.get("prompt")), "instruction")
    completions = data["completions"]
    if not isinstance(completions, list) or not completions:
        raise FieldProblem("completions", "must be a non-empty list")
    row_scale = _scale(data.get("scale"), scale or ULTRAFEEDBACK_SCALE)
    out = []
    for i, completion in enumerate(completions):
        where = f"completions[{i}]"
        if not isinstance(completion, Mapping):
            raise FieldProblem(where, "must be an object")
        annotations = completion.get("annotations")
        if not isinstance(annotations, Mapping) or not annotations:
            raise FieldProblem(f"{where}.annotations", "must be an object {aspect: {'Rating': ...}}")
        attributes = {}
        for aspect, note in annotations.items():
            rating = note.get("Rating") if isinstance(note, Mapping) else note
            attributes[str(aspect)] = _value(rating, f"{where}.annotations.{aspect}.Rating", row_scale)
        if any(v is not None for v in attributes.values()):
            out.append(RatedResponse(prompt, _text(completion.get("response"), f"{where}.response"), attributes,
                                     row_scale, str(data.get("source", "")), str(completion.get("model", ""))))
    return out


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldProblem(where, "must be non-empty text")
    return value


def _scale(value, default) -> tuple[float, float]:
    if value is None:
        if default is None:
            raise FieldProblem("scale", "is missing; give [low, high] in the row or pass a scale (--scale LO,HI)")
        return (float(default[0]), float(default[1]))
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) or value[0] >= value[1]):
        raise FieldProblem("scale", f"must be [low, high] with low < high, got {value!r}")
    return (float(value[0]), float(value[1]))


def _value(value, where: str, scale: tuple[float, float]) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().upper() in ("", "N/A")):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise FieldProblem(where, f"must be a number, null or 'N/A', got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FieldProblem(where, f"must be a finite number, null or 'N/A', got {value!r}")
    if not scale[0] <= value <= scale[1]:
        raise FieldProblem(where, f"{value:g} is outside the declared scale [{scale[0]:g}, {scale[1]:g}]")
    return float(value)


def _label(source: Any) -> str:
    parts = split_source(source)
    return ", ".join(str(p) if isinstance(p, str) else f"<{type(p).__name__}>" for p in parts)
