"""Where records come from: files, or data already in memory.

A *source* is what training, evaluation and the recipes accept as data:
  - a file path, or a list of them (JSONL, JSON, CSV, Parquet; see readers.py)
  - a list of records (`PreferencePair` / `ResponsePair`) or of row dicts
  - a `datasets.Dataset` (rows are dicts), or a folder written by `Dataset.save_to_disk`
  - a Hugging Face dataset id, `owner/name` or `owner/name:split` (needs `datasets` and the hub)
In-memory rows are located by index (`rows[3]`) where file rows are located by line, so a bad
row gets the same error either way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from rewardkit.data.readers import SUFFIXES, RawRow, iter_raw_rows, unicode_problem
from rewardkit.errors import DataError
from rewardkit.types import PreferencePair, ResponsePair

RECORD_TYPES = (PreferencePair, ResponsePair)


def is_path_like(value: Any) -> bool:
    return isinstance(value, str) or hasattr(value, "__fspath__")


def split_source(source: Any) -> list[Any]:
    """The source as a list of parts, each a path, a dataset or an in-memory list."""
    if is_path_like(source):
        return [source]
    if isinstance(source, (list, tuple)) and source and all(is_path_like(s) for s in source):
        return list(source)
    return [source]


def iter_source(part: Any) -> Iterator[RawRow | Any]:
    """Raw rows (to be parsed) of one part, or records passed through as they are."""
    if is_path_like(part):
        dataset = _dataset_at(str(part))
        if dataset is None:
            yield from iter_raw_rows(part)
            return
        part = dataset
    label = source_label(part)
    rows = _rows_of(part, label)
    for index, row in enumerate(rows):
        if isinstance(row, RECORD_TYPES):
            yield row
        else:
            yield RawRow(label, index, row, _raw_text(row), unicode_problem(row), in_memory=True)


def source_label(part: Any) -> str:
    """How errors name an in-memory part (`<list>`, `<Dataset>`) or a file (its path)."""
    if is_path_like(part):
        return str(part)
    return f"<{type(part).__name__}>"


def _rows_of(part: Any, label: str):
    if hasattr(part, "column_names") and hasattr(part, "__iter__") and not isinstance(part, (list, tuple)):
        if isinstance(part.column_names, dict):  # a DatasetDict: ambiguous
            raise DataError(label, None, None, f"a DatasetDict; pick a split, e.g. data['train'] "
                                               f"(splits: {', '.join(part.column_names)})")
        return part  # a datasets.Dataset iterates as dicts
    if isinstance(part, (list, tuple)):
        return part
    raise DataError(label, None, None, "data must be a file path (or a list of them), a list of records or dicts, "
                                       f"or a datasets.Dataset; got {type(part).__name__}")


def _raw_text(row: Any) -> str:
    try:
        return json.dumps(row, ensure_ascii=True, default=str)
    except (TypeError, ValueError):
        return repr(row)


def _dataset_at(text: str) -> Any | None:
    """A datasets object for a `save_to_disk` folder or a hub id; None for an ordinary file path."""
    path = Path(text)
    if path.is_dir():
        if not any((path / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json")):
            raise DataError(text, None, None, "a directory, not a data file or a datasets.save_to_disk folder")
        return _datasets(text).load_from_disk(text)
    if path.suffix.lower() in SUFFIXES or path.exists() or text.count("/") != 1 or text.startswith((".", "/")):
        return None  # a file path: readers.py reports it if it is missing
    name, _, split = text.partition(":")
    try:
        return _datasets(text).load_dataset(name, split=split or "train")
    except Exception as exc:  # noqa: BLE001 - the hub client raises many kinds; all mean "cannot load"
        raise DataError(text, None, None, f"not a file, and datasets could not load it as a hub dataset "
                                          f"({type(exc).__name__}: {str(exc)[:200]})") from None


def _datasets(where: str):
    try:
        import datasets
    except ImportError:
        raise DataError(where, None, None, "reading a datasets folder or hub id needs the 'datasets' package: "
                                           "pip install 'rewardkit[datasets]'") from None
    return datasets
