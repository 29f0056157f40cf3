"""Learning from unlabeled pairs: self-training and judge → BT distillation vs labeled-only.

From ../shared/data (training sources only): a labeled set of UltraFeedback "train" pairs with
a clear rating gap and an unlabeled pool of *other* pairs, an even share from each of
--pool-sources (UltraFeedback, PandaLM, English LLMEval², HH-RLHF helpful and harmless, the DPO
demos; labels hidden from training, used only for the pseudo-label accuracy line); every row
fits --max-length whole. Every judge and BT model uses the library's shared CPU settings (top 6 of
30 blocks on cached frozen states; recipes/partial_finetune.py). Arms:
  judge_labeled     round 0 of self-training: the judge on the labeled pairs only
  self_train_rN     round N: trained again (from the base model) on labeled + confident pseudo-labels
  continue_rN       round N continuing from round N−1's judge instead of the base model (--continue)
  gram_labeled      GRAM: generative pre-training on the pool, then the judge on the labeled pairs
  gram_self_train_rN  GRAM pre-training, then self-training rounds that start from it (--pretrain)
  bt_labeled        Bradley–Terry on the labeled pairs
  bt_distilled      Bradley–Terry distilled from the best judge's soft verdicts over the pool
                    ("best" by in-domain held-out accuracy, never by the OOD sets)
  zero_shot         the untrained backbone as a judge (--arms zero_shot): what training has to beat
Every arm is scored at full length on an in-domain held-out slice (UltraFeedback eval split) and
the out-of-domain sets, both orders, with accuracy, position consistency, ECE and length bias.

    python bench/unlabeled.py [--labeled 200] [--pool 2000] [--rounds 2] [--threshold 0.8 | --keep-share 0.5]
                              [--eval-pairs 40] [--pool-sources ultrafeedback,pandalm,...]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from dataclasses import replace
from pathlib import Path

from common import SHARED_DATA, hardware, training_source
from quality_study import KEPT, OOD, TRAINING_SOURCES

from rewardkit.data.balance import even_shares


def write(path: Path, pairs) -> str:
    from rewardkit.types import prompt_to_json

    path.write_text("".join(json.dumps({"prompt": prompt_to_json(p.prompt), "chosen": p.chosen, "rejected": p.rejected,
                                        "source": p.source, "subset": p.subset}, ensure_ascii=False) + "\n"
                            for p in pairs), encoding="utf-8")
    return str(path)


def slices(args, encoder) -> dict:
    from rewardkit.data import load_pairs
    from rewardkit.recipes.partial_finetune import fitting_pairs

    rng = random.Random(args.seed)
    uf = load_pairs(SHARED_DATA / "ultrafeedback_binarized_subset.jsonl").records
    train = [p for p in uf if p.subset == "train"]
    held = [p for p in uf if p.subset == "eval"]
    rng.shuffle(train)
    rng.shuffle(held)
    fitting = fitting_pairs(train, encoder, args.max_length)  # whole rows only
    clear = [p for p in fitting if (p.margin or 0) >= 2]
    labeled = clear[:args.labeled]
    taken = {id(p) for p in labeled}
    available = {}
    for source in args.pool_sources.split(","):
        pairs = [p for p in fitting if id(p) not in taken] if source == "ultrafeedback" else training_source(source)
        if source != "ultrafeedback":
            rng.shuffle(pairs)
            pairs = fitting_pairs(pairs, encoder, args.max_length, args.pool)
        available[source] = pairs
    pool = even_shares(available, args.pool)
    out = {"labeled": labeled, "pool": pool, "in_domain": held[:args.eval_pairs]}
    for name, file in OOD.items():
        pairs = load_pairs(SHARED_DATA / file).records
        rng.shuffle(pairs)
        out[name] = pairs[:args.eval_pairs]
    return out


def evaluate(model: str, sets: dict) -> dict:
    from rewardkit import load_reward_model
    from rewardkit.eval import evaluate_sets

    scorer = load_reward_model(model)  # full length: the model's own limit
    out = {}
    for name, pairs in sets.items():
        results, _ = evaluate_sets(scorer, {name: pairs})
        out[name] = {k: results[k] for k in KEPT}
        out[name]["se"] = math.sqrt(results["accuracy"] * (1 - results["accuracy"]) / max(1, results["num_pairs"]))
    out["mean_ood"] = sum(out[n]["accuracy"] for n in OOD) / len(OOD)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--labeled", type=int, default=200)
    parser.add_argument("--pool", type=int, default=2000, help="unlabeled pairs, an even share per --pool-sources")
    parser.add_argument("--pool-sources", default=",".join(TRAINING_SOURCES),
                        help="training sources the pool is drawn from (the labeled set is always UltraFeedback); "
                             "the first tables used ultrafeedback alone")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--keep-share", type=float, default=None, help="keep the most confident share instead")
    parser.add_argument("--eval-pairs", type=int, default=40)
    parser.add_argument("--max-length", type=int, default=512, help="training rows (pairs that fit are chosen)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--arms", default="continue,pretrain",
                        help="beyond restart-from-base self-training, BT and distillation: continue, pretrain, zero_shot")
    parser.add_argument("--pretrain-rounds", type=int, default=None, help="rounds for the pretrain arm (default --rounds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/unlabeled")
    args = parser.parse_args()

    from rewardkit.data.templates import default_judge_template
    from rewardkit.data.tokenize import SegmentEncoder
    from rewardkit.methods.bradley_terry import BradleyTerryConfig
    from rewardkit.methods.judge import JudgeConfig
    from rewardkit.models import resolve_model_path
    from rewardkit.models.loading import load_tokenizer
    from rewardkit.recipes.distill import DistillConfig, distill
    from rewardkit.recipes.partial_finetune import PartialFineTune
    from rewardkit.recipes.self_training import SelfTrainConfig, self_train

    work = Path(args.output)
    work.mkdir(parents=True, exist_ok=True)
    print(f"# unlabeled-data benchmark\n# machine: {hardware()}\n# settings: {vars(args)}", flush=True)
    started = time.time()
    base = resolve_model_path(args.model)
    encoder = SegmentEncoder(load_tokenizer(base), default_judge_template(), 10**6)
    data = slices(args, encoder)
    sets = {name: data[name] for name in ("in_domain", *OOD)}
    settings = PartialFineTune(max_length=args.max_length, bt_max_length=args.max_length, seed=args.seed)
    labeled_file, pool_file = write(work / "labeled.jsonl", data["labeled"]), write(work / "pool.jsonl", data["pool"])
    held_file = write(work / "in_domain.jsonl", data["in_domain"])
    report_path = work / "results.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {"arms": {}}
    report.update({"machine": hardware(), "settings": vars(args)})

    def record(arm: str, model: str, extra: dict) -> None:
        if arm not in report["arms"]:
            report["arms"][arm] = {**extra, "eval": evaluate(model, sets)}
            report_path.write_text(json.dumps(report, indent=2, default=str))
        print(f"[{time.time() - started:6.0f}s] {arm}: mean OOD {report['arms'][arm]['eval']['mean_ood']:.3f}, "
              f"in-domain {report['arms'][arm]['eval']['in_domain']['accuracy']:.3f}", flush=True)

    def rounds(directory: str, names, **changes) -> list[dict]:
        loop = settings.loop(base, [], work / directory, epochs=args.epochs)
        loop.eval_data = [held_file]  # in-domain held-out accuracy per round (what picks the teacher)
        options = SelfTrainConfig(labeled=[labeled_file], unlabeled=[pool_file], rounds=args.rounds,
                                  threshold=args.threshold, keep_share=args.keep_share)
        history = self_train(loop, JudgeConfig(label_smoothing=settings.label_smoothing), replace(options, **changes),
                             on_event=None)["rounds"]
        for r in history:
            record(names(r["round"]), str(work / directory / f"round-{r['round']}"),
                   {"train_seconds": r["seconds"], "pseudo": r.get("pseudo"), "trained_on": r["trained_on"]})
        return history

    history = rounds("self", lambda n: "judge_labeled" if n == 0 else f"self_train_r{n}")
    arms = args.arms.split(",")
    if "continue" in arms:  # the same round 0; rounds ≥ 1 continue from the previous round's judge
        if not (work / "self_continue" / "round-0").is_dir():
            (work / "self_continue").mkdir(exist_ok=True)
            shutil.copytree(work / "self" / "round-0", work / "self_continue" / "round-0")
        rounds("self_continue", lambda n: "judge_labeled" if n == 0 else f"continue_r{n}", restart=False)
    if "pretrain" in arms:  # GRAM: pre-training on the pool first; every round starts from it
        rounds("self_pretrain", lambda n: "gram_labeled" if n == 0 else f"gram_self_train_r{n}", pretrain=True,
               rounds=args.rounds if args.pretrain_rounds is None else args.pretrain_rounds)
    if "bt_labeled" not in report["arms"]:
        seconds = settings.bradley_terry(base, data["labeled"], work / "bt_labeled", epochs=args.epochs)
        record("bt_labeled", str(work / "bt_labeled"), {"train_seconds": seconds})
    best = max(history, key=lambda r: r.get("eval_accuracy") or 0)  # in-domain held-out, never the OOD sets
    if "bt_distilled" not in report["arms"]:
        t = time.time()
        bt_loop = settings.loop(base, [pool_file], work / "bt_distilled", epochs=args.epochs,
                                max_length=args.max_length)
        bt_loop.eval_data = [held_file]
        distilled = distill(bt_loop, BradleyTerryConfig(), DistillConfig(teacher=str(work / "self" / f"round-{best['round']}")))
        record("bt_distilled", str(work / "bt_distilled"),
               {"train_seconds": round(time.time() - t, 1), "teacher_round": best["round"], "distill": distilled})
    else:
        record("bt_distilled", "", {})
    if "zero_shot" in arms:  # the untrained backbone as a judge: what any training has to beat
        record("zero_shot", str(base), {"train_seconds": 0})
    report["total_s"] = round(time.time() - started, 1)
    report_path.write_text(json.dumps(report, indent=2, default=str))
    print(table(report))


def table(report: dict) -> str:
    sets = ["in_domain", *OOD]
    lines = ["| arm | train s | " + " | ".join(sets) + " | mean OOD | consistency (OOD mean) | ECE (in-dom) |",
             "|---|---:|" + "---:|" * len(sets) + "---:|---:|---:|"]
    for arm, r in sorted(report["arms"].items(), key=lambda item: item[0] != "zero_shot"):
        e = r["eval"]
        cells = [f"{e[s]['accuracy']:.3f} ± {e[s]['se']:.3f}" for s in sets]
        consistency = [e[s]["position_consistency"] for s in OOD if e[s]["position_consistency"] is not None]
        mean_se = math.sqrt(sum(e[s]["se"] ** 2 for s in OOD)) / len(OOD)  # the sets are independent slices
        lines.append(f"| {arm} | {r.get('train_seconds', 0):.0f} | " + " | ".join(cells)
                     + f" | {e['mean_ood']:.3f} ± {mean_se:.3f} | "
                     f"{sum(consistency) / len(consistency):.2f} | {e['in_domain']['ece']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
