"""Which judge-training recipe learns content? Arms side by side on one shared cache.

Every arm trains only the top --train-layers blocks of the same backbone, so what the frozen
blocks below produce for a row is the same in every arm: this script runs them once for all
rows (training pairs, the held-out curve slice and every out-of-domain set, the latter at full
length) with the library's FrozenBlockCache, then trains each arm from the same starting
weights with the library's JudgeTask loss and scores it on the cached states. That makes a
comparison of several recipes affordable on 2 CPU cores; the chosen recipe is then run by the
real training loop in the demo and the quality study.

Arms: zero_shot (no training) and judge arms named by their options, e.g.
  ls0.1            label smoothing 0.1, the plain judge loss (the old recipe)
  ls0.1-centred    the same with --centre-orders (order-centred margin: position bias gets no gradient)
  ls0.1-centred-lr3e-4
  ls0.1-balanced   trained on as many pairs per source, length-balanced (chosen longer in exactly
                   half: rewardkit.data.balance), drawn further down the same shuffled sources, so
                   answer length does not predict the label

    python bench/judge_recipe.py [--train-pairs 320] [--eval-pairs 80] [--epochs 2] [--output runs/judge_recipe]
                                 [--sources ultrafeedback,pandalm,llmeval2,hh_helpful,hh_harmless,dpo_demos]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import time
from pathlib import Path

import torch
from common import SHARED_DATA, hardware, training_source
from quality_study import ENGLISH_LLMEVAL2, OOD, TRAINING_SOURCES

from rewardkit.data.balance import even_shares, length_balanced
from rewardkit.data.inspect import chosen_longer_share
from rewardkit.recipes.partial_finetune import fitting_pairs
from rewardkit.training.batching import epoch_order


def training_pool(rng: random.Random, extra: tuple[str, ...] = (), seed: int = 0) -> dict[str, list]:
    """Training sources (never the OOD sets): UltraFeedback train pairs with a clear rating gap,
    PandaLM and the English LLMEval² subsets; held-out: UltraFeedback eval pairs. `extra`: more
    of bench/common's TRAINING_SOURCES, each shuffled by its own seeded generator so that `rng`
    (which then draws the OOD slices) is used exactly as without them."""
    from rewardkit.data import load_pairs

    uf = load_pairs(SHARED_DATA / "ultrafeedback_binarized_subset.jsonl").records
    pools = {"ultrafeedback": [p for p in uf if p.subset == "train" and (p.margin or 0) >= 2],
             "pandalm": load_pairs(SHARED_DATA / "pandalm_testset_v1.jsonl").records,
             "llmeval2": [p for p in load_pairs(SHARED_DATA / "llmeval2_benchmark.jsonl").records
                          if p.subset in ENGLISH_LLMEVAL2],
             "heldout": [p for p in uf if p.subset == "eval"]}
    for pairs in pools.values():
        rng.shuffle(pairs)
    for source in extra:
        if source not in pools:
            pools[source] = training_source(source)
            random.Random(f"{seed}:{source}").shuffle(pools[source])
    return pools


def training_sets(pools: dict, encoder, max_length: int, count: int, sources: list[str] | None = None) -> tuple[list, list]:
    """The plain training set (half UltraFeedback, a quarter each PandaLM and LLMEval², or an
    even share of each of `sources`; pairs whose judge row fits `max_length`) and a
    length-balanced one of the same size per source, drawn from the same shuffled sources
    further down where one kind runs short."""
    if sources:  # an even share from each named source, as far as each has pairs that fit
        fitting = {name: fitting_pairs(pools[name], encoder, max_length, 4 * count // len(sources)) for name in sources}
        plain = even_shares(fitting, count)
        taken = {id(p) for p in plain}
        balanced = []
        for pairs in fitting.values():
            balanced += length_balanced(pairs, count=sum(id(p) in taken for p in pairs))
        return plain, balanced
    quarter = count // 4
    plain, balanced = [], []
    for source, share in (("ultrafeedback", 2 * quarter), ("pandalm", quarter), ("llmeval2", quarter)):
        fitting = fitting_pairs(pools[source], encoder, max_length, 4 * share)
        plain += fitting[:share]
        balanced += length_balanced(fitting, count=share)
    return plain, balanced


def mean_judge_loss(task, module, batches) -> float:
    from rewardkit.losses import judge_loss

    with torch.inference_mode():
        losses = [judge_loss(module(b), b["target"], 0.0).item() for b in batches]
    return sum(losses) / max(1, len(losses))


def batches_of(task, collate, features: list, size: int) -> list:
    return [collate(features[i:i + size]) for i in range(0, len(features), size)]


def train_arm(arm: dict, task, module, collate, train_features, curve_batches, args, initial: dict) -> dict:
    """Train from the initial top-block weights; returns the learning curve."""
    from transformers import get_scheduler

    from rewardkit.methods.judge import JudgeConfig

    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in initial:
                p.copy_(initial[name])
    task.options = JudgeConfig(label_smoothing=arm["ls"], centre_orders=arm["centred"])
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=arm["lr"])
    steps_per_epoch = math.ceil(len(train_features) / args.batch_size)
    total = int(args.epochs * steps_per_epoch)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=int(0.1 * total), num_training_steps=total)
    curve, step, epoch, start = [], 0, 0, time.perf_counter()
    module.eval()
    curve.append({"step": 0, **task.evaluate(module, curve_batches), "heldout_loss": mean_judge_loss(task, module, curve_batches)})
    module.train()
    while step < total:
        ordered = epoch_order(task, train_features, args.seed * 1000 + epoch)
        for i in range(0, len(ordered), args.batch_size):
            loss, _ = task.loss(module, collate(ordered[i:i + args.batch_size]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            if step % args.curve_every == 0 or step == total:
                module.eval()
                curve.append({"step": step, "train_loss": loss.item(), **task.evaluate(module, curve_batches),
                              "heldout_loss": mean_judge_loss(task, module, curve_batches)})
                module.train()
                print(f"    {arm['name']} step {step}/{total}: {curve[-1]}", flush=True)
            if step >= total:
                break
        epoch += 1
    return {"curve": curve, "train_seconds": round(time.perf_counter() - start, 1)}


def score_sets(task, module, eval_batches: dict) -> dict:
    module.eval()
    out = {}
    for name, batches in eval_batches.items():
        figures = task.evaluate(module, batches)
        n = len({int(x) for b in batches for x in b["pair"]})
        acc = figures["eval_accuracy"]
        out[name] = {"accuracy": acc, "se": math.sqrt(acc * (1 - acc) / n), "pairs": n,
                     "position_consistency": figures["eval_position_consistency"]}
    module.train()
    return out


def parse_arm(name: str, default_lr: float) -> dict:
    arm = {"name": name, "ls": 0.1, "centred": False, "lr": default_lr, "balanced": False}
    for part in name.split("-"):
        if part.startswith("ls"):
            arm["ls"] = float(part[2:])
        elif part == "centred":
            arm["centred"] = True
        elif part == "balanced":
            arm["balanced"] = True
        elif part.startswith("lr"):
            arm["lr"] = float(part[2:])
    return arm


def main() -> None:
    from rewardkit.data import load_pairs
    from rewardkit.data.tokenize import SegmentEncoder
    from rewardkit.methods.judge import JudgeConfig, JudgeTask
    from rewardkit.models import resolve_model_path
    from rewardkit.training import LoopConfig
    from rewardkit.training.frozen_cache import FrozenBlockCache
    from rewardkit.training.loop import TaskModule

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--train-pairs", type=int, default=320, help="split 2:1:1 over UltraFeedback, PandaLM, LLMEval²")
    parser.add_argument("--sources", default="", help="an even share from each of these training sources ("
                        + ", ".join(TRAINING_SOURCES) + "); default: UltraFeedback 2 : PandaLM 1 : LLMEval² 1")
    parser.add_argument("--train-max-length", type=int, default=768, help="only pairs whose judge row fits are trained on")
    parser.add_argument("--curve-pairs", type=int, default=48, help="UltraFeedback eval pairs for the learning curve")
    parser.add_argument("--eval-pairs", type=int, default=80, help="per out-of-domain set, scored at full length")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--train-layers", type=int, default=6)
    parser.add_argument("--curve-every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default="zero_shot,ls0.1,ls0.1-centred")
    parser.add_argument("--output", default="runs/judge_recipe")
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    loop = LoopConfig(model=resolve_model_path(args.model), max_length=args.train_max_length, train_layers=args.train_layers,
                      freeze_embeddings=True, gradient_checkpointing=False, mixed_precision="no")
    task = JudgeTask(loop, JudgeConfig())
    model, tokenizer = task.build()
    full = SegmentEncoder(tokenizer, task.template, model.config.max_position_embeddings)

    sources = args.sources.split(",") if args.sources else None
    pools = training_pool(rng, tuple(sources or ()), args.seed)
    plain, balanced = training_sets(pools, full, args.train_max_length, args.train_pairs, sources)
    train = plain + [p for p in balanced if id(p) not in {id(q) for q in plain}]  # one cache for both sets
    prepared = task.prepare(train)  # task.encoder cuts at --train-max-length; chosen pairs fit, so nothing is cut
    train_features = prepared.features
    task.encoder = full  # everything scored is scored whole
    curve_features = task.prepare(pools["heldout"][: args.curve_pairs], for_eval=True).features
    eval_features = {}
    for name, file in OOD.items():
        pairs = load_pairs(SHARED_DATA / file).records
        rng.shuffle(pairs)
        eval_features[name] = task.prepare(pairs[: args.eval_pairs], for_eval=True).features
    rows = sum(len(f["input_ids"]) for fs in [train_features, curve_features, *eval_features.values()] for f in fs)
    print(f"{hardware()}\n{len(train)} training pairs ({len(train_features)} rows, {prepared.truncated} truncated at "
          f"{args.train_max_length} tokens); {rows} tokens to cache", flush=True)

    cache = FrozenBlockCache(model, args.train_layers, task.sequence_keys, tokenizer.pad_token_id)
    info = cache.attach([train_features, curve_features, *eval_features.values()], batch_size=8,
                        autocast=contextlib.nullcontext, store_dtype=torch.float32,
                        progress=lambda done, total: print(f"  cached {done}/{total}", flush=True) if done % 200 < 8 else None)
    print(f"cached in {info['seconds']:.0f} s ({info['megabytes']:.0f} MB)", flush=True)
    collate = cache.collate(task.collate)
    module = TaskModule(model, task, cache.states)
    initial = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}
    curve_batches = batches_of(task, collate, curve_features, 16)
    eval_batches = {name: batches_of(task, collate, fs, 16) for name, fs in eval_features.items()}
    results = {"hardware": hardware(), "settings": vars(args), "train_pairs": len(plain), "cached_train_pairs": len(train),
               "train_rows_truncated": prepared.truncated,
               "cache_seconds": round(info["seconds"], 1), "arms": {}}
    results["chosen_longer"] = {"plain": chosen_longer_share(plain), "balanced": chosen_longer_share(balanced)}
    in_set = {"plain": {id(p) for p in plain}, "balanced": {id(p) for p in balanced}}
    for name in args.arms.split(","):
        arm = parse_arm(name, args.lr)
        chosen = in_set["balanced" if arm["balanced"] else "plain"]
        features = [f for f in train_features if id(train[f["pair"]]) in chosen]
        entry = {} if name == "zero_shot" else train_arm(arm, task, module, collate, features, curve_batches,
                                                         args, initial)
        entry["train_rows"] = len(features) if name != "zero_shot" else 0
        if name == "zero_shot":
            with torch.no_grad():
                for n, p in module.named_parameters():
                    if n in initial:
                        p.copy_(initial[n])
            module.eval()
            entry["curve"] = [{"step": 0, **task.evaluate(module, curve_batches),
                               "heldout_loss": mean_judge_loss(task, module, curve_batches)}]
        entry["ood"] = score_sets(task, module, eval_batches)
        entry["ood_mean"] = sum(v["accuracy"] for v in entry["ood"].values()) / len(entry["ood"])
        results["arms"][name] = entry
        (out / "judge_recipe.json").write_text(json.dumps(results, indent=2))
        print(f"[{time.perf_counter() - started:6.0f}s] {name}: OOD mean {entry['ood_mean']:.3f} " +
              " ".join(f"{k} {v['accuracy']:.3f}±{v['se']:.3f}" for k, v in entry["ood"].items()), flush=True)
    plot(results, out / "learning_curve.png")
    print(table(results))


def table(results: dict) -> str:
    names = list(OOD)
    lines = ["| arm | train s | held-out loss (start → end) | " + " | ".join(names) + " | mean OOD |",
             "|---|---:|---|" + "---:|" * (len(names) + 1)]
    for arm, r in results["arms"].items():
        c = r["curve"]
        lines.append(f"| {arm} | {r.get('train_seconds', 0):.0f} | {c[0]['heldout_loss']:.3f} → {c[-1]['heldout_loss']:.3f} | "
                     + " | ".join(f"{r['ood'][n]['accuracy']:.3f} ± {r['ood'][n]['se']:.3f}" for n in names)
                     + f" | {r['ood_mean']:.3f} |")
    return "\n".join(lines)


def plot(results: dict, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for arm, r in results["arms"].items():
        steps = [p["step"] for p in r["curve"]]
        left.plot(steps, [p["heldout_loss"] for p in r["curve"]], marker="o", label=arm)
        right.plot(steps, [p["eval_accuracy"] for p in r["curve"]], marker="o", label=arm)
    left.axhline(math.log(2), color="grey", linestyle="--", linewidth=1)
    left.set_title("held-out judge loss (ln 2 dashed)")
    right.set_title("held-out accuracy (both orders)")
    for ax in (left, right):
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
