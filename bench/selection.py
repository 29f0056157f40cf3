"""Data selection for a target domain, margin prediction and label audits, measured.

Pool: the training sources in ../shared/data with their labels (pairs whose judge rows fit).
Targets (each split into a small target slice and its own evaluation slice, never overlapping):
  safety       XSTest pairs (comply vs refuse)
  instruction  LLMBar pairs (instruction following)
For each target and strategy (ot, nearest, margin, random), `rewardkit select` logic picks
--budget pool pairs with the zero-shot judge's pair embeddings, the same judge recipe
(recipes/partial_finetune.py) trains on them, and it is scored on the target's evaluation
slice and on the general out-of-domain sets (the other OOD sets), both orders, full length.
Margin prediction: the LRHP head (method preference_repr) trained on UltraFeedback "train"
pairs with their rating gaps, Spearman on held-out UltraFeedback "eval" pairs. Audit: a known
share of a labeled slice flipped on purpose, precision and recall of `audit` with the judge
trained on random selection.

    python bench/selection.py [--pool 600] [--budget 300] [--target-pairs 48] [--eval-pairs 40]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import SHARED_DATA, hardware
from quality_study import KEPT, OOD

POOL_SOURCES = ("hh_rlhf_harmless_base_test.jsonl", "hh_rlhf_helpful_test_rmgallery.jsonl",
                "ultrafeedback_binarized_subset.jsonl", "pandalm_testset_v1.jsonl", "llamafactory_dpo_en_demo.jsonl",
                "orca_dpo_pairs_demo.jsonl")
TARGETS = {"safety": "xstest", "instruction": "llmbar"}


def evaluate(model: str, sets: dict) -> dict:
    from rewardkit import load_reward_model
    from rewardkit.eval import evaluate_sets

    scorer = load_reward_model(model)
    out = {}
    for name, pairs in sets.items():
        results, _ = evaluate_sets(scorer, {name: pairs})
        out[name] = {k: results[k] for k in KEPT}
        out[name]["se"] = math.sqrt(results["accuracy"] * (1 - results["accuracy"]) / max(1, results["num_pairs"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pool", type=int, default=600, help="pool pairs (an even share per source)")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--target-pairs", type=int, default=48)
    parser.add_argument("--eval-pairs", type=int, default=40)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--strategies", default="ot,nearest,margin,random")
    parser.add_argument("--flip-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/selection")
    args = parser.parse_args()

    from rewardkit import load_reward_model
    from rewardkit.data import load_pairs
    from rewardkit.models import resolve_model_path
    from rewardkit.recipes.partial_finetune import PartialFineTune, fitting_pairs
    from rewardkit.scoring.pair_embeddings import embed_pairs
    from rewardkit.selection.strategies import select

    work = Path(args.output)
    work.mkdir(parents=True, exist_ok=True)
    print(f"# selection benchmark\n# machine: {hardware()}\n# settings: {vars(args)}", flush=True)
    started = time.time()
    rng = random.Random(args.seed)
    base = resolve_model_path(args.model)
    judge = load_reward_model(base, max_length=args.max_length)
    per_source = args.pool // len(POOL_SOURCES)
    pool = []
    for name in POOL_SOURCES:
        pairs = load_pairs(SHARED_DATA / name).records
        rng.shuffle(pairs)
        pool += fitting_pairs(pairs, judge.encoder, args.max_length, per_source)
    ood = {}
    for name, file in OOD.items():
        pairs = load_pairs(SHARED_DATA / file).records
        rng.shuffle(pairs)
        ood[name] = pairs
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {"targets": {}}
    results.update({"machine": hardware(), "settings": vars(args), "pool": len(pool)})
    pool_vectors = embed_pairs(judge, pool, model=args.model).vectors
    p_chosen = np.clip(np.array(judge.compare([p.prompt for p in pool], [p.chosen for p in pool],
                                              [p.rejected for p in pool])), 1e-6, 1 - 1e-6)
    margins = np.log(p_chosen / (1 - p_chosen))  # the judge's log-odds: |·| ranks its confidence
    settings = PartialFineTune(max_length=args.max_length, seed=args.seed)
    print(f"[{time.time() - started:6.0f}s] pool of {len(pool)} pairs embedded", flush=True)
    trained: dict = {}  # sorted picks -> the judge trained on them (seeded, so the same picks give the same judge)
    for target_name, set_name in TARGETS.items():
        pairs = ood[set_name]
        target, target_eval = pairs[:args.target_pairs], pairs[args.target_pairs:args.target_pairs + args.eval_pairs]
        general = {n: p[:args.eval_pairs] for n, p in ood.items() if n != set_name}
        sets = {"target_eval": target_eval, **general}
        target_vectors = embed_pairs(judge, target, model=args.model).vectors
        entry = results["targets"].setdefault(target_name, {"set": set_name, "arms": {}})
        for strategy in args.strategies.split(","):
            if strategy in entry["arms"]:
                continue
            chosen, scores = select(pool_vectors, target_vectors, args.budget, strategy, seed=args.seed,
                                    margins=margins)
            picked = [pool[i] for i in chosen]
            out = work / f"{target_name}-{strategy}"
            t = time.time()
            key = ",".join(map(str, sorted(int(i) for i in chosen)))
            if key in trained:  # random and margin ignore the target: the same picks train the same judge
                out = trained[key]
            else:
                settings.judge(base, picked, out, epochs=1.0)
                trained[key] = out
            evaluation = evaluate(str(out), sets)
            general_mean = sum(evaluation[n]["accuracy"] for n in general) / len(general)
            sources = {}
            for p in picked:
                sources[p.source] = sources.get(p.source, 0) + 1
            entry["arms"][strategy] = {"eval": evaluation, "general_mean": general_mean, "sources": sources,
                                       "judge": str(out),
                                       "train_eval_s": round(time.time() - t, 1)}
            results_path.write_text(json.dumps(results, indent=2, default=str))
            print(f"[{time.time() - started:6.0f}s] {target_name}/{strategy}: target "
                  f"{evaluation['target_eval']['accuracy']:.3f}, general {general_mean:.3f}, sources {sources}", flush=True)
    if "margin" not in results:
        results["margin"] = margin_study(args, base, work)
        results_path.write_text(json.dumps(results, indent=2, default=str))
        print(f"[{time.time() - started:6.0f}s] margin: {results['margin']}", flush=True)
    if "audit" not in results:
        random_arm = results["targets"].get("instruction", {}).get("arms", {}).get("random", {}).get("judge")
        auditor = load_reward_model(random_arm) if random_arm and Path(random_arm).is_dir() else judge
        results["audit"] = audit_study(args, pool, auditor, rng)
        results["audit"]["auditor"] = random_arm or "zero-shot judge"
        results_path.write_text(json.dumps(results, indent=2, default=str))
        print(f"[{time.time() - started:6.0f}s] audit: {results['audit']}", flush=True)
    results["total_s"] = round(time.time() - started, 1)
    results_path.write_text(json.dumps(results, indent=2, default=str))
    print(table(results))


def margin_study(args, base: str, work: Path) -> dict:
    """LRHP head on UltraFeedback "train" pairs with rating gaps; Spearman on held-out "eval" pairs."""
    from rewardkit import LoopConfig, train_method
    from rewardkit.data import load_pairs

    uf = load_pairs(SHARED_DATA / "ultrafeedback_binarized_subset.jsonl").records
    train = [p for p in uf if p.subset == "train" and p.margin is not None][:args.budget]
    held = [p for p in uf if p.subset == "eval" and p.margin is not None][:args.eval_pairs * 2]
    loop = LoopConfig(model=base, data=train, eval_data=held, output=str(work / "lrhp"), max_length=args.max_length,
                      seed=args.seed)
    summary = train_method("preference_repr", loop)
    return {**{k: summary.get(k) for k in ("pairs", "eval_accuracy", "eval_margin_spearman", "train_margin_spearman",
                                           "seconds")}, "held_out_pairs": len(held)}


def audit_study(args, pool: list, auditor, rng: random.Random) -> dict:
    """The pool's UltraFeedback pairs (200 at most) with a known share flipped on purpose;
    precision and recall of `audit` at three confidence levels, from one scoring pass."""
    from rewardkit.selection.audit import audit_pairs, precision_recall

    slice_ = [p for p in pool if p.source.lower().startswith("ultrafeedback")][:200]
    flipped = set(rng.sample(range(len(slice_)), max(1, int(args.flip_share * len(slice_)))))
    planted = [replace(p, chosen=p.rejected, rejected=p.chosen) if i in flipped else p for i, p in enumerate(slice_)]
    rows = audit_pairs(auditor, planted, confidence=0.6)  # most confident first, so higher levels are a prefix
    out = {"pairs": len(slice_), "source": "UltraFeedback"}
    for confidence in (0.6, 0.7, 0.8):
        flagged = [r["row"] for r in rows if max(r["p_chosen"], 1 - r["p_chosen"]) >= confidence]
        out[str(confidence)] = precision_recall(flagged, flipped)
    return out


def table(results: dict) -> str:
    lines = ["| target | strategy | target eval | general mean | selected by source |", "|---|---|---:|---:|---|"]
    for target, entry in results["targets"].items():
        for strategy, arm in entry["arms"].items():
            e = arm["eval"]["target_eval"]
            lines.append(f"| {target} ({entry['set']}) | {strategy} | {e['accuracy']:.3f} ± {e['se']:.3f} | "
                         f"{arm['general_mean']:.3f} | {arm['sources']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
