"""Evaluate a reward model on labeled pair files: per-pair scores and the summary metrics."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from rewardkit.data import load_pairs
from rewardkit.eval import metrics
from rewardkit.eval.rewardbench import section_scores
from rewardkit.types import prompt_to_text


def score_pairs(scorer, pairs, *, both_orders: bool = True, chunk: int = 64,
                progress: Callable[[int], None] | None = None) -> list[dict]:
    """One row per pair: p_chosen (P(chosen better)), and both single-order probabilities."""
    rows = []
    for start in range(0, len(pairs), chunk):
        part = pairs[start:start + chunk]
        details = scorer.compare_details([p.prompt for p in part], [p.chosen for p in part],
                                         [p.rejected for p in part], both_orders=both_orders)
        for pair, d in zip(part, details):
            rows.append({"id": pair.id, "source": pair.source, "subset": pair.subset, "p_chosen": d.probability,
                         "p_chosen_first": d.p_ab, "p_chosen_second": d.p_ba,
                         "chosen_chars": len(pair.chosen), "rejected_chars": len(pair.rejected),
                         "prompt": prompt_to_text(pair.prompt)[:200]})
        if progress:
            progress(len(part))
    return rows


def summarise(rows: list[dict]) -> dict:
    p = [r["p_chosen"] for r in rows]
    out = {
        "num_pairs": len(rows),
        "accuracy": metrics.accuracy(p),
        "position_consistency": metrics.position_consistency([r["p_chosen_first"] for r in rows],
                                                             [r["p_chosen_second"] for r in rows]),
        "ece": metrics.expected_calibration_error(p),
        "brier": metrics.brier(p),
        "length_bias": metrics.length_bias(p, [r["chosen_chars"] for r in rows], [r["rejected_chars"] for r in rows]),
    }
    return out


def evaluate_files(scorer, paths: Sequence[str | Path], *, max_pairs: int | None = None, seed: int = 0,
                   both_orders: bool = True, progress: Callable[[int], None] | None = None) -> tuple[dict, list[dict]]:
    """(results, per-pair rows) over all files; per-file and per-subset breakdowns included."""
    return evaluate_sets(scorer, {Path(p).name: p for p in paths}, max_pairs=max_pairs, seed=seed,
                         both_orders=both_orders, progress=progress)


def evaluate_sets(scorer, sets: Mapping[str, Any], *, max_pairs: int | None = None, seed: int = 0,
                  both_orders: bool = True, progress: Callable[[int], None] | None = None) -> tuple[dict, list[dict]]:
    """Like `evaluate_files` for named sets, each a file or pairs in memory (a list of
    PreferencePair or dicts, a datasets.Dataset); the breakdown is keyed by set name."""
    all_rows: list[dict] = []
    per_file = {}
    counter = truncation_counter(scorer)
    for name, source in sets.items():
        pairs = load_pairs(source).records
        if max_pairs is not None and len(pairs) > max_pairs:
            pairs = random.Random(seed).sample(pairs, max_pairs)  # a seeded, reproducible slice
        before = dict(counter)
        rows = score_pairs(scorer, pairs, both_orders=both_orders, progress=progress)
        for row in rows:
            row["file"] = name
        per_file[name] = summarise(rows)
        per_file[name]["truncation"] = {k: counter[k] - before[k] for k in counter} if counter else None
        all_rows.extend(rows)
    results = summarise(all_rows)
    results["truncation"] = _total_truncation(per_file)
    results["max_length"] = getattr(scorer, "max_length", None)
    by_subset: dict[str, list[dict]] = defaultdict(list)
    for row in all_rows:
        by_subset[row["subset"] or "(none)"].append(row)
    results["per_file"] = per_file
    results["per_subset"] = {name: {"num_pairs": len(rs), "accuracy": metrics.accuracy([r["p_chosen"] for r in rs])}
                             for name, rs in sorted(by_subset.items())}
    sections = section_scores({k: v["accuracy"] for k, v in results["per_subset"].items()})
    if sections:
        results["rewardbench_sections"] = sections
    results["reliability"] = metrics.reliability_bins([r["p_chosen"] for r in all_rows])
    return results, all_rows


def truncation_counter(scorer) -> dict:
    """The scorer's running count of scored rows, rows truncated and tokens cut ({} when the
    scorer does not encode text itself, e.g. a remote one)."""
    encoder = getattr(scorer, "encoder", None)
    return getattr(encoder, "stats", {}) if encoder is not None else {}


def _total_truncation(per_file: dict) -> dict | None:
    parts = [r["truncation"] for r in per_file.values() if r.get("truncation")]
    if not parts:
        return None
    return {k: sum(p[k] for p in parts) for k in parts[0]}
