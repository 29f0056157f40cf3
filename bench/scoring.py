"""Pairwise scoring throughput: PairwiseJudge.compare vs the straightforward way.

straightforward: fp32, one sequence per forward (each pair twice, once per order), the model's
                 full-vocabulary logits at every position, no cache.
rewardkit      : compare() with its defaults: bf16 where the CPU/GPU computes it natively,
                 token-budget batches sorted by length, hidden state → 2 verdict logits at
                 the last position only, the shared judge-instruction prefix computed once.
Same model and pairs, one run, for long (~1.5k tokens per judge prompt) and short (~300)
pairs. Also reports agreement of the two arms' verdicts, and achieved FLOP/s as a fraction of
the bf16 matmul peak measured in the same run.

    python bench/scoring.py [--model smollm2-135m] [--long 6] [--short 24]
"""

from __future__ import annotations

import argparse
import time

import torch
from common import SHARED_DATA, bf16_matmul_peak, forward_flops, hardware


def pick_pairs(judge, target: int, count: int, tolerance: float = 0.15):
    from rewardkit.data import load_pairs

    chosen = []
    for name in ("ultrafeedback_binarized_subset.jsonl", "llmbar.jsonl", "hh_rlhf_helpful_test_rmgallery.jsonl",
                 "llmeval2_benchmark.jsonl"):
        for pair in load_pairs(SHARED_DATA / name).records:
            n = len(judge.encoder.encode(pair.prompt, pair.chosen, pair.rejected).input_ids)
            if abs(n - target) <= tolerance * target:
                chosen.append(pair)
                if len(chosen) == count:
                    return chosen
    return chosen


def straightforward(model, judge, pairs) -> tuple[list[float], int, float]:
    label_ids = judge.label_ids
    probs, tokens = [], 0
    start = time.perf_counter()
    with torch.no_grad():
        for pair in pairs:
            by_order = []
            for first, second in ((pair.chosen, pair.rejected), (pair.rejected, pair.chosen)):
                ids = judge.encoder.encode(pair.prompt, first, second).input_ids
                logits = model(input_ids=torch.tensor([ids])).logits  # (1, T, V): every position
                tokens += len(ids)
                by_order.append(logits[0, -1, label_ids].softmax(-1)[0].item())
            probs.append((by_order[0] + (1 - by_order[1])) / 2)
    return probs, tokens, time.perf_counter() - start


def run(args, label: str, target: int, count: int, fp32_model, judge, peak: float) -> None:
    pairs = pick_pairs(judge, target, count)
    if not pairs:
        print(f"{label}: no pairs near {target} tokens")
        return
    base_probs, base_tokens, base_s = straightforward(fp32_model, judge, pairs)
    judge.engine.stats.update({k: 0 for k in judge.engine.stats})
    start = time.perf_counter()
    ours = judge.compare([p.prompt for p in pairs], [p.chosen for p in pairs], [p.rejected for p in pairs])
    ours_s = time.perf_counter() - start
    lengths = [len(judge.encoder.encode(p.prompt, a, b).input_ids) for p in pairs
               for a, b in ((p.chosen, p.rejected), (p.rejected, p.chosen))]
    agree = sum((x > 0.5) == (y > 0.5) for x, y in zip(base_probs, ours)) / len(pairs)
    max_diff = max(abs(x - y) for x, y in zip(base_probs, ours))
    flops = forward_flops(fp32_model.config, lengths)  # work of the judge prompts themselves
    print(f"\n{label}: {len(pairs)} pairs, mean judge prompt {sum(lengths) / len(lengths):.0f} tokens (both orders scored)")
    print(f"  {'arm':<16} {'pairs/s':>8} {'tokens/s':>9} {'TFLOP/s':>8} {'roofline':>9}")
    for arm, seconds in (("straightforward", base_s), ("rewardkit", ours_s)):
        print(f"  {arm:<16} {len(pairs) / seconds:>8.2f} {base_tokens / seconds:>9.0f} {flops / seconds / 1e12:>8.3f}"
              f" {flops / seconds / peak:>8.1%}")
    print(f"  speed-up: {base_s / ours_s:.2f}x; verdict agreement {agree:.1%}, max |Δp| {max_diff:.3f} (bf16 vs fp32)")
    print(f"  engine: {judge.engine.stats}")


def main() -> None:
    from rewardkit import load_reward_model
    from rewardkit.models import load_backbone

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--long", type=int, default=6, help="pairs of ~1.5k tokens")
    parser.add_argument("--short", type=int, default=24, help="pairs of ~300 tokens")
    parser.add_argument("--max-batch-tokens", type=int, default=8192)
    args = parser.parse_args()
    peak = bf16_matmul_peak()
    judge = load_reward_model(args.model, max_length=2048, max_batch_tokens=args.max_batch_tokens)
    fp32_model, _ = load_backbone(args.model, dtype="fp32")
    print(f"hardware: {hardware()}")
    print(f"settings: model={args.model}, rewardkit dtype={judge.model.dtype}, max_batch_tokens={args.max_batch_tokens}; "
          f"bf16 matmul peak measured now: {peak / 1e12:.2f} TFLOP/s")
    run(args, "short pairs", 300, args.short, fp32_model, judge, peak)
    run(args, "long pairs", 1500, args.long, fp32_model, judge, peak)


if __name__ == "__main__":
    main()
