"""Sources (files, or data in memory: see sources.py) → validated `PreferencePair` /
`ResponsePair` lists, and records → files.

Strict by default: the first bad row raises a `DataError` naming file and line (or row index)
and field.
With `skip_invalid=True` every bad row is written, untouched, with its reason to a
sidecar JSONL file, and loading goes on: nothing is lost silently.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from rewardkit.data.formats import FORMATS, FieldProblem, detect_format
from rewardkit.data.readers import RawRow, file_kind
from rewardkit.data.sources import iter_source, source_label, split_source
from rewardkit.errors import DataError
from rewardkit.files import cannot_write, replace_with, replacing
from rewardkit.types import PreferencePair, ResponsePair, prompt_to_json


@dataclass
class LoadResult:
    records: list = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)  # file → detected shape
    counts: dict[str, int] = field(default_factory=dict)  # file → records read
    rejected: int = 0
    rejected_path: str | None = None
    problems: list[str] = field(default_factory=list)  # first few rejection messages


def default_rejected_path(path: str | Path) -> Path:
    stem = "in_memory" if str(path).startswith("<") else Path(path).stem
    return Path.cwd() / f"{stem}.rejected.jsonl"


def load_pairs(source: Any, format: str = "auto", *,
               skip_invalid: bool = False, rejected_path: str | Path | None = None) -> LoadResult:
    """Read labeled pairs from files or in-memory data (shapes auto-detected per file / list)."""
    return _load(split_source(source), format, skip_invalid, rejected_path, want=PreferencePair)


def load_response_pairs(source: Any, format: str = "auto", *, seed: int = 0,
                        skip_invalid: bool = False, rejected_path: str | Path | None = None) -> LoadResult:
    """Read unlabeled pairs; labeled ones are read too, their label dropped and the two
    responses put in a seeded random order (so position carries no label information)."""
    result = _load(split_source(source), format, skip_invalid, rejected_path, want=None)
    rng = random.Random(seed)
    result.records = [_unlabel(r, rng) for r in result.records]
    return result


def load_hidden_labels(source: Any, format: str = "auto", *, seed: int = 0) -> tuple[list[ResponsePair], list]:
    """(pairs, hidden): the pairs exactly as `load_response_pairs` gives them, and beside them
    whether response_a is the labeled better answer (None for a row that had no label). The
    labels are for reports only (e.g. pseudo-label accuracy): keep them away from training."""
    result = _load(split_source(source), format, False, None, want=None)
    rng = random.Random(seed)
    pairs, hidden = [], []
    for record in result.records:
        pair = _unlabel(record, rng)
        pairs.append(pair)
        hidden.append(None if isinstance(record, ResponsePair) else pair.response_a == record.chosen)
    return pairs, hidden


def _unlabel(record, rng: random.Random) -> ResponsePair:
    if isinstance(record, ResponsePair):
        return record
    a, b = (record.chosen, record.rejected) if rng.random() < 0.5 else (record.rejected, record.chosen)
    return ResponsePair(record.prompt, a, b, record.id, record.source, record.subset)


def _load(parts: list, format: str, skip_invalid: bool, rejected_path, want) -> LoadResult:
    if format != "auto" and format not in FORMATS:
        raise DataError(source_label(parts[0]) if parts else "-", None, None,
                        f"unknown format '{format}'; choose auto or one of {', '.join(FORMATS)}")
    result = LoadResult()
    sidecar = None
    # the sidecar replaces its path only when loading ends without an error: never half a file
    with contextlib.ExitStack() as closing:
        for part in parts:
            path = source_label(part)
            shape = format
            count_before = len(result.records)
            rows = iter_source(part)
            if shape == "auto":
                shape, rows = _file_shape(rows)
            for index, row in enumerate(rows):
                if not isinstance(row, RawRow):  # a record passed in memory
                    result.records.append(_checked_record(row, path, index, want))
                    continue
                try:
                    records = _parse_row(row, shape, want)
                except DataError as exc:
                    if not skip_invalid:
                        raise
                    if sidecar is None:
                        target = Path(rejected_path) if rejected_path else default_rejected_path(path)
                        sidecar = _open_sidecar(target, closing)
                        result.rejected_path = str(target)
                    # ASCII escapes: a raw row may hold text no encoder accepts (lone surrogates)
                    sidecar.write(json.dumps({"file": exc.path, "line": exc.line, "field": exc.field,
                                              "reason": exc.reason, "raw": row.raw}, ensure_ascii=True) + "\n")
                    result.rejected += 1
                    if len(result.problems) < 20:
                        result.problems.append(str(exc))
                    continue
                result.records.extend(records)
            result.formats[str(path)] = shape
            result.counts[str(path)] = len(result.records) - count_before
    return result


SHAPE_SAMPLE = 64  # rows that decide a file's shape


def _file_shape(rows) -> tuple[str, Iterable]:
    """(shape, the same rows): the shape most of the first SHAPE_SAMPLE readable rows have (the
    earliest on a tie), so that one bad or odd row — even the first — is rejected as itself and
    does not decide how every other row is read."""
    rows, head, votes = iter(rows), [], {}
    for row in rows:
        head.append(row)
        if isinstance(row, RawRow) and not row.parse_error:
            shape = detect_format(row.data)
            if shape:
                votes[shape] = votes.get(shape, 0) + 1
        if len(head) >= SHAPE_SAMPLE:
            break
    shape = max(votes, key=lambda k: (votes[k], -list(votes).index(k))) if votes else "auto"
    return shape, itertools.chain(head, rows)


def _open_sidecar(target: Path, closing: contextlib.ExitStack):
    return closing.enter_context(_sidecar_file(target))


@contextlib.contextmanager
def _sidecar_file(target: Path):
    try:
        with replacing(target) as handle:
            yield handle
    except OSError as exc:  # unwritable, or a full disk while writing: the run stops, no partial sidecar stays
        raise DataError(str(target), None, None, f"cannot write the rejected rows here: {cannot_write(target, exc)}") from None


def _checked_record(record, path: str, index: int, want):
    if want is PreferencePair and not isinstance(record, PreferencePair):
        raise DataError(path, index, None, "this record is unlabeled (ResponsePair); a labeled pair is needed",
                        in_memory=True)
    return record


def _parse_row(row: RawRow, shape: str, want) -> list:
    def problem(field, message):
        return DataError(row.path, row.line, field, message, in_memory=row.in_memory)

    if row.parse_error:
        raise problem(None, row.parse_error)
    if not isinstance(row.data, dict):
        raise problem(None, f"a row must be a JSON object, got {type(row.data).__name__}")
    if shape == "auto":
        raise problem(None, f"cannot tell the row's shape from its keys {sorted(row.data)[:8]}; "
                            "pass format= one of " + ", ".join(FORMATS))
    if want is PreferencePair and shape == "unlabeled":
        raise problem(None, "this row is unlabeled (response_a/response_b); a labeled pair needs chosen/rejected")
    try:
        return FORMATS[shape](row.data)
    except FieldProblem as exc:
        raise problem(exc.field, str(exc)) from None


def record_to_row(record: PreferencePair | ResponsePair) -> dict:
    if isinstance(record, ResponsePair):
        row = {"prompt": prompt_to_json(record.prompt), "response_a": record.response_a, "response_b": record.response_b}
    else:
        row = {"prompt": prompt_to_json(record.prompt), "chosen": record.chosen, "rejected": record.rejected}
        if record.margin is not None:
            row["margin"] = record.margin
        row.update({k: v for k, v in record.extra.items() if k not in row})
    row["source"], row["subset"] = record.source, record.subset
    if record.id is not None:
        row["id"] = record.id
    return row


def write_pairs(path: str | Path, records: Iterable[PreferencePair | ResponsePair]) -> int:
    """Write records in the canonical schema; the file type follows the suffix. Atomic: the
    rows go to a temp file that replaces `path` only when complete, and is removed on failure."""
    path = Path(path)
    kind = file_kind(path)
    rows = [record_to_row(r) for r in records]
    try:
        replace_with(path, lambda temp: _write_rows(temp, kind, rows))
    except OSError as exc:
        raise DataError(str(path), None, None, f"cannot write: {cannot_write(path, exc)}") from None
    return len(rows)


def _write_rows(tmp: Path, kind: str, rows: list[dict]) -> None:
    if kind == "jsonl":
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif kind == "json":
        tmp.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    elif kind == "csv":
        _write_csv(tmp, rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = _columns(rows)  # from_pylist would take the columns of the first row only
        flat = [{k: _cell(r.get(k)) for k in columns} for r in rows]
        pq.write_table(pa.Table.from_pylist(_parquet_safe(flat, columns)), tmp)


def _parquet_safe(rows: list[dict], columns: list[str]) -> list[dict]:
    """Parquet columns hold one type: a column mixing types (an extra field that is a number in
    one row and text in another) or an integer beyond int64 is stored as JSON text instead."""
    for column in columns:
        values = [r[column] for r in rows if r[column] is not None]
        kinds = {type(v) for v in values}
        if len(kinds) > 1 or any(isinstance(v, int) and not -2**63 <= v < 2**63 for v in values):
            for r in rows:
                if r[column] is not None:
                    r[column] = json.dumps(r[column], ensure_ascii=False)
    return rows


def _columns(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def _cell(value):
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_columns(rows))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
