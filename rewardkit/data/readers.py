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
    try:
        yield from reader(path)
    except OSError as exc:  # an I/O error mid-file (EIO, a device or /proc file that refuses reads)
        raise DataError(str(path), None, None, f"cannot be read: {exc.strerror or exc}") from None


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
    """Rows split on "\n" only: a lone "\r" is JSON whitespace inside a row, not a row end.
    Each row is decoded on its own, so one bad byte rejects one row."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.decode("utf-8", "surrogateescape").rstrip("\n")
            if number == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip(" \t\r"):  # blank lines (ASCII whitespace only) are not rows
                continue
            yield _json_row(str(path), number, text)


def _json_row(path: str, number: int, text: str) -> RawRow:
    problem = undecodable(text)
    if problem:
        return RawRow(path, number, None, text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"),
                      problem)
    try:
        data = json.loads(text)
        return RawRow(path, number, data, text, unicode_problem(data))
    except json.JSONDecodeError as exc:
        return RawRow(path, number, None, text, f"invalid JSON: {exc.msg} at column {exc.colno}")
    except RecursionError:
        return RawRow(path, number, None, text, "invalid JSON: nested too deeply")
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        return RawRow(path, number, None, text, f"invalid JSON: {str(exc)[:120]}")


def undecodable(text: str) -> str | None:
    """A reason when `text` holds bytes that were not UTF-8 (decoded with surrogateescape) or
    lone surrogates (JSON escapes such as "\\ud800"): neither is text a tokenizer can take."""
    try:
        text.encode("utf-8")  # fails exactly on surrogates; the common case costs no Python loop
        return None
    except UnicodeEncodeError:
        pass
    for index, char in enumerate(text):
        if "\udc80" <= char <= "\udcff":
            return f"invalid UTF-8 (byte 0x{ord(char) - 0xDC00:02x} at character {index})"
        if "\ud800" <= char <= "\udfff":
            return f"a lone surrogate (U+{ord(char):04X}) at character {index} is not valid Unicode text"
    return None


def _json(path: Path) -> Iterator[RawRow]:
    """A JSON file is one document: a problem with it stops the load (no row can be skipped)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataError(str(path), None, None, f"invalid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise DataError(str(path), exc.lineno, None, f"invalid JSON: {exc.msg}") from None
    except (RecursionError, ValueError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise DataError(str(path), None, None, f"invalid JSON: {reason}") from None
    if isinstance(document, dict):  # {"data": [...]} or {"rows": [...]} wrappers are common
        lists = [v for v in document.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(str(path), None, None, "a JSON file must hold a list of rows (or one object with a single list)")
        document = lists[0]
    if not isinstance(document, list):
        raise DataError(str(path), None, None, f"a JSON file must hold a list of rows, got {type(document).__name__}")
    for number, item in enumerate(document, start=1):
        raw = json.dumps(item, ensure_ascii=True)  # ASCII: lone surrogates survive as escapes
        yield RawRow(str(path), number, item, raw, unicode_problem(item))


def unicode_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return undecodable(value)
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in (*children, *(value.keys() if isinstance(value, dict) else ())):
        problem = unicode_problem(child)
        if problem:
            return problem
    return None


def _csv(path: Path) -> Iterator[RawRow]:
    """A byte-order mark (Excel's "CSV UTF-8") is dropped; bad bytes reject their row only; a
    duplicate or missing header, or a row with more cells than the header, is never guessed."""
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        yield from _csv_rows(path, csv.reader(handle))


def _csv_rows(path: Path, reader) -> Iterator[RawRow]:
    try:
        header = next(reader, None)
        if not header:
            return
        duplicates = sorted({h for h in header if header.count(h) > 1})
        if duplicates:
            raise DataError(str(path), 1, duplicates[0], "appears more than once in the header")
        start = 2
        for cells in reader:
            yield _csv_row(str(path), start, header, cells)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(str(path), reader.line_num, None, f"unreadable CSV: {exc}") from None


def _csv_row(path: str, number: int, header: list[str], cells: list[str]) -> RawRow:
    raw = json.dumps(cells, ensure_ascii=True)
    if not any(cells):
        return RawRow(path, number, None, raw, "an empty row")
    problem = undecodable("".join(cells))
    if problem:
        return RawRow(path, number, None, raw, problem)
    if len(cells) != len(header):
        return RawRow(path, number, None, raw, f"the row has {len(cells)} cells, the header {len(header)}")
    # cells holding JSON message lists are decoded; plain text stays text
    return RawRow(path, number, _rmbench_lists({k: _maybe_json(v) for k, v in zip(header, cells)}), raw)


def _rmbench_lists(data: dict) -> dict:
    """RM-Bench rows keep one response per style: when both `chosen` and `rejected` hold JSON
    lists of strings they are that shape, not answers that happen to look like JSON."""
    decoded = {}
    for key in ("chosen", "rejected"):
        text = data.get(key)
        try:
            value = json.loads(text) if isinstance(text, str) and text.lstrip().startswith("[") else None
        except (ValueError, RecursionError):  # not JSON, nested past Python's limit, or an over-long integer
            value = None
        if not _text_list(value):
            return data
        decoded[key] = value
    return {**data, **decoded}


def _maybe_json(cell: str | None) -> Any:
    if cell is None or cell == "":
        return None  # CSV cannot tell an empty cell from a missing value
    text = cell.strip()
    if text[:1] in "[{":
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, nested past Python's limit, or an over-long integer: text
            return cell
        if _message_like(value):  # only chat structures; a response that happens to be JSON stays text
            return value
    return cell


def _message_like(value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(
        isinstance(m, dict) and ({"role", "content"} <= m.keys() or {"from", "value"} <= m.keys()) for m in items)


def _text_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(str(path), None, None, f"unreadable Parquet: {str(exc)[:200]}") from None
    number = 0
    for batch in table.to_batches():
        for row in batch.to_pylist():
            number += 1
            converted, problem = {}, None
            for key, value in row.items():
                try:
                    converted[key] = _jsonable(value)
                except _NotText as exc:
                    problem = problem or f"column '{key}': {exc}"
            if problem:
                yield RawRow(str(path), number, None, json.dumps(row, ensure_ascii=True, default=repr), problem)
                continue
            row = converted
            data = _rmbench_lists({k: _maybe_json(v) if isinstance(v, str) else v for k, v in row.items()})
            yield RawRow(str(path), number, data, json.dumps(row, ensure_ascii=True), unicode_problem(row))


class _NotText(ValueError):
    pass


def _jsonable(value: Any) -> Any:
    """A Parquet cell as JSON can hold it: timestamps, dates and times as ISO 8601 text, decimals
    as numbers, durations as seconds, binary as its UTF-8 text (binary that is not text is a
    problem of its row, not a crash when the row is written out)."""
    import datetime
    import decimal

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and value.is_finite() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise _NotText("a binary cell that is not UTF-8 text") from None
    return value
