"""A judge's verdicts on a list of pairs, saved before anything trains on them.

Scoring a pool of thousands of pairs with a judge takes tens of minutes on a CPU; the
training that follows can crash. Self-training and distillation therefore write the verdicts
to a JSON file first (atomically) and, on a rerun, reuse them only when the file's fingerprint
matches: the same pairs, in the same order, from the same judge. Anything else is scored again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence


def fingerprint(pairs: Sequence, *judge_identity: str) -> str:
    """sha256 over the pairs' texts (prompt, response_a, response_b) and what identifies the judge."""
    digest = hashlib.sha256()
    for pair in pairs:
        for text in (str(pair.prompt), pair.response_a, pair.response_b):
            digest.update(text.encode("utf-8"))
            digest.update(b"\x00")
    for part in judge_identity:
        digest.update(b"\x01" + part.encode("utf-8"))
    return digest.hexdigest()


def weights_identity(model_path: str) -> str:
    """What identifies a model directory's weights: the sha256 of every .safetensors file in it
    (a retrained judge in the same directory has another); for anything else, the path."""
    directory = Path(model_path)
    files = sorted(directory.glob("*.safetensors")) if directory.is_dir() else []
    if not files:
        return f"path:{model_path}"
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode("utf-8"))
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()


def load_or_score(file: Path, key: str, count: int, score: Callable[[], list[float]]) -> tuple[list[float], bool]:
    """(P(first is better) per pair, whether they came from `file`). Scores and saves when the
    file is missing, unreadable, of another fingerprint or of another length."""
    if file.is_file():
        try:
            record = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        if record.get("fingerprint") == key and len(record.get("p_first", [])) == count:
            return [float(p) for p in record["p_first"]], True
    probabilities = [float(p) for p in score()]
    write_atomic(file, json.dumps({"fingerprint": key, "p_first": probabilities}))
    return probabilities, False


def write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
