"""Every judge-training recipe tried so far, against the zero-shot judge and issue #16's goal.

Reads the results files of bench/judge_recipe.py runs (default: docs/judge_recipe*.json; all of
them score the same seeded out-of-domain slices, so their zero-shot rows agree and one is
kept), prints one table (mean out-of-domain accuracy ± its standard error, the difference to
zero-shot, the sets where the arm is worse than zero-shot by more than one standard error)
and draws the same as one chart with the goal line (zero-shot + 5 points).

    python bench/judge_recipe_summary.py [RESULTS.json ...] [--plot docs/judge_recipe_summary.png]

The standard error of a mean over five sets is sqrt(Σ se²) / 5 (the sets are independent);
the difference to zero-shot is on the same pairs, so its true error is smaller than the two
errors combined — read a gap under one standard error as no difference.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from quality_study import TRAINING_SOURCES

GOAL = 0.05
DOCS = Path(__file__).resolve().parent.parent / "docs"


def mean_se(arm: dict) -> float:
    return math.sqrt(sum(v["se"] ** 2 for v in arm["ood"].values())) / len(arm["ood"])


def describe(results: dict, name: str) -> str:
    settings = results["settings"]
    sources = settings.get("sources") or "UF/PandaLM/LLMEval²"
    if set(sources.split(",")) == set(TRAINING_SOURCES):
        sources = "all six training sources"
    words = {"ls0.1": "label smoothing 0.1", "ls0": "no label smoothing"}
    recipe = "+".join(words.get(part, part) for part in name.split("-", 1))
    cut = (f"{results['train_rows_truncated']} rows cut" if "train_rows_truncated" in results
           else "cut rows not recorded")
    return f"{recipe}; {results['train_pairs']} pairs ({sources}), {settings['epochs']:g} epoch(s), {cut}"


def collect(files: list[Path]) -> tuple[dict, list[dict]]:
    zero, rows = None, []
    for file in files:
        results = json.loads(file.read_text())
        for name, arm in results["arms"].items():
            if name == "zero_shot":
                if zero is not None and abs(zero["ood_mean"] - arm["ood_mean"]) > 1e-9:
                    raise SystemExit(f"{file}: its zero-shot row differs ({arm['ood_mean']:.3f} vs "
                                     f"{zero['ood_mean']:.3f}): not the same out-of-domain slices")
                zero = zero or arm
                continue
            short = f"{name}, {results['train_pairs']} pairs, {results['settings']['epochs']:g} ep ({file.stem})"
            rows.append({"file": file.name, "arm": name, "label": describe(results, name), "short": short,
                         "pairs": results["train_pairs"], **arm})
    if zero is None:
        raise SystemExit("no zero-shot row in " + ", ".join(map(str, files)))
    return zero, sorted(rows, key=lambda row: row["pairs"])  # stable: runs of one size keep their order


def table(zero: dict, rows: list[dict]) -> str:
    lines = ["| recipe | file | train s | mean OOD ± SE | Δ vs zero-shot | worse than zero-shot by > 1 SE |",
             "|---|---|---:|---:|---:|---|"]
    lines.append(f"| zero-shot judge | – | 0 | {zero['ood_mean']:.3f} ± {mean_se(zero):.3f} | – | – |")
    for row in rows:
        worse = [name for name, v in row["ood"].items()
                 if v["accuracy"] < zero["ood"][name]["accuracy"] - zero["ood"][name]["se"]]
        lines.append(f"| {row['label']} | {row['file']} | {row.get('train_seconds', 0):,.0f} | "
                     f"{row['ood_mean']:.3f} ± {mean_se(row):.3f} | {row['ood_mean'] - zero['ood_mean']:+.3f} | "
                     f"{', '.join(worse) or 'none'} |")
    return "\n".join(lines)


def plot(zero: dict, rows: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.6))
    labels = [r["short"] for r in rows]
    ax.errorbar([r["ood_mean"] for r in rows], range(len(rows)), xerr=[mean_se(r) for r in rows], fmt="o",
                capsize=3, color="tab:blue")
    ax.axvline(zero["ood_mean"], color="grey", linestyle="--", linewidth=1, label="zero-shot judge")
    ax.axvline(zero["ood_mean"] + GOAL, color="tab:green", linestyle=":", linewidth=1.5, label="goal: zero-shot + 5 pts")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("mean out-of-domain accuracy, five sets (± 1 SE)")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="*", type=Path, help="judge_recipe.json files (default: docs/judge_recipe*.json)")
    parser.add_argument("--plot", type=Path, default=None, help="write the chart here")
    args = parser.parse_args()
    files = args.results or sorted(DOCS.glob("judge_recipe*.json"))
    zero, rows = collect(files)
    print(table(zero, rows))
    if args.plot:
        plot(zero, rows, args.plot)
        print(f"chart: {args.plot}")


if __name__ == "__main__":
    main()
