"""Decontamination: which evaluation rows also appear in training data.

Two tests, on the prompt's text: an exact match after normalising (case, punctuation and
whitespace ignored), and a shared run of `ngram` words (13 by default, the length GPT-3's
decontamination used) — which catches a prompt quoted inside a longer one, or re-wrapped with a
different instruction. A prompt shorter than `ngram` words is tested by the exact match only.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from rewardkit.data.load import load_response_pairs
from rewardkit.types import prompt_to_text

NGRAM = 13
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _grams(tokens: list[str], n: int) -> set[int]:
    return {hash(tuple(tokens[i:i + n])) for i in range(len(tokens) - n + 1)}


@dataclass
class OverlapIndex:
    """The prompts of the training files, ready to test rows against."""

    ngram: int = NGRAM
    exact: dict[str, set[str]] = field(default_factory=dict)  # normalised prompt → training files
    grams: dict[int, set[str]] = field(default_factory=dict)  # n-gram → training files
    files: list[str] = field(default_factory=list)

    @classmethod
    def from_files(cls, paths, ngram: int = NGRAM) -> "OverlapIndex":
        index = cls(ngram=ngram, files=[str(p) for p in paths])
        for path in index.files:
            for pair in load_response_pairs(path).records:  # labeled or not, the prompt is what counts
                index.add(prompt_to_text(pair.prompt), path)
        return index

    def add(self, prompt: str, source: str) -> None:
        tokens = words(prompt)
        self.exact.setdefault(" ".join(tokens), set()).add(source)
        for gram in _grams(tokens, self.ngram):
            self.grams.setdefault(gram, set()).add(source)

    def match(self, prompt: str) -> tuple[set[str], set[str]]:
        """(training files with the same prompt, training files sharing an n-gram with it)."""
        tokens = words(prompt)
        exact = set(self.exact.get(" ".join(tokens), ()))
        shared: set[str] = set()
        for gram in _grams(tokens, self.ngram):
            shared |= self.grams.get(gram, set())
        return exact, shared

    def contaminated(self, prompt: str) -> bool:
        exact, shared = self.match(prompt)
        return bool(exact or shared)


def overlap_report(index: OverlapIndex, eval_paths) -> dict:
    """Per evaluation file: rows, rows whose prompt a training file has exactly, rows sharing an
    n-gram, rows with either (contaminated), and how many each training file accounts for."""
    report = {"ngram": index.ngram, "train": index.files, "eval": {}}
    for path in eval_paths:
        pairs = load_response_pairs(path).records
        entry = {"rows": len(pairs), "exact": 0, "ngram": 0, "contaminated": 0,
                 "by_train_file": {f: 0 for f in index.files}}
        for pair in pairs:
            exact, shared = index.match(prompt_to_text(pair.prompt))
            entry["exact"] += bool(exact)
            entry["ngram"] += bool(shared)
            entry["contaminated"] += bool(exact or shared)
            for source in exact | shared:
                entry["by_train_file"][source] += 1
        report["eval"][str(Path(path))] = entry
    return report


def warn_if_overlapping(pool_paths, eval_paths, what: str, ngram: int = NGRAM) -> str | None:
    """Warn (ContaminationWarning) when rows of `eval_paths` also appear in the pool, and return
    the message (None when clean) — for recipes that draw from a pool and evaluate on other
    files (self-train, distill, select)."""
    pool_paths = [p for p in pool_paths or [] if isinstance(p, (str, Path))]  # data in memory is not a file to check
    eval_paths = [p for p in eval_paths or [] if isinstance(p, (str, Path))]
    if not pool_paths or not eval_paths:
        return None
    report = overlap_report(OverlapIndex.from_files(pool_paths, ngram), eval_paths)
    hits = {path: e["contaminated"] for path, e in report["eval"].items() if e["contaminated"]}
    if not hits:
        return None
    listed = ", ".join(f"{n} of {report['eval'][p]['rows']} rows of {p}" for p, n in hits.items())
    message = (f"{what} overlaps the evaluation data: {listed} share a prompt or a {ngram}-word run with it; "
               "figures on those rows measure memory, not generalisation (see `rewardkit data overlap`)")
    warnings.warn(message, ContaminationWarning, stacklevel=2)
    return message


class ContaminationWarning(UserWarning):
    """Training data that holds evaluation prompts."""
