"""Evaluate a reward model on labeled pair files: per-pair scores and the summary metrics."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from rewardkit.data import load_pairs
from rewardkit.data.overlap import OverlapIndex
from rewardkit.eval import metrics
from rewardkit.eval.benchmarks import benchmark_metrics
from rewardkit.eval.intervals import bootstrap_interval, weighted_strata_interval
from rewardkit.eval.rewardbench import section_scores, section_weights
from rewardkit.scoring.protocol import Comparison, sigmoid
from rewardkit.types import prompt_to_text


def score_pairs(scorer, pairs, *, both_orders: bool = True, chunk: int = 64,
                progress: Callable[[int], None] | None = None) -> list[dict]:
    """One row per pair: p_chosen (P(chosen better)), and both single-order probabilities."""
    rows = []
    if hasattr(scorer, "add_tool_contexts"):  # a tool-augmented judge: the rows' answers and tests for its tools
        scorer.add_tool_contexts(pairs)
    for start in range(0, len(pairs), chunk):
        part = pairs[start:start + chunk]
        prompts, chosen, rejected = [p.prompt for p in part], [p.chosen for p in part], [p.rejected for p in part]
        rewards = None
        if getattr(scorer, "pointwise", False) and hasattr(scorer, "score"):
            # a scalar model: keep each response's reward (its correlation with length is reported)
            rewards = list(zip(scorer.score(prompts, chosen), scorer.score(prompts, rejected)))
            details = [Comparison(q, q, q) for q in (sigmoid(a - b) for a, b in rewards)]
        else:
            details = scorer.compare_details(prompts, chosen, rejected, both_orders=both_orders)
        for i, (pair, d) in enumerate(zip(part, details)):
            text = prompt_to_text(pair.prompt)
            rows.append({"id": pair.id, "source": pair.source, "subset": pair.subset, "p_chosen": d.probability,
                         "p_chosen_first": d.p_ab, "p_chosen_second": d.p_ba,
                         "chosen_chars": len(pair.chosen), "rejected_chars": len(pair.rejected),
                         "prompt": text[:200], "prompt_key": prompt_key(text),
                         **{k: pair.extra[k] for k in ("chosen_style", "rejected_style") if k in pair.extra}})
            if rewards is not None:
                rows[-1]["reward_chosen"], rows[-1]["reward_rejected"] = rewards[i]
        if progress:
            progress(len(part))
    return rows


def prompt_key(text: str) -> str:
    """What groups a prompt's rows into one cluster for the intervals (eval/intervals.py)."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _credits(rows: list[dict], ties: str = "half") -> tuple[list[float], list]:
    """(per-pair credit, prompt cluster): a pair right counts 1, a tie ½ (or 0 with ties="wrong",
    as `metrics.accuracy`); the rows of one prompt are resampled together (eval/intervals.py)."""
    return metrics.credits([r["p_chosen"] for r in rows], ties), [r.get("prompt_key", i) for i, r in enumerate(rows)]


def summarise(rows: list[dict], *, seed: int = 0) -> dict:
    p = [r["p_chosen"] for r in rows]
    out = {
        "num_pairs": len(rows),
        "accuracy": metrics.accuracy(p),
        "accuracy_ci95": bootstrap_interval(*_credits(rows), seed=seed),
        "accuracy_ties_wrong": metrics.accuracy(p, ties="wrong"),  # RewardBench's rule (eval/metrics.py)
        "accuracy_ties_wrong_ci95": bootstrap_interval(*_credits(rows, "wrong"), seed=seed),
        "ties": sum(x == 0.5 for x in p),
        "position_consistency": metrics.position_consistency([r["p_chosen_first"] for r in rows],
                                                             [r["p_chosen_second"] for r in rows]),
        "ece": metrics.expected_calibration_error(p),
        "brier": metrics.brier(p),
        "length_bias": metrics.length_bias(p, [r["chosen_chars"] for r in rows], [r["rejected_chars"] for r in rows]),
    }
    for side, keep in (("chosen_longer", lambda r: r["chosen_chars"] > r["rejected_chars"]),
                       ("chosen_shorter", lambda r: r["chosen_chars"] < r["rejected_chars"])):
        out["length_bias"][side]["accuracy_ci95"] = bootstrap_interval(*_credits([r for r in rows if keep(r)]), seed=seed)
    if rows and all("reward_chosen" in r for r in rows):
        rewards = [r["reward_chosen"] for r in rows] + [r["reward_rejected"] for r in rows]
        lengths = [r["chosen_chars"] for r in rows] + [r["rejected_chars"] for r in rows]
        out["reward_length_spearman"] = metrics.spearman(rewards, lengths)
    return out


def evaluate_files(scorer, paths: Sequence[str | Path], *, max_pairs: int | None = None, seed: int = 0,
                   both_orders: bool = True, progress: Callable[[int], None] | None = None,
                   exclude: OverlapIndex | None = None) -> tuple[dict, list[dict]]:
    """(results, per-pair rows) over all files; per-file and per-subset breakdowns included.
    `exclude`: rows whose prompt overlaps these training files are dropped and counted."""
    return evaluate_sets(scorer, set_names(paths), max_pairs=max_pairs, seed=seed,
                         both_orders=both_orders, progress=progress, exclude=exclude)


def set_names(paths: Sequence[str | Path]) -> dict[str, str | Path]:
    """name → file: each file's name where that is unique, else enough of its path to tell the
    files apart (a/pairs.jsonl, b/pairs.jsonl); the same file given twice is one set."""
    unique = list(dict.fromkeys(Path(p).expanduser().resolve() for p in paths))
    depth = 1
    while depth < 64:
        names = ["/".join(path.parts[-depth:]) for path in unique]
        if len(set(names)) == len(names):
            break
        depth += 1
    by_path = dict(zip(unique, names))
    return {by_path[Path(p).expanduser().resolve()]: p for p in paths}


def evaluate_sets(scorer, sets: Mapping[str, Any], *, max_pairs: int | None = None, seed: int = 0,
                  both_orders: bool = True, progress: Callable[[int], None] | None = None,
                  exclude: OverlapIndex | None = None) -> tuple[dict, list[dict]]:
    """Like `evaluate_files` for named sets, each a file or pairs in memory (a list of
    PreferencePair or dicts, a datasets.Dataset); the breakdown is keyed by set name."""
    all_rows: list[dict] = []
    per_file = {}
    counter = truncation_counter(scorer)
    for name, source in sets.items():
        loaded = load_pairs(source)
        pairs = loaded.records
        excluded = 0
        if exclude is not None:  # decontamination: before sampling, so --max-pairs counts clean rows
            kept = [p for p in pairs if not exclude.contaminated(prompt_to_text(p.prompt))]
            excluded, pairs = len(pairs) - len(kept), kept
        if max_pairs is not None and len(pairs) > max_pairs:
            pairs = random.Random(seed).sample(pairs, max_pairs)  # a seeded, reproducible slice
        before = dict(counter)
        rows = score_pairs(scorer, pairs, both_orders=both_orders, progress=progress)
        for row in rows:
            row["file"] = name
        for row, pair in zip(rows, pairs):
            row["source"] = pair.source or name  # a row without a source of its own is its file's
        per_file[name] = summarise(rows, seed=seed)
        per_file[name]["truncation"] = {k: counter[k] - before[k] for k in counter} if counter else None
        if exclude is not None:
            per_file[name]["excluded_overlap"] = excluded
        official = benchmark_metrics(rows, next(iter(loaded.formats.values()), ""), seed=seed)
        if official:
            per_file[name]["benchmarks"] = official
        all_rows.extend(rows)
    results = summarise(all_rows, seed=seed)
    if exclude is not None:
        results["decontamination"] = {"train": exclude.files, "ngram": exclude.ngram,
                                      "excluded": sum(f["excluded_overlap"] for f in per_file.values())}
    results["truncation"] = _total_truncation(per_file)
    results["max_length"] = getattr(scorer, "max_length", None)
    by_subset: dict[str, list[dict]] = defaultdict(list)
    for row in all_rows:
        by_subset[row["subset"] or "(none)"].append(row)
    results["per_file"] = per_file
    results["per_subset"] = {name: {"num_pairs": len(rs), "accuracy": metrics.accuracy([r["p_chosen"] for r in rs]),
                                    "accuracy_ci95": bootstrap_interval(*_credits(rs), seed=seed)}
                             for name, rs in sorted(by_subset.items())}
    by_source: dict[str, list[dict]] = defaultdict(list)
    for row in all_rows:
        by_source[row["source"]].append(row)
    results["per_source"] = {name: {"num_pairs": len(rs), "accuracy": metrics.accuracy([r["p_chosen"] for r in rs]),
                                    "accuracy_ci95": bootstrap_interval(*_credits(rs), seed=seed),
                                    "ece": metrics.expected_calibration_error([r["p_chosen"] for r in rs])}
                             for name, rs in sorted(by_source.items())}
    sections = section_scores({k: v["accuracy"] for k, v in results["per_subset"].items()})
    for section, weights in section_weights(results["per_subset"]).items():
        strata = {name: _credits(by_subset[name]) for name in weights}
        sections[section]["score_ci95"] = weighted_strata_interval(strata, weights, seed=seed)
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


def evaluate_ratings(scorer, source: Any, *, scale: tuple[float, float] | None = None) -> dict:
    """Correlation with held-out human ratings, per attribute: a multi-objective model's own
    head for that attribute (where it has one) and, for every scalar model, its reward."""
    from rewardkit.data.ratings import load_ratings

    ratings = load_ratings(source, scale=scale)
    prompts, responses = [r.prompt for r in ratings.records], [r.response for r in ratings.records]
    heads: dict[str, list[float]] = {}
    if hasattr(scorer, "attributes"):
        table = scorer.attributes(prompts, responses)
        rewards = [row.reward for row in table]
        heads = {name: [row.scores[name] for row in table] for name in table[0].scores}
    else:
        rewards = scorer.score(prompts, responses)
    out = {"rows": len(ratings.records), "masked": ratings.masked, "per_attribute": {}}
    for name in ratings.attributes:
        rated = [i for i, r in enumerate(ratings.records) if r.attributes.get(name) is not None]
        truth = [ratings.records[i].attributes[name] for i in rated]
        entry = {"rows": len(rated),
                 "reward": {"pearson": metrics.pearson([rewards[i] for i in rated], truth),
                            "spearman": metrics.spearman([rewards[i] for i in rated], truth)}}
        if name in heads:
            entry["head"] = {"pearson": metrics.pearson([heads[name][i] for i in rated], truth),
                             "spearman": metrics.spearman([heads[name][i] for i in rated], truth)}
        out["per_attribute"][name] = entry
    return out
