"""The quality study: what each part of the method buys, on one backbone and one labeled set.

Arms (same backbone, same labeled pairs, same seeds and settings):
  zero_shot     the instruction-tuned backbone as a judge, no training
  bt            Bradley–Terry value head
  judge_ls<ε>   judge fine-tuning with label smoothing ε (e.g. judge_ls0, judge_ls0.1)
  gram_ls<ε>    pair-generation pre-training on unlabeled pairs, then judge_ls<ε>
  …_centred     either of the two with the order-centred judge loss (--centre-orders)

Each model is evaluated on an in-domain held-out slice and on out-of-domain sets (LLMBar,
MT-Bench human judgments, HHH, XSTest, EvalBiasBench) with accuracy, position consistency,
ECE and length bias; training time is recorded. Whole rows: training and pre-training take only
pairs whose judge row fits the settings' max_length (pairs that fit are chosen, none is cut),
scoring runs at the model's own limit, and the rows cut anywhere are counted in the results.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from rewardkit.data.balance import even_shares
from rewardkit.recipes.gram import gram
from rewardkit.recipes.partial_finetune import PartialFineTune

OOD = {"llmbar": "llmbar.jsonl", "mtbench_human": "llmbar_processed_faireval_mtbench.jsonl",
       "hhh": "hhh_alignment.jsonl", "xstest": "xstest_v2_pairs.jsonl", "evalbiasbench": "evalbiasbench.jsonl"}
KEPT = ("num_pairs", "accuracy", "accuracy_ci95", "position_consistency", "ece", "length_bias")
# the English subsets of LLMEval² (three are Chinese, Russian or Portuguese)
ENGLISH_LLMEVAL2 = {"bagel", "code-contests", "eli5", "hellaswag", "hh-rlhf", "openmeva", "pku-saferlhf", "shp",
                    "summarizefeedback", "summeval", "webgpt"}
# the shared data's training sources (never the out-of-domain evaluation sets above)
TRAINING_SOURCES = {"ultrafeedback": "ultrafeedback_binarized_subset.jsonl", "pandalm": "pandalm_testset_v1.jsonl",
                    "llmeval2": "llmeval2_benchmark.jsonl", "hh_helpful": "hh_rlhf_helpful_test_rmgallery.jsonl",
                    "hh_harmless": "hh_rlhf_harmless_base_test.jsonl", "dpo_demos": ("llamafactory_dpo_en_demo.jsonl",
                                                                                      "orca_dpo_pairs_demo.jsonl")}


def load_training_source(data_dir: str | Path, name: str) -> list:
    """The pairs of one training source (LLMEval²: English subsets; UltraFeedback: both splits)."""
    from rewardkit.data import load_pairs

    if name not in TRAINING_SOURCES:
        raise ValueError(f"unknown training source {name!r}; choose from {', '.join(TRAINING_SOURCES)}")
    files = TRAINING_SOURCES[name]
    pairs = [p for f in ([files] if isinstance(files, str) else files) for p in load_pairs(Path(data_dir) / f).records]
    return [p for p in pairs if p.subset in ENGLISH_LLMEVAL2] if name == "llmeval2" else pairs


@dataclass
class QualityStudy:
    data_dir: str  # the folder with ultrafeedback_binarized_subset.jsonl and the OOD files
    model: str = "smollm2-135m"
    train_pairs: int = 382
    min_margin: float = 2.0  # labeled pairs: ratings at least this far apart (clear pairs)
    pretrain_pairs: int = 200  # stage 1: other "train" pairs, labels dropped
    eval_pairs: int = 80
    epochs: float = 1.0
    bt_epochs: float = 1.0
    pretrain_epochs: float = 1.0
    score_max_length: int | None = None  # None: the model's own limit (nothing cut at scoring time)
    arms: list[str] = field(default_factory=lambda: ["zero_shot", "bt", "judge_ls0", "judge_ls0.1", "gram_ls0.1"])
    # labeled pairs: UltraFeedback alone, or an even share of each of these TRAINING_SOURCES
    # (UltraFeedback's share: clear "train" pairs; the others: any pair that fits)
    train_sources: list[str] = field(default_factory=lambda: ["ultrafeedback"])
    settings: PartialFineTune = field(default_factory=PartialFineTune)


def study_slices(study: QualityStudy, base: str) -> dict[str, list]:
    """Labeled training pairs, an unlabeled pool for stage 1 (both only pairs whose judge row
    fits in the settings' max_length with `base`'s tokenizer), the in-domain slice, OOD slices."""
    from rewardkit.data import load_pairs
    from rewardkit.recipes.partial_finetune import fitting_pairs, judge_row_encoder

    rng = random.Random(study.settings.seed)
    pool = load_pairs(Path(study.data_dir) / "ultrafeedback_binarized_subset.jsonl").records
    train = [p for p in pool if p.subset == "train"]
    held = [p for p in pool if p.subset == "eval"]
    rng.shuffle(train)
    rng.shuffle(held)
    encoder = judge_row_encoder(base)
    train = fitting_pairs(train, encoder, study.settings.max_length)
    clear = [p for p in train if p.margin is not None and p.margin >= study.min_margin]
    labeled = clear[: study.train_pairs]
    if study.train_sources != ["ultrafeedback"]:
        available = {}
        for source in study.train_sources:
            if source == "ultrafeedback":
                available[source] = clear
                continue
            pairs = load_training_source(study.data_dir, source)
            random.Random(f"{study.settings.seed}:{source}").shuffle(pairs)  # `rng` stays as without them
            available[source] = fitting_pairs(pairs, encoder, study.settings.max_length, study.train_pairs)
        labeled = even_shares(available, study.train_pairs)
    chosen = {id(p) for p in labeled}
    slices = {"train": labeled, "pool": [p for p in train if id(p) not in chosen][: study.pretrain_pairs],
              "in_domain": held[: study.eval_pairs]}
    for name, file in OOD.items():
        pairs = load_pairs(Path(study.data_dir) / file).records
        rng.shuffle(pairs)
        slices[name] = pairs[: study.eval_pairs]
    return slices


def train_arm(study: QualityStudy, arm: str, base: str, slices: dict, output: Path) -> tuple[str, float]:
    """(model to evaluate, training seconds) for one arm."""
    s = study.settings
    if arm == "zero_shot":
        return base, 0.0
    if arm == "bt":
        return str(output / arm), s.bradley_terry(base, slices["train"], output / arm, epochs=study.bt_epochs)
    name, _, variant = arm.partition("_centred")
    if variant or name != arm:  # "judge_ls0.1_centred": the order-centred loss
        s = s.with_options(centre_orders=True)
    if name.startswith("judge_ls"):
        seconds = s.judge(base, slices["train"], output / arm, epochs=study.epochs, label_smoothing=float(name[8:]))
        return str(output / arm), seconds
    if name.startswith("gram_ls"):
        seconds = gram(s.with_options(label_smoothing=float(name[7:])), base, slices["pool"], slices["train"],
                       output / arm, pretrain_epochs=study.pretrain_epochs, finetune_epochs=study.epochs)
        return str(output / arm), sum(seconds.values())
    raise ValueError(f"unknown arm {arm!r}")


def evaluate_arm(model: str, sets: dict[str, list], max_length: int | None) -> dict:
    from rewardkit.eval import evaluate_sets
    from rewardkit.eval.metrics import credits
    from rewardkit.methods.load import load_reward_model

    scorer = load_reward_model(model, max_length=max_length)
    out = {}
    for name, pairs in sets.items():
        results, rows = evaluate_sets(scorer, {name: pairs})
        out[name] = {k: results[k] for k in KEPT}
        out[name]["truncation"] = results.get("truncation")
        # per pair, for paired differences between arms (the same pairs, in the same order)
        out[name]["outcomes"] = credits([r["p_chosen"] for r in rows])
        out[name]["prompt_keys"] = [r["prompt_key"] for r in rows]
    return out


def training_truncation(output: Path, arm: str) -> dict:
    """Rows cut in training, summed over the arm's runs (GRAM: stage 1 and the judge)."""
    rows = cut = 0
    for directory in (output / arm, output / f"{arm}_stage1"):
        if (directory / "summary.json").is_file():
            summary = json.loads((directory / "summary.json").read_text())
            rows, cut = rows + (summary.get("train_features") or 0), cut + (summary.get("truncated_rows") or 0)
    return {"rows": rows, "truncated_rows": cut}


def run_quality(study: QualityStudy, output: str | Path, *, log: Callable[[str], None] = print,
                hardware: str = "") -> dict:
    """Trains and evaluates every arm; writes quality.json after each arm and quality.md at the end.
    Resumes: an arm already in `output`/quality.json from a run with the same settings (arms
    aside) is kept, not trained again."""
    from rewardkit.models import resolve_model_path

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    base = resolve_model_path(study.model)
    slices = study_slices(study, base)
    sets = {name: slices[name] for name in ("in_domain", *OOD)}
    results = {"settings": asdict(study), "hardware": hardware, "arms": _finished_arms(output, study)}
    started = time.perf_counter()
    for arm in study.arms:
        if arm in results["arms"]:
            log(f"{arm}: kept from the earlier run in {output / 'quality.json'}")
            continue
        model, seconds = train_arm(study, arm, base, slices, output)
        results["arms"][arm] = {"train_seconds": round(seconds, 1), "eval": evaluate_arm(model, sets, study.score_max_length),
                                "training_truncation": training_truncation(output, arm)}
        (output / "quality.json").write_text(json.dumps(results, indent=2))
        log(f"[{time.perf_counter() - started:7.0f}s] {arm}: " + ", ".join(
            f"{k} {v['accuracy']:.3f}" for k, v in results["arms"][arm]["eval"].items()))
    (output / "quality.md").write_text(quality_table(results, list(sets)))
    return results


def _finished_arms(output: Path, study: QualityStudy) -> dict:
    """The arms of an earlier run in `output` with the same settings except the list of arms."""
    path = output / "quality.json"
    if not path.is_file():
        return {}
    earlier = json.loads(path.read_text())
    same = {k: v for k, v in earlier.get("settings", {}).items() if k != "arms"} == \
        {k: v for k, v in json.loads(json.dumps(asdict(study))).items() if k != "arms"}
    return {arm: r for arm, r in earlier.get("arms", {}).items() if same}


def _mean_ood(evals: dict, sets: list[str], deltas_from: dict | None = None) -> tuple[float, list[float] | None]:
    """The mean over the out-of-domain sets of their accuracies (or, with `deltas_from`, of the
    paired differences against that arm), and its 95% interval: each set's prompts resampled on
    their own, the sets weighted equally."""
    from rewardkit.eval.intervals import weighted_strata_interval

    ood = [s for s in sets if s != "in_domain"]
    strata = {}
    for name in ood:
        values = evals[name].get("outcomes")
        if values is None or (deltas_from is not None and deltas_from[name].get("outcomes") is None):
            return sum(evals[s]["accuracy"] for s in ood) / len(ood), None
        if deltas_from is not None:
            values = [b - a for a, b in zip(deltas_from[name]["outcomes"], values)]
        strata[name] = (values, evals[name]["prompt_keys"])
    point = sum(sum(v) / len(v) for v, _ in strata.values()) / len(strata)
    return point, weighted_strata_interval(strata, {name: 1.0 for name in strata})


def quality_table(results: dict, sets: list[str]) -> str:
    from rewardkit.eval.compare import difference_text
    from rewardkit.eval.intervals import describe, paired_difference

    lines = ["Accuracy with its 95% interval (bootstrap over prompts; the mean over out-of-domain sets resamples "
             "each set on its own).", "",
             "| arm | train s | " + " | ".join(sets) + " | mean OOD | consistency (in-dom) | ECE (in-dom) | "
             "acc. chosen longer / shorter (in-dom) |",
             "|---|---:|" + "---:|" * len(sets) + "---:|---:|---:|---|"]
    for arm, r in results["arms"].items():
        ind = r["eval"]["in_domain"]
        lb = ind["length_bias"]
        pc = "—" if ind["position_consistency"] is None else f"{ind['position_consistency']:.2f}"
        longer, shorter = lb["chosen_longer"]["accuracy"], lb["chosen_shorter"]["accuracy"]
        lines.append(f"| {arm} | {r['train_seconds']:.0f} | " +
                     " | ".join(describe(r["eval"][s]["accuracy"], r["eval"][s].get("accuracy_ci95")) for s in sets) +
                     f" | {describe(*_mean_ood(r['eval'], sets))} | {pc} | {ind['ece']:.3f} | "
                     f"{'—' if longer is None else f'{longer:.2f}'} / {'—' if shorter is None else f'{shorter:.2f}'} |")
    arms = list(results["arms"])
    if len(arms) > 1:
        base = results["arms"][arms[0]]["eval"]
        lines += ["", f"Paired differences against `{arms[0]}` on the same pairs (B − A, 95% interval from a paired "
                      "bootstrap over prompts; an interval that holds 0 is within noise):", "",
                  "| arm | " + " | ".join(sets) + " | mean OOD |", "|---|" + "---:|" * (len(sets) + 1)]
        for arm in arms[1:]:
            evals = results["arms"][arm]["eval"]
            cells = []
            for s in sets:
                if base[s].get("outcomes") is None or evals[s].get("outcomes") is None:
                    cells.append("—")
                    continue
                cells.append(difference_text(paired_difference(base[s]["outcomes"], evals[s]["outcomes"],
                                                               base[s]["prompt_keys"])))
            point, interval = _mean_ood(evals, sets, deltas_from=base)
            within = interval is not None and interval[0] <= 0 <= interval[1]
            cells.append(difference_text({"difference": point, "ci95": interval, "within_noise": within}))
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
