"""Quality study: what does each part of the method buy, on one backbone and one labeled set?

Arms (same backbone, same labeled pairs, same seeds and step counts):
  zero_shot        the instruction-tuned backbone as a judge, no training
  bt               Bradley–Terry value head
  judge_ls0        judge fine-tuning, label smoothing 0
  judge_ls0.1      judge fine-tuning, label smoothing 0.1
  gram_ls0.1       pair-generation pre-training on unlabeled pairs, then judge_ls0.1

Each model is evaluated on an in-domain held-out slice and on out-of-domain sets (LLMBar,
MT-Bench human judgments, HHH, XSTest, EvalBiasBench) with accuracy, position consistency,
ECE and length bias; training time is recorded. Results go to --output (JSON + markdown).

    python bench/quality.py [--train-pairs 382] [--eval-pairs 80] [--epochs 1] [--output runs/quality]

Training pairs are UltraFeedback "train" pairs whose ratings differ by at least --min-margin
(as in the demo); stage 1 reads other "train" pairs with their labels dropped. Every arm trains
the top --train-layers blocks with the frozen blocks' output cached (--cache-frozen).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from common import SHARED_DATA, hardware

OOD = {"llmbar": "llmbar.jsonl", "mtbench_human": "llmbar_processed_faireval_mtbench.jsonl",
       "hhh": "hhh_alignment.jsonl", "xstest": "xstest_v2_pairs.jsonl", "evalbiasbench": "evalbiasbench.jsonl"}


def slices(args, out: Path) -> tuple[Path, Path, Path, dict[str, Path]]:
    """Training pairs, an unlabeled pool for stage 1, the in-domain held-out slice, OOD slices."""
    from rewardkit.data import load_pairs, write_pairs

    rng = random.Random(args.seed)
    pool = load_pairs(SHARED_DATA / "ultrafeedback_binarized_subset.jsonl").records
    train = [p for p in pool if p.subset == "train"]
    held = [p for p in pool if p.subset == "eval"]
    rng.shuffle(train)
    rng.shuffle(held)
    clear = [p for p in train if p.margin is not None and p.margin >= args.min_margin]
    labeled = clear[: args.train_pairs]
    unlabeled = [p for p in train if p not in labeled][: args.pretrain_pairs]  # never the labeled ones
    write_pairs(out / "train.jsonl", labeled)
    write_pairs(out / "pretrain_pool.jsonl", unlabeled)
    write_pairs(out / "in_domain.jsonl", held[: args.eval_pairs])
    ood = {}
    for name, file in OOD.items():
        pairs = load_pairs(SHARED_DATA / file).records
        rng.shuffle(pairs)
        write_pairs(out / f"ood_{name}.jsonl", pairs[: args.eval_pairs])
        ood[name] = out / f"ood_{name}.jsonl"
    return out / "train.jsonl", out / "pretrain_pool.jsonl", out / "in_domain.jsonl", ood


def train_arm(name: str, task: str, model: str, data: Path, out: Path, args, **extra) -> float:
    from rewardkit.training import TrainConfig, train

    config = TrainConfig(task=task, model=model, data=[str(data)], output=str(out / name), epochs=extra.pop("epochs", args.epochs),
                         batch_size=args.batch_size, max_length=extra.pop("max_length", args.max_length), lr=extra.pop("lr", args.lr),
                         train_layers=args.train_layers, cache_frozen=args.cache_frozen, freeze_embeddings=True,
                         gradient_checkpointing=not args.cache_frozen,
                         seed=args.seed, save_every=10**6, warmup_ratio=0.1, **extra)
    start = time.perf_counter()
    train(config)
    return time.perf_counter() - start


def evaluate(model: str, sets: dict[str, Path], args) -> dict:
    from rewardkit.eval import evaluate_files
    from rewardkit.scoring import load_reward_model

    scorer = load_reward_model(model, max_length=args.max_length)
    out = {}
    for name, path in sets.items():
        results, _ = evaluate_files(scorer, [path])
        out[name] = {k: results[k] for k in ("num_pairs", "accuracy", "position_consistency", "ece", "length_bias")}
    return out


def main() -> None:
    from rewardkit.models import resolve_model_path

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--train-pairs", type=int, default=382)
    parser.add_argument("--min-margin", type=float, default=2.0)
    parser.add_argument("--pretrain-pairs", type=int, default=200)
    parser.add_argument("--eval-pairs", type=int, default=80)
    parser.add_argument("--epochs", type=float, default=1.0, help="judge fine-tuning epochs")
    parser.add_argument("--bt-epochs", type=float, default=1.0)
    parser.add_argument("--pretrain-epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=320, help="judge rows (question + both answers); also scoring")
    parser.add_argument("--bt-max-length", type=int, default=256, help="BT rows (question + one answer)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--train-layers", type=int, default=6)
    parser.add_argument("--cache-frozen", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default="zero_shot,bt,judge_ls0,judge_ls0.1,gram_ls0.1")
    parser.add_argument("--output", default="runs/quality")
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    base = resolve_model_path(args.model)
    train_file, pool_file, in_domain, ood = slices(args, out)
    sets = {"in_domain": in_domain, **ood}
    arms = args.arms.split(",")
    results = {"settings": vars(args), "hardware": hardware(), "arms": {}}
    started = time.perf_counter()
    for arm in arms:
        seconds = 0.0
        if arm == "zero_shot":
            model = base
        elif arm == "bt":
            seconds = train_arm(arm, "bt", base, train_file, out, args, epochs=args.bt_epochs,
                                max_length=args.bt_max_length)
            model = str(out / arm)
        elif arm.startswith("judge_ls"):
            seconds = train_arm(arm, "finetune", base, train_file, out, args, label_smoothing=float(arm[8:]))
            model = str(out / arm)
        elif arm.startswith("gram_ls"):
            seconds = train_arm(arm + "_stage1", "pretrain", base, pool_file, out, args, epochs=args.pretrain_epochs)
            seconds += train_arm(arm, "finetune", str(out / (arm + "_stage1")), train_file, out, args,
                                 label_smoothing=float(arm[7:]))
            model = str(out / arm)
        else:
            raise SystemExit(f"unknown arm {arm}")
        results["arms"][arm] = {"train_seconds": round(seconds, 1), "eval": evaluate(model, sets, args)}
        (out / "quality.json").write_text(json.dumps(results, indent=2))
        print(f"[{time.perf_counter() - started:7.0f}s] {arm}: " + ", ".join(
            f"{k} {v['accuracy']:.3f}" for k, v in results["arms"][arm]["eval"].items()), flush=True)
    (out / "quality.md").write_text(table(results, list(sets)))
    print(table(results, list(sets)))


def table(results: dict, sets: list[str]) -> str:
    lines = ["| arm | train s | " + " | ".join(sets) + " | mean OOD | consistency (in-dom) | ECE (in-dom) | "
             "acc. chosen longer / shorter (in-dom) |",
             "|---|---:|" + "---:|" * len(sets) + "---:|---:|---:|---|"]
    for arm, r in results["arms"].items():
        accs = [r["eval"][s]["accuracy"] for s in sets]
        ood = [r["eval"][s]["accuracy"] for s in sets if s != "in_domain"]
        ind = r["eval"]["in_domain"]
        lb = ind["length_bias"]
        pc = "—" if ind["position_consistency"] is None else f"{ind['position_consistency']:.2f}"
        longer, shorter = lb["chosen_longer"]["accuracy"], lb["chosen_shorter"]["accuracy"]
        lines.append(f"| {arm} | {r['train_seconds']:.0f} | " + " | ".join(f"{a:.3f}" for a in accs) +
                     f" | {sum(ood) / len(ood):.3f} | {pc} | {ind['ece']:.3f} | "
                     f"{'—' if longer is None else f'{longer:.2f}'} / {'—' if shorter is None else f'{shorter:.2f}'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
