"""Judge fine-tuning throughput and memory: rewardkit's trainer step vs the straightforward way.

rewardkit: decoder → hidden state at the verdict position only → 2 logits (the label tokens)
           → label-smoothed CE; with the trainer's defaults (bf16 autocast where the CPU/GPU
           computes bf16 natively, activation checkpointing, frozen embeddings).
baseline : what a generic SFT trainer does: the judge prompt + verdict token as the sequence,
           labels masked except the verdict, the model's own loss → full-vocabulary logits for
           every position, upcast to fp32.
Same model, same pairs, same batch, same trainable parameters; each arm runs in its own
process so peak memory is its own. Prints tokens/s, peak RSS, and the ratios.

    python bench/train_throughput.py [--model smollm2-135m] [--batch-size 4] [--max-length 512] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_arm(arm: str, args) -> dict:
    import torch

    from rewardkit.data import load_pairs
    from rewardkit.data.collate import pad_right
    from rewardkit.methods.judge import JudgeConfig, JudgeTask
    from rewardkit.models.loading import bf16_supported
    from rewardkit.training import LoopConfig
    from rewardkit.training.frozen_cache import decoder_states
    from rewardkit.training.loop import TaskModule

    # the trainer's defaults: bf16 autocast where the CPU has native bf16, checkpointing, frozen embeddings
    defaults = arm == "rewardkit"
    torch.manual_seed(0)
    loop = LoopConfig(model=args.model, data=[args.data], max_length=args.max_length, batch_size=args.batch_size,
                      train_layers=args.train_layers, gradient_checkpointing=defaults, freeze_embeddings=defaults)
    task = JudgeTask(loop, JudgeConfig())
    model, tokenizer = task.build()
    module = TaskModule(model, task, decoder_states)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=defaults and bf16_supported(torch.device("cpu")))
    pairs = load_pairs(args.data).records[: args.batch_size * (args.steps + 1)]
    features = task.prepare(pairs).features
    # keep long rows so both arms see the same, realistic sequence lengths
    features.sort(key=lambda f: -len(f["input_ids"]))
    batches = [features[i * args.batch_size:(i + 1) * args.batch_size] for i in range(args.steps + 1)]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    label_ids = task.label_ids

    def step(feats):
        with autocast:
            return _step(feats)

    def _step(feats):
        if arm.startswith("rewardkit"):
            batch = task.collate(feats)
            loss = task.loss(module, batch)[0]
            tokens = int(batch["attention_mask"].sum())
        else:
            seqs = [f["input_ids"] + [int(label_ids[f["target"]])] for f in feats]
            ids, mask = pad_right(seqs, tokenizer.pad_token_id)
            labels = torch.full_like(ids, -100)
            for row, seq in enumerate(seqs):
                labels[row, len(seq) - 1] = seq[-1]
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            tokens = int(mask.sum())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return tokens

    step(batches[0])  # warm-up: allocator, optimizer state
    before = rss_mb()
    start = time.perf_counter()
    tokens = sum(step(b) for b in batches[1:])
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"arm": arm, "tokens": tokens, "seconds": elapsed, "tokens_per_s": tokens / elapsed,
            "peak_rss_mb": peak, "rss_before_steps_mb": before}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                       "ultrafeedback_binarized_subset.jsonl"))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--train-layers", type=int, default=None)
    parser.add_argument("--arms", default="baseline,rewardkit-fp32,rewardkit",
                        help="baseline (fp32, full-vocabulary logits); rewardkit-fp32 (verdict-only logits, "
                             "otherwise as baseline); rewardkit (the trainer's defaults: verdict-only logits, "
                             "bf16 autocast, activation checkpointing, frozen embeddings)")
    parser.add_argument("--arm", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(args.arm, args)))
        return
    import torch

    results = {}
    arms = args.arms.split(",")
    for arm in arms:
        command = [sys.executable, __file__, "--arm", arm, "--model", args.model, "--data", args.data,
                   "--batch-size", str(args.batch_size), "--max-length", str(args.max_length), "--steps", str(args.steps)]
        if args.train_layers:
            command += ["--train-layers", str(args.train_layers)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[arm] = json.loads(done.stdout.strip().splitlines()[-1])
        results[arm]["arm"] = arm
    base = results["baseline"]
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print(f"settings: model={args.model} batch={args.batch_size} max_length={args.max_length} steps={args.steps} "
          f"train_layers={args.train_layers or 'all'} weights=fp32 (see --arms help for each arm)")
    print(f"{'arm':<16} {'tokens/s':>9} {'peak RSS MB':>12} {'step RSS growth MB':>19} {'x tokens/s':>11} {'x peak RSS':>11}")
    for r in results.values():
        print(f"{r['arm']:<16} {r['tokens_per_s']:>9.1f} {r['peak_rss_mb']:>12.0f} {r['peak_rss_mb'] - r['rss_before_steps_mb']:>19.0f}"
              f" {r['tokens_per_s'] / base['tokens_per_s']:>10.2f}x {r['peak_rss_mb'] / base['peak_rss_mb']:>10.2f}x")


if __name__ == "__main__":
    main()
