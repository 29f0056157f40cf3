"""Each benchmark's own metric, from its definition, over the per-pair rows of `score_pairs`.

- RM-Bench: per prompt a 3×3 matrix, chosen style × rejected style (concise, detailed,
  detailed_markdown), 1 where the chosen answer wins; averaged over prompts. hard = the upper
  triangle (the chosen answer plainer than the rejected one), normal = the diagonal, easy = the
  lower triangle; per domain and overall, with `average` the mean of the three.
- JudgeBench: both orders judged; a pair is right when the orders agree on the chosen answer, or
  one picks it and the other ties; two orders that pick different answers are inconsistent and
  count as wrong. Accuracy is the micro average over pairs (overall, and per `source`), not the
  mean of the categories.
- RewardBench 2 best-of-4: a prompt counts only when its chosen answer beats every rejected one;
  its Ties subset gets its own score (`rewardbench2_ties`) from a pointwise model's scores.

Every figure carries a 95% interval by bootstrap over prompts (eval/intervals.py). A win is
strict (P(chosen) > 0.5), as the benchmarks' own code compares scores with `>`.
"""

from __future__ import annotations

from collections import defaultdict

from rewardkit.eval.intervals import bootstrap_interval

STYLES = {"concise": 0, "detailed": 1, "detailed_plain": 1, "detailed_markdown": 2, "markdown": 2}


def _style(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value <= 2:
        return value
    return STYLES.get(str(value).strip().lower()) if isinstance(value, str) else None


def _won(row: dict) -> float:
    return 1.0 if row["p_chosen"] > 0.5 else 0.0


def rmbench(rows: list[dict], *, seed: int = 0) -> dict | None:
    """RM-Bench's hard / normal / easy accuracy; None when no prompt has a complete 3×3 matrix.
    Rows need `chosen_style`, `rejected_style` (0-2 or the style names) and `prompt_key`."""
    matrices: dict = {}
    domain_of: dict = {}
    for row in rows:
        i, j = _style(row.get("chosen_style")), _style(row.get("rejected_style"))
        if i is None or j is None:
            continue
        key = (row.get("file"), row["prompt_key"])
        matrices.setdefault(key, {})[(i, j)] = _won(row)
        domain_of[key] = row.get("subset") or "(none)"
    complete = {k: m for k, m in matrices.items() if len(m) == 9}
    if not complete:
        return None
    per_prompt = {k: {"hard": sum(m[(i, j)] for i in range(3) for j in range(3) if i < j) / 3,
                      "normal": sum(m[(i, i)] for i in range(3)) / 3,
                      "easy": sum(m[(i, j)] for i in range(3) for j in range(3) if i > j) / 3}
                  for k, m in complete.items()}

    def summary(keys: list) -> dict:
        out = {"prompts": len(keys)}
        for part in ("hard", "normal", "easy"):
            values = [per_prompt[k][part] for k in keys]
            out[part] = sum(values) / len(values)
            out[f"{part}_ci95"] = bootstrap_interval(values, seed=seed)
        averages = [sum(per_prompt[k].values()) / 3 for k in keys]
        out["average"] = sum(averages) / len(averages)
        out["average_ci95"] = bootstrap_interval(averages, seed=seed)
        out["matrix"] = [[sum(complete[k][(i, j)] for k in keys) / len(keys) for j in range(3)] for i in range(3)]
        return out

    by_domain = defaultdict(list)
    for key in complete:
        by_domain[domain_of[key]].append(key)
    return {**summary(list(complete)), "incomplete_prompts": len(matrices) - len(complete),
            "per_domain": {d: summary(keys) for d, keys in sorted(by_domain.items())}}


def judgebench(rows: list[dict], *, seed: int = 0) -> dict | None:
    """JudgeBench's accuracy with both orders; None without single-order probabilities."""
    judged = [r for r in rows if r.get("p_chosen_first") is not None and r.get("p_chosen_second") is not None]
    if not judged:
        return None

    def verdict(p: float) -> int:  # +1 the chosen answer, −1 the rejected one, 0 a tie
        return 1 if p > 0.5 else -1 if p < 0.5 else 0

    outcomes, inconsistent = [], 0
    for row in judged:
        first, second = verdict(row["p_chosen_first"]), verdict(row["p_chosen_second"])
        if first * second < 0:
            inconsistent += 1
        outcomes.append(1.0 if first + second > 0 else 0.0)  # both, or one with the other a tie
    clusters = [r["prompt_key"] for r in judged]
    by_source = defaultdict(list)
    for row, outcome in zip(judged, outcomes):
        by_source[row.get("source") or "(none)"].append((outcome, row["prompt_key"]))
    per_source = {s: {"pairs": len(v), "accuracy": sum(o for o, _ in v) / len(v),
                      "accuracy_ci95": bootstrap_interval([o for o, _ in v], [c for _, c in v], seed=seed)}
                  for s, v in sorted(by_source.items())}
    return {"pairs": len(judged), "accuracy": sum(outcomes) / len(outcomes),
            "accuracy_ci95": bootstrap_interval(outcomes, clusters, seed=seed),
            "macro_accuracy": sum(v["accuracy"] for v in per_source.values()) / len(per_source),
            "inconsistent": inconsistent, "per_source": per_source}


def best_of_n(rows: list[dict], *, seed: int = 0) -> dict | None:
    """RewardBench 2's best-of-4 (any n): per prompt, right only when the chosen answer beats
    every rejected one. Prompts with one chosen and several rejected answers count; None if none."""
    groups: dict = defaultdict(list)
    for row in rows:
        groups[(row.get("file"), row["prompt_key"])].append(row)
    sets = {k: v for k, v in groups.items()
            if len(v) > 1 and len({r.get("chosen_style") for r in v}) == 1
            and len({r.get("rejected_style") for r in v}) == len(v)}
    if not sets:
        return None
    outcomes = [1.0 if all(r["p_chosen"] > 0.5 for r in v) else 0.0 for v in sets.values()]
    by_subset = defaultdict(list)
    for v, outcome in zip(sets.values(), outcomes):
        by_subset[v[0].get("subset") or "(none)"].append(outcome)
    return {"prompts": len(sets), "accuracy": sum(outcomes) / len(outcomes),
            "accuracy_ci95": bootstrap_interval(outcomes, seed=seed),
            "candidates": sorted({len(v) + 1 for v in sets.values()}),
            "per_subset": {s: {"prompts": len(v), "accuracy": sum(v) / len(v),
                               "accuracy_ci95": bootstrap_interval(v, seed=seed)} for s, v in sorted(by_subset.items())}}


def _ties_stats(correct: list[float], incorrect: list[float]) -> dict:
    worst_correct = min(correct)
    spread = max(correct) - worst_correct if len(correct) > 1 else None
    gap = worst_correct - max(incorrect)
    return {"accurate": gap > 0, "correct_spread": spread, "correct_incorrect_gap": gap}


def rewardbench2_ties(rows: list[dict]) -> dict | None:
    """RewardBench 2's Ties score, for a model with one score per response (pointwise). Its rows
    have ids `ref:N` (one correct answer) and `tied:N` (several equally correct ones). Per prompt:
    accurate when the worst correct answer outscores the best incorrect one; for a tied prompt,
    the spread of its correct answers' scores and the gap from the worst correct to the best
    incorrect. The score is 0.3 × tied accuracy + 0.3 × ref accuracy + 0.2 × the share of tied
    prompts whose gap exceeds their spread + 0.2 × the same with the smaller of the tied and ref
    gaps + 0.01 × the mean of tanh(smaller gap / spread − 1)."""
    import math

    groups: dict = defaultdict(lambda: ({}, {}))
    for row in rows:
        ident = str(row.get("id") or "")
        base = ident.rsplit(":", 1)[0] if ident.count(":") >= 2 else ident
        kind, _, number = base.partition(":")
        if row.get("subset") != "Ties" or kind not in ("ref", "tied") or "reward_chosen" not in row:
            continue
        correct, incorrect = groups[(row.get("file"), kind, number)]
        correct[row.get("chosen_style")] = row["reward_chosen"]
        incorrect[row.get("rejected_style")] = row["reward_rejected"]
    if not groups:
        return None
    stats = {"ref": {}, "tied": {}}
    for (file, kind, number), (correct, incorrect) in groups.items():
        stats[kind][(file, number)] = _ties_stats(list(correct.values()), list(incorrect.values()))
    accuracy = {k: (sum(v["accurate"] for v in stats[k].values()) / len(stats[k]) if stats[k] else 0.0) for k in stats}
    both = [k for k in stats["tied"] if k in stats["ref"] and stats["tied"][k]["correct_spread"] is not None]
    preferred = [stats["tied"][k]["correct_incorrect_gap"] > stats["tied"][k]["correct_spread"] for k in both]
    smaller = {k: min(stats["ref"][k]["correct_incorrect_gap"], stats["tied"][k]["correct_incorrect_gap"]) for k in both}
    preferred_hard = [smaller[k] > stats["tied"][k]["correct_spread"] for k in both]
    ratios = [smaller[k] / stats["tied"][k]["correct_spread"] for k in both if stats["tied"][k]["correct_spread"] > 0]
    mean = (lambda xs: sum(xs) / len(xs) if xs else 0.0)  # noqa: E731
    margin_score = mean([math.tanh(r - 1) for r in ratios])
    score = (0.3 * accuracy["tied"] + 0.3 * accuracy["ref"] + 0.2 * mean(preferred) + 0.2 * mean(preferred_hard)
             + 0.01 * margin_score)
    return {"score": score, "ref_prompts": len(stats["ref"]), "tied_prompts": len(stats["tied"]),
            "ref_accuracy": accuracy["ref"], "tied_accuracy": accuracy["tied"],
            "correctness_preferred": mean(preferred), "correctness_preferred_hard": mean(preferred_hard),
            "margin_score": margin_score}


def benchmark_metrics(rows: list[dict], file_format: str, *, seed: int = 0) -> dict:
    """The metrics a file's rows support, by its format: RM-Bench lists (3×3 styles) get
    RM-Bench's, lists of one chosen and several rejected answers best-of-n, JudgeBench rows
    JudgeBench's."""
    out = {}
    if file_format == "judgebench":
        result = judgebench(rows, seed=seed)
        if result:
            out["judgebench"] = result
    if file_format == "rmbench" or any(r.get("chosen_style") is not None for r in rows):
        result = rmbench(rows, seed=seed)
        if result:
            out["rmbench"] = result
        elif (result := best_of_n([r for r in rows if r.get("subset") != "Ties"], seed=seed)):
            out["best_of_n"] = result  # RewardBench 2 scores its Ties subset its own way, below
        ties = [r for r in rows if r.get("subset") == "Ties"]
        if ties:
            out["rewardbench2_ties"] = rewardbench2_ties(ties) or {
                "not_applicable": "the Ties score needs one score per response: a pointwise (scalar) model"}
    return out
