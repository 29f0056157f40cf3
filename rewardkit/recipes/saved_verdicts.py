"""A judge's verdicts on a list of pairs, saved before anything trains on them.

Scoring a pool of thousands of pairs with a judge takes tens of minutes on a CPU; the
training that follows can crash. Self-training and distillation therefore write the verdicts
to a JSON file first (atomically) and, on a rerun, reuse them only when the file's fingerprint
matches: the same pairs, in the same order, from the same judge. Anything else is scored again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

from rewardkit.files import write_text
from rewardkit.scoring.distributed import from_writer, is_writer, sharded_scoring, wait_for_writer


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


def judge_key(pairs: Sequence, judge: str, max_length: int | None) -> str:
    """The fingerprint of `judge`'s verdicts on `pairs`: the pairs, the judge's weights, its
    self-training record when it is a self-training round, and the scoring length."""
    record = Path(judge) / "self_training.json"
    return fingerprint(pairs, record.read_text(encoding="utf-8") if record.is_file() else "", weights_identity(judge),
                       f"max_length={max_length}")


def load_or_score(file: Path, key: str, count: int, score: Callable[[], list[float]], *,
                  elsewhere: Sequence[Path] = ()) -> tuple[list[float], bool]:
    """(P(first is better) per pair, whether they were saved before). Looks in `file`, then in
    `elsewhere` (verdicts another recipe saved); scores and saves into `file` when none is of
    this fingerprint and length.

    Under torchrun the processes share the scoring (`sharded_scoring`, the same numbers as one
    process); rank 0 alone reads, decides for all and writes, so saved verdicts are reused
    whatever the number of processes that scored them and that reads them now."""
    found = from_writer(_saved(file, key, count, elsewhere) if is_writer() else None)
    if found is not None:
        probabilities, candidate = found
        if candidate != str(file) and is_writer():
            write_atomic(file, json.dumps({"fingerprint": key, "p_first": probabilities}))
        wait_for_writer()
        return probabilities, True
    with sharded_scoring():
        probabilities = [float(p) for p in score()]
    if is_writer():
        write_atomic(file, json.dumps({"fingerprint": key, "p_first": probabilities}))
    wait_for_writer()
    return probabilities, False


def _saved(file: Path, key: str, count: int, elsewhere: Sequence[Path]) -> tuple[list[float], str] | None:
    """(the saved verdicts, the file they were in) of this fingerprint and length, or None."""
    for candidate in (file, *elsewhere):
        try:
            record = json.loads(candidate.read_text(encoding="utf-8")) if candidate.is_file() else {}
        except (OSError, ValueError):
            record = {}
        if record.get("fingerprint") == key and len(record.get("p_first", [])) == count:
            return [float(p) for p in record["p_first"]], str(candidate)
    return None


def write_atomic(path: Path, text: str) -> None:
    write_text(path, text)
