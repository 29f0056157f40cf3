"""Write an evaluation to disk: results.json, scores.jsonl, report.md and PNG charts."""

from __future__ import annotations

import json
from pathlib import Path

from rewardkit.eval.intervals import describe
from rewardkit.files import replacing, write_text


def write_report(output: str | Path, results: dict, rows: list[dict], *, model: str) -> Path:
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    write_text(output / "results.json", json.dumps({"model": model, **results}, indent=2))
    with replacing(output / "scores.jsonl") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    _plots(output, results)
    write_text(output / "report.md", markdown(results, model))
    return output


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _ci(result: dict, key: str) -> str:
    """`0.625 [0.550, 0.700]`: a figure with its 95% interval (bootstrap over prompts)."""
    return describe(result[key], result.get(f"{key}_ci95")) if result.get(key) is not None else "—"


def markdown(results: dict, model: str) -> str:
    lines = [f"# Evaluation of `{model}`", "",
             f"{results['num_pairs']} pairs; accuracy **{_ci(results, 'accuracy')}**, position consistency "
             f"{_fmt(results['position_consistency'])}, ECE {_fmt(results['ece'])}, Brier {_fmt(results['brier'])}. "
             "Brackets: 95% intervals by bootstrap over prompts.", "",
             truncation_line(results), "", *decontamination_lines(results),
             "## Per file", "", "| file | pairs | accuracy | consistency | ECE |", "|---|---:|---:|---:|---:|"]
    for name, r in results["per_file"].items():
        lines.append(f"| {name} | {r['num_pairs']} | {_ci(r, 'accuracy')} | {_fmt(r['position_consistency'])} | {_fmt(r['ece'])} |")
    for name, r in results["per_file"].items():
        lines += benchmark_lines(name, r.get("benchmarks") or {})
    if "rewardbench_sections" in results:
        lines += ["", "## RewardBench sections (example-count weighted)", "", "| section | score | subsets present |", "|---|---:|---|"]
        for name, s in results["rewardbench_sections"].items():
            lines.append(f"| {name} | {_ci(s, 'score')} | {', '.join(s['subsets'])}{'' if s['complete'] else ' (partial)'} |")
    if len(results.get("per_source") or {}) > 1:
        lines += ["", "## Per source", "", "| source | pairs | accuracy | ECE |", "|---|---:|---:|---:|"]
        lines += [f"| {name} | {r['num_pairs']} | {_ci(r, 'accuracy')} | {_fmt(r['ece'])} |"
                  for name, r in results["per_source"].items()]
    lines += ["", "## Per subset", "", "| subset | pairs | accuracy |", "|---|---:|---:|"]
    for name, r in results["per_subset"].items():
        lines.append(f"| {name} | {r['num_pairs']} | {_ci(r, 'accuracy')} |")
    lb = results["length_bias"]
    lines += ["", "## Length bias", "",
              f"Accuracy when the chosen answer is longer: {_ci(lb['chosen_longer'], 'accuracy')} "
              f"({lb['chosen_longer']['count']} pairs); shorter: {_ci(lb['chosen_shorter'], 'accuracy')} "
              f"({lb['chosen_shorter']['count']} pairs). Picks the longer answer in {_fmt(lb['prefers_longer'])} of pairs."]
    if results.get("reward_length_spearman") is not None:
        lines += ["", f"Spearman correlation of the reward with response length (characters, chosen and rejected "
                      f"responses): {results['reward_length_spearman']:+.3f}."]
    lines += ratings_lines(results.get("ratings"))
    lines += ["", "![per-subset accuracy](subset_accuracy.png)", "", "![reliability](reliability.png)", ""]
    return "\n".join(lines)


def benchmark_lines(name: str, official: dict) -> list[str]:
    """Each benchmark's own metric for one file (eval/benchmarks.py)."""
    lines = []
    if "rmbench" in official:
        r = official["rmbench"]
        lines += ["", f"## RM-Bench ({name}: {r['prompts']} prompts)", "", "| domain | prompts | hard | normal | easy | average |",
                  "|---|---:|---:|---:|---:|---:|"]
        for domain, d in {**r["per_domain"], "all": r}.items():
            lines.append(f"| {domain} | {d['prompts']} | {_ci(d, 'hard')} | {_ci(d, 'normal')} | {_ci(d, 'easy')} | "
                         f"{_ci(d, 'average')} |")
    if "judgebench" in official:
        j = official["judgebench"]
        lines += ["", f"## JudgeBench ({name}: {j['pairs']} pairs, both orders)", "",
                  f"Accuracy (micro, over pairs) **{_ci(j, 'accuracy')}**; mean over sources {_fmt(j['macro_accuracy'])}; "
                  f"{j['inconsistent']} pairs judged inconsistently (the two orders disagree: counted wrong).", "",
                  "| source | pairs | accuracy |", "|---|---:|---:|"]
        lines += [f"| {source} | {v['pairs']} | {_ci(v, 'accuracy')} |" for source, v in j["per_source"].items()]
    if "best_of_n" in official:
        b = official["best_of_n"]
        lines += ["", f"## Best-of-{'/'.join(map(str, b['candidates']))} ({name}: {b['prompts']} prompts)", "",
                  f"A prompt counts when its chosen answer beats every rejected one: **{_ci(b, 'accuracy')}**.", "",
                  "| subset | prompts | accuracy |", "|---|---:|---:|"]
        lines += [f"| {subset} | {v['prompts']} | {_ci(v, 'accuracy')} |" for subset, v in b["per_subset"].items()]
    if "rewardbench2_ties" in official:
        t = official["rewardbench2_ties"]
        lines += ["", f"## RewardBench 2 Ties ({name})", ""]
        lines += [f"Not computed: {t['not_applicable']}."] if "not_applicable" in t else [
            f"Score **{t['score']:.3f}** (0.3 × tied accuracy {t['tied_accuracy']:.3f} + 0.3 × ref accuracy "
            f"{t['ref_accuracy']:.3f} + 0.2 × correctness preferred {t['correctness_preferred']:.3f} + 0.2 × the same, "
            f"hard, {t['correctness_preferred_hard']:.3f} + 0.01 × margin score {t['margin_score']:.3f}); "
            f"{t['ref_prompts']} ref and {t['tied_prompts']} tied prompts."]
    return lines


def ratings_lines(ratings: dict | None) -> list[str]:
    if not ratings:
        return []
    lines = ["", f"## Correlation with held-out ratings ({ratings['rows']} rated responses)", "",
             "| attribute | rated rows | head Pearson | head Spearman | reward Pearson | reward Spearman |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, e in ratings["per_attribute"].items():
        head = e.get("head", {})
        lines.append(f"| {name} | {e['rows']} | {_fmt(head.get('pearson'))} | {_fmt(head.get('spearman'))} | "
                     f"{_fmt(e['reward']['pearson'])} | {_fmt(e['reward']['spearman'])} |")
    return lines


def decontamination_lines(results: dict) -> list[str]:
    d = results.get("decontamination")
    if not d:
        return []
    return [f"Decontamination: {d['excluded']} rows left out whose prompt appears in (or shares a {d['ngram']}-word run "
            f"with) {', '.join(d['train'])}.", ""]


def truncation_line(results: dict) -> str:
    t = results.get("truncation")
    if not t:
        return "Truncation: not known for this scorer."
    limit = results.get("max_length")
    return (f"Truncation at {limit if limit else 'the model limit'} tokens: {t['truncated_rows']} of {t['rows']} scored "
            f"rows cut, {t['tokens_cut']} tokens in all.")


def _plots(output: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subsets = results["per_subset"]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.3 * len(subsets))))
    names = list(subsets)
    ax.barh(names, [subsets[n]["accuracy"] for n in names])
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title("accuracy per subset")
    fig.tight_layout()
    fig.savefig(output / "subset_accuracy.png", dpi=100)
    plt.close(fig)

    bins = results["reliability"]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0.5, 1], [0.5, 1], "--", color="grey", linewidth=1, label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="model")
    ax.set_xlabel("confidence max(p, 1 − p)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0.5, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"reliability (ECE {results['ece']:.3f})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output / "reliability.png", dpi=100)
    plt.close(fig)
