"""Raw rows out of files: JSONL, JSON, CSV and Parquet.

Each row comes with its location (1-based line for JSONL/CSV, 1-based record number for
JSON and Parquet) and its untouched source text where the format has one, so that a
rejected row can be written back exactly as it was read. This module knows nothing of
preference data; `formats.py` interprets the rows.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from rewardkit.errors import DataError

SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class RawRow:
    path: str
    line: int
    data: Any  # the parsed value; None when the row could not be parsed
    raw: str | None  # source text, for the rejected-rows sidecar
    parse_error: str | None = None
    in_memory: bool = False  # `line` is then a 0-based index into a list or dataset


def file_kind(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(str(path), None, None,
                        f"unknown file type '{suffix}'; use one of {', '.join(sorted(SUFFIXES))}")
    return SUFFIXES[suffix]


def iter_raw_rows(path: str | Path) -> Iterator[RawRow]:
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, None, "no such file")
    reader = {"jsonl": _jsonl, "json": _json, "csv": _csv, "parquet": _parquet}[file_kind(path)]
    yield from reader(path)


def iter_objects(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line, object) for each row of any supported file; the first unreadable row raises a
    DataError naming file and line. For small side files (prompts, candidates, references)."""
    for row in iter_raw_rows(path):
        if row.parse_error:
            raise DataError(row.path, row.line, None, row.parse_error)
        if not isinstance(row.data, dict):
            raise DataError(row.path, row.line, None, f"a row must be a JSON object, got {type(row.data).__name__}")
        yield row.line, row.data


def _jsonl(path: Path) -> Iterator[RawRow]:
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            stripped = text.strip()
            if not stripped:
                continue
            try:
                yield RawRow(str(path), number, json.loads(stripped), text.rstrip("\n"))
            except json.JSONDecodeError as exc:
                yield RawRow(str(path), number, None, text.rstrip("\n"), f"invalid JSON: {exc.msg} at column {exc.colno}")


def _json(path: Path) -> Iterator[RawRow]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(str(path), exc.lineno, None, f"invalid JSON: {exc.msg}") from None
    if isinstance(document, dict):  # {"data": [...]} or {"rows": [...]} wrappers are common
        lists = [v for v in document.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(str(path), None, None, "a JSON file must hold a list of rows (or one object with a single list)")
        document = lists[0]
    if not isinstance(document, list):
        raise DataError(str(path), None, None, f"a JSON file must hold a list of rows, got {type(document).__name__}")
    for number, item in enumerate(document, start=1):
        yield RawRow(str(path), number, item, json.dumps(item, ensure_ascii=False))


def _csv(path: Path) -> Iterator[RawRow]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        start = 2
        for row in reader:
            # cells holding JSON (message lists, objects) are decoded; plain text stays text
            data = {k: _maybe_json(v) for k, v in row.items() if k is not None}
            yield RawRow(str(path), start, data, json.dumps(row, ensure_ascii=False))
            start = reader.line_num + 1


def _maybe_json(cell: str | None) -> Any:
    if cell is None or cell == "":
        return None  # CSV cannot tell an empty cell from a missing value
    text = cell.strip()
    if text[:1] in "[{":
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return cell
        if _message_like(value):  # only chat structures; a response that happens to be JSON stays text
            return value
    return cell


def _message_like(value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(
        isinstance(m, dict) and ({"role", "content"} <= m.keys() or {"from", "value"} <= m.keys()) for m in items)


def _parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    number = 0
    for batch in table.to_batches():
        for row in batch.to_pylist():
            number += 1
            data = {k: _maybe_json(v) if isinstance(v, str) else v for k, v in row.items()}
            yield RawRow(str(path), number, data, json.dumps(row, ensure_ascii=False, default=str))
