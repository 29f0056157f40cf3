"""What is in a preference file: shape, counts, subsets, token lengths, problems."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from rewardkit.data.load import load_pairs
from rewardkit.data.templates import PromptTemplate, default_judge_template
from rewardkit.data.tokenize import SegmentEncoder
from rewardkit.types import prompt_to_text

PERCENTILES = (50, 90, 95, 99, 100)


def inspect_file(path: str | Path, format: str = "auto", tokenizer=None,
                 template: PromptTemplate | None = None, max_length: int | None = None) -> dict:
    """A summary dict; bad rows are counted and described, never raised."""
    result = load_pairs(path, format, skip_invalid=True, rejected_path=os.devnull)
    pairs = result.records
    seen = Counter((prompt_to_text(p.prompt), p.chosen, p.rejected) for p in pairs)
    report = {
        "file": str(path),
        "format": result.formats.get(str(path), format),
        "pairs": len(pairs),
        "invalid_rows": result.rejected,
        "problems": list(result.problems),
        "duplicates": sum(n - 1 for n in seen.values() if n > 1),
        "subsets": dict(sorted(Counter(p.subset or "(none)" for p in pairs).items())),
        "sources": dict(sorted(Counter(p.source or "(none)" for p in pairs).items())),
        "multi_turn": sum(1 for p in pairs if isinstance(p.prompt, tuple) and len(p.prompt) > 1),
        "chosen_longer": chosen_longer_share(pairs),
    }
    if report["duplicates"]:
        report["problems"].append(f"{report['duplicates']} duplicate (prompt, chosen, rejected) rows")
    share = report["chosen_longer"]
    if share is not None and abs(share - 0.5) > LENGTH_SHORTCUT:
        report["problems"].append(f"the chosen answer is the longer one in {share:.0%} of the pairs: a judge trained on "
                                  "this file can learn answer length instead of content")
    if tokenizer is not None and pairs:
        report["tokens"] = _token_lengths(pairs, tokenizer, template or default_judge_template(), max_length)
        limit = max_length or getattr(tokenizer, "model_max_length", None)
        if limit and limit < 10**7:
            over = report["tokens"]["judge_prompt_over_limit"]
            if over:
                report["problems"].append(f"{over} judge prompts exceed {limit} tokens and will be truncated")
    return report


LENGTH_SHORTCUT = 0.15  # chosen longer in more than 65% (or under 35%) of the pairs: length predicts the label


def chosen_longer_share(pairs) -> float | None:
    """Share of the pairs (of those whose answers differ in length, in characters) where the
    chosen answer is the longer one. Far from 0.5, "pick the longer (shorter) answer" is a
    shortcut a judge trained on the file can learn instead of content."""
    differ = [len(p.chosen) > len(p.rejected) for p in pairs if len(p.chosen) != len(p.rejected)]
    return sum(differ) / len(differ) if differ else None


def _token_lengths(pairs, tokenizer, template: PromptTemplate, max_length: int | None) -> dict:
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    lengths = {"prompt": [], "chosen": [], "rejected": []}
    for pair in pairs:
        lengths["prompt"].append(count(prompt_to_text(pair.prompt)))
        lengths["chosen"].append(count(pair.chosen))
        lengths["rejected"].append(count(pair.rejected))
    fixed = SegmentEncoder(tokenizer, template, max_length=10**9).fixed_length
    judge = [fixed + p + c + r for p, c, r in zip(lengths["prompt"], lengths["chosen"], lengths["rejected"])]
    lengths["judge_prompt"] = judge
    out = {name: {f"p{q}": int(np.percentile(values, q)) for q in PERCENTILES} for name, values in lengths.items()}
    limit = max_length or getattr(tokenizer, "model_max_length", 10**9)
    out["judge_prompt_over_limit"] = int(sum(1 for n in judge if n > limit))
    return out
