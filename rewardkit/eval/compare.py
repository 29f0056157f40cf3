"""Two or more models on the same rows: each model's figures, and the paired difference of each
later model against the first (B − A) with its 95% interval, "within noise" where it holds 0."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from rewardkit.eval.intervals import describe, paired_difference
from rewardkit.eval.metrics import credits
from rewardkit.files import write_text


def model_names(models: list[str]) -> list[str]:
    """Short, distinct names for report folders and tables: the last part of each path or id."""
    names, seen = [], defaultdict(int)
    for model in models:
        base = Path(str(model).rstrip("/")).name or str(model)
        seen[base] += 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


def _credits(rows: list[dict]) -> list[float]:
    return credits([r["p_chosen"] for r in rows])


def _aligned(rows_a: list[dict], rows_b: list[dict]) -> None:
    if len(rows_a) != len(rows_b) or any((x["file"], x["prompt_key"], x["id"]) != (y["file"], y["prompt_key"], y["id"])
                                         for x, y in zip(rows_a, rows_b)):
        raise ValueError("the models were not scored on the same rows in the same order; a paired comparison needs them")


def compare(rows_by_model: dict[str, list[dict]], *, seed: int = 0) -> dict:
    """{baseline, models: {name: {overall, per_file}}}: accuracy differences against the first model."""
    names = list(rows_by_model)
    base = rows_by_model[names[0]]
    out = {"baseline": names[0], "models": {}}
    for name in names[1:]:
        rows = rows_by_model[name]
        _aligned(base, rows)
        a, b = _credits(base), _credits(rows)
        entry = {"overall": paired_difference(a, b, [r["prompt_key"] for r in base], seed=seed), "per_file": {}}
        for file in dict.fromkeys(r["file"] for r in base):
            index = [i for i, r in enumerate(base) if r["file"] == file]
            entry["per_file"][file] = paired_difference([a[i] for i in index], [b[i] for i in index],
                                                        [base[i]["prompt_key"] for i in index], seed=seed)
        out["models"][name] = entry
    return out


def difference_text(d: dict) -> str:
    """+0.031 [-0.020, +0.080], within noise"""
    if d["ci95"] is None:
        return "—"
    low, high = d["ci95"]
    return f"{d['difference']:+.3f} [{low:+.3f}, {high:+.3f}]" + (", within noise" if d["within_noise"] else "")


def write_comparison(output: Path, comparison: dict, results_by_model: dict[str, dict]) -> None:
    base = comparison["baseline"]
    lines = [f"# {len(results_by_model)} models on the same rows", "",
             "Accuracy with its 95% interval (bootstrap over prompts); differences are paired (the same prompts are "
             f"resampled for both models) and against `{base}`; an interval that holds 0 is within noise.", "",
             "| model | pairs | accuracy | − " + base + " |", "|---|---:|---:|---:|"]
    for name, results in results_by_model.items():
        diff = comparison["models"].get(name)
        lines.append(f"| {name} | {results['num_pairs']} | {describe(results['accuracy'], results.get('accuracy_ci95'))} | "
                     f"{difference_text(diff['overall']) if diff else '(baseline)'} |")
    files = list(next(iter(results_by_model.values()))["per_file"])
    for file in files:
        lines += ["", f"## {file}", "", "| model | accuracy | − " + base + " |", "|---|---:|---:|"]
        for name, results in results_by_model.items():
            r = results["per_file"][file]
            diff = comparison["models"].get(name)
            lines.append(f"| {name} | {describe(r['accuracy'], r.get('accuracy_ci95'))} | "
                         f"{difference_text(diff['per_file'][file]) if diff else '(baseline)'} |")
    import json

    output.mkdir(parents=True, exist_ok=True)
    write_text(output / "comparison.json", json.dumps(comparison, indent=2))
    write_text(output / "comparison.md", "\n".join(lines) + "\n")
