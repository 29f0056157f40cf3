"""The main job on the embedded default model, end to end, on a CPU in minutes.

zero-shot judge → GRAM (pair-generation pre-training, then label-smoothed judge fine-tuning)
→ Bradley–Terry baseline → the same held-out evaluation for all three → a best-of-n example.
The library part: it returns results and reports progress through a callback; the CLI renders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from rewardkit.eval.compare import difference_text
from rewardkit.eval.intervals import describe
from rewardkit.files import write_text
from rewardkit.recipes.demo_plan import FULL, QUICK, DemoPlan, bundled, choose_plan, demo_slices  # noqa: F401
from rewardkit.recipes.gram import gram
from rewardkit.recipes.partial_finetune import PartialFineTune, tagged

Event = Callable[[str, dict], None]


def run_demo(output: str | Path, *, quick: bool = False, model: str = "smollm2-135m", seed: int = 0,
             plan: DemoPlan | None = None, sizing: dict | None = None, on_event: Event | None = None) -> dict:
    """`plan` None: the quick or full plan fitted to its time limit by a probe (demo_plan.py)."""
    from rewardkit.models import resolve_model_path

    emit = on_event or (lambda kind, data: None)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    emit("stage", {"name": "model", "text": f"pulling {model} (once)"})
    base = resolve_model_path(model)
    if plan is None:

        plan, sizing = choose_plan(quick, base)
    data = demo_slices(plan, base)
    settings = PartialFineTune(train_layers=plan.train_layers, lr=plan.lr, batch_size=plan.batch_size,
                               max_length=plan.max_length, bt_max_length=plan.bt_max_length,
                               batch_tokens=plan.batch_tokens, seed=seed)

    emit("stage", {"name": "zero_shot", "text": "evaluating the zero-shot judge"})
    rows: dict[str, dict] = {}  # model → slice → per-pair rows, for the paired differences
    results = {"zero_shot": _evaluate(base, data, output / "eval_zero_shot", plan, emit, rows.setdefault("zero_shot", {}))}
    timings = gram(settings, base, data["pretrain"], data["train"], output / "gram", pretrain_epochs=plan.pretrain_epochs,
                   finetune_epochs=plan.finetune_epochs, on_event=emit)
    emit("stage", {"name": "bt", "text": "Bradley–Terry baseline"})
    timings["bt"] = settings.bradley_terry(base, data["train"], output / "bt", epochs=plan.bt_epochs,
                                           on_event=tagged("bt", emit))
    for name in ("gram", "bt"):
        emit("stage", {"name": f"eval_{name}", "text": f"evaluating {name}"})
        results[name] = _evaluate(str(output / name), data, output / f"eval_{name}", plan, emit, rows.setdefault(name, {}))
    results["paired"] = paired_differences(rows)
    results["timings_s"] = timings
    results["slices"] = {name: len(pairs) for name, pairs in data.items()}
    results["training_truncation"] = {name: training_truncation(output / name) for name in ("gram_stage1", "gram", "bt")}
    results["plan"] = plan.__dict__
    results["sizing"] = sizing or {"fitted": False}
    emit("stage", {"name": "best_of_n", "text": "best-of-n with the trained judge"})
    results["best_of_n_example"] = _best_of_n(str(output / "gram"), data["heldout"])
    write_text(output / "results.json", json.dumps(results, indent=2))
    write_text(output / "report.md", _report(results))
    _plot(results, output / "comparison.png")
    return results


def work_units(plan: DemoPlan) -> int:
    """What the CLI's progress bar counts: rows through the model (caching the frozen blocks,
    each epoch, scoring both orders). A BT row (one response) counts half a judge row (two)."""
    return int(3 * 2 * (plan.eval_pairs + plan.ood_pairs) + plan.pretrain_pairs * (1 + plan.pretrain_epochs)
               + 2 * plan.train_pairs * (1 + plan.finetune_epochs) + plan.train_pairs * (1 + plan.bt_epochs))


def training_truncation(directory: Path) -> dict:
    """Rows a training run cut at its max_length, from its summary.json."""
    summary = json.loads((directory / "summary.json").read_text())
    return {"rows": summary.get("train_features"), "truncated_rows": summary.get("truncated_rows")}


def _evaluate(model: str, data: dict[str, list], output: Path, plan: DemoPlan, emit: Event, rows: dict) -> dict:
    """Figures on the held-out slice, with the out-of-domain slice's beside them; each slice's
    per-pair rows go into `rows`."""
    from rewardkit.eval import evaluate_sets, write_report
    from rewardkit.methods.load import load_reward_model

    scorer = load_reward_model(model)  # the model's own limit: nothing is cut at scoring time
    keep = ("num_pairs", "accuracy", "accuracy_ci95", "position_consistency", "ece", "brier", "length_bias",
            "truncation")
    figures = {}
    for name in ("heldout", "ood"):
        results, rows[name] = evaluate_sets(scorer, {name: data[name]}, progress=lambda n: emit("scored", {"pairs": n}))
        write_report(output / name, results, rows[name], model=model)
        figures[name] = {k: results[k] for k in keep}
    return {**figures["heldout"], "out_of_domain": {"set": "LLMBar Natural", **figures["ood"]}}


# what the demo compares, B − A on the same pairs
PAIRS_COMPARED = (("gram", "zero_shot"), ("bt", "zero_shot"), ("gram", "bt"))


def paired_differences(rows: dict[str, dict]) -> dict:
    """{slice: {"gram − zero_shot": {difference, ci95, within_noise}, …}}: accuracy differences on
    the same pairs, with a paired bootstrap over prompts (eval/compare.py)."""
    from rewardkit.eval.compare import compare

    out = {}
    for part in ("heldout", "ood"):
        out[part] = {f"{b} − {a}": compare({a: rows[a][part], b: rows[b][part]})["models"][b]["overall"]
                     for b, a in PAIRS_COMPARED}
    return out


def _best_of_n(model: str, heldout: list) -> dict:
    from rewardkit.methods.load import load_reward_model

    judge = load_reward_model(model)
    pair = heldout[0]
    candidates = [pair.rejected, pair.chosen, pair.chosen[: len(pair.chosen) // 3], "I don't know."]
    ranked = judge.rank(pair.prompt, candidates, strategy="round_robin")
    rewards = judge.reward([pair.prompt] * len(candidates), candidates, [pair.rejected] * len(candidates))
    return {"prompt": str(pair.prompt)[:300], "candidates": [c[:200] for c in candidates], "best": ranked.best,
            "chosen_index": 1, "scores": ranked.scores, "reward_vs_rejected_logodds": rewards}


def table_rows(results: dict) -> list[tuple[str, ...]]:
    """(model, accuracy, position consistency, ECE, pairs, out-of-domain accuracy) as text."""
    rows = []
    for name in ("zero_shot", "gram", "bt"):
        r = results[name]
        pc = "—" if r["position_consistency"] is None else f"{r['position_consistency']:.3f}"
        ood = r["out_of_domain"]
        rows.append((name, describe(r["accuracy"], r.get("accuracy_ci95")), pc, f"{r['ece']:.3f}", str(r["num_pairs"]),
                     f"{describe(ood['accuracy'], ood.get('accuracy_ci95'))} ({ood['num_pairs']})"))
    return rows


TABLE_HEADER = ("model", "held-out accuracy [95% interval]", "position consistency", "ECE", "pairs",
                "LLMBar Natural accuracy [95% interval] (pairs)")


def paired_lines(results: dict) -> list[str]:
    """The differences between the models on the same pairs, and whether they are noise."""
    paired = results.get("paired")
    if not paired:
        return []
    lines = ["| difference (same pairs) | held-out | LLMBar Natural |", "|---|---:|---:|"]
    for name in paired["heldout"]:
        lines.append(f"| {name} | {difference_text(paired['heldout'][name])} | {difference_text(paired['ood'][name])} |")
    return ["Differences in accuracy, B − A on the same pairs, with 95% intervals from a paired bootstrap over "
            "prompts; an interval that holds 0 is within noise:", "", *lines, ""]


def _report(results: dict) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|---|---:|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    t, plan, sizes = results["timings_s"], results["plan"], results["slices"]
    return "\n".join([
        "# rewardkit demo", "",
        f"Held-out slice: {sizes['heldout']} UltraFeedback pairs from its eval split (never trained on); "
        f"out-of-domain: {sizes['ood']} LLMBar Natural pairs. Both orders scored and averaged.", "", *lines, "",
        *paired_lines(results),
        f"Training: {sizes['train']} labeled pairs, top {plan['train_layers']} blocks. Whole rows: every slice takes "
        f"only pairs that fit in {plan['max_length']} tokens. {truncation_line(results)} Time: pre-training "
        f"{t['pretrain']} s, judge fine-tuning {t['finetune']} s, Bradley–Terry {t['bt']} s.", "",
        sizing_line(results.get("sizing") or {}), "", "![comparison](comparison.png)", ""])


def truncation_line(results: dict) -> str:
    """Rows cut in training and in scoring, every model (the whole-rows promise, checked)."""
    trained = results.get("training_truncation", {})
    cut = sum(v.get("truncated_rows") or 0 for v in trained.values())
    rows = sum(v.get("rows") or 0 for v in trained.values())
    scored = [results[m][s] if s else results[m] for m in ("zero_shot", "gram", "bt") for s in ("", "out_of_domain")]
    scored = [r["truncation"] for r in scored if r.get("truncation")]
    return (f"Rows truncated: {cut} of {rows} in training, {sum(t['truncated_rows'] for t in scored)} of "
            f"{sum(t['rows'] for t in scored)} in scoring (at the model's own limit).")


def sizing_line(sizing: dict) -> str:
    if not sizing.get("fitted"):
        return "Plan: the nominal plan, not fitted to a time limit."
    if not sizing["shrunk"]:
        return (f"Plan: nominal; the start-up probe measured {sizing['probe_tokens_per_s']:.0f} tokens/s, an estimated "
                f"{sizing['estimated_s']} s against the {sizing['limit_s']:.0f} s limit.")
    return (f"Plan: fitted to the {sizing['limit_s']:.0f} s limit — the start-up probe measured "
            f"{sizing['probe_tokens_per_s']:.0f} tokens/s, so the nominal plan (estimated {sizing['nominal_estimated_s']} s) "
            f"trains on fewer pairs here ({sizing['nominal_train_pairs']} → the number above; estimated "
            f"{sizing['estimated_s']} s).")


def _plot(results: dict, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["zero_shot", "gram", "bt"]
    held = [results[n] for n in names]
    ood = [results[n]["out_of_domain"] for n in names]
    bars = {"held-out accuracy": (held, True), "LLMBar Natural accuracy": (ood, True),
            "position consistency": ([{"accuracy": r["position_consistency"] or 0} for r in held], False)}
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    width = 0.26
    for offset, (label, (figures, with_interval)) in enumerate(bars.items()):
        values = [f["accuracy"] for f in figures]
        errors = None
        if with_interval and all(f.get("accuracy_ci95") for f in figures):  # 95% intervals as error bars
            errors = [[v - f["accuracy_ci95"][0] for v, f in zip(values, figures)],
                      [f["accuracy_ci95"][1] - v for v, f in zip(values, figures)]]
        ax.bar([x + (offset - 1) * width for x in range(len(names))], values, width, label=label, yerr=errors,
               capsize=3 if errors else 0)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(list(range(len(names))), names)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title("rewardkit demo")
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)
