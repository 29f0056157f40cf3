"""Best-of-n latency of each ranking strategy, and whether it picks round-robin's best.

Candidates per prompt (deterministic, mixed quality): the pair's chosen and rejected answers,
each cut to its first half, and answers written for other prompts (off-topic). Round-robin
(all pairs + Bradley–Terry aggregation) is the reference ranking; for each strategy we report
mean latency per prompt, the speed-up over `linear` (the paper's sequential search), and the
share of prompts where its best equals round-robin's best.

    python bench/ranking.py [--model smollm2-135m] [--prompts 4] [--n 8 16]
"""

from __future__ import annotations

import argparse
import random
import time

from common import SHARED_DATA, hardware

STRATEGIES = ("linear", "knockout", "reference", "round_robin")


def candidate_sets(judge, prompts: int, n: int, max_tokens: int = 120, seed: int = 0):
    from rewardkit.data import load_pairs

    def short(text):
        return len(judge.tokenizer(text, add_special_tokens=False)["input_ids"]) <= max_tokens

    pairs = [p for p in load_pairs(SHARED_DATA / "ultrafeedback_binarized_subset.jsonl").records
             if short(p.chosen) and short(p.rejected) and len(str(p.prompt)) < 400]
    rng = random.Random(seed)
    rng.shuffle(pairs)
    sets = []
    for pair in pairs[:prompts]:
        own = [pair.chosen, pair.rejected, pair.chosen[: len(pair.chosen) // 2], pair.rejected[: len(pair.rejected) // 2]]
        others = [q.chosen for q in pairs[prompts:] if q.prompt != pair.prompt]
        rng.shuffle(others)
        candidates = (own + others)[:n]
        rng.shuffle(candidates)
        sets.append((pair.prompt, candidates))
    return sets


def main() -> None:
    from rewardkit import load_reward_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--n", type=int, nargs="+", default=[8, 16])
    args = parser.parse_args()
    judge = load_reward_model(args.model, max_length=1024)
    print(f"hardware: {hardware()}")
    print(f"settings: model={args.model} dtype={judge.model.dtype} prompts={args.prompts} candidates ≤120 tokens; "
          "every comparison scores both orders")
    for n in args.n:
        sets = candidate_sets(judge, args.prompts, n)
        timings = {s: [] for s in STRATEGIES}
        bests = {s: [] for s in STRATEGIES}
        for prompt, candidates in sets:
            for strategy in STRATEGIES:
                start = time.perf_counter()
                result = judge.rank(prompt, candidates, strategy=strategy)
                timings[strategy].append(time.perf_counter() - start)
                bests[strategy].append(result.best)
        linear = sum(timings["linear"]) / len(sets)
        print(f"\nbest-of-{n} ({len(sets)} prompts)")
        print(f"  {'strategy':<12} {'s/prompt':>9} {'vs linear':>10} {'agrees with round_robin':>24}")
        for strategy in STRATEGIES:
            mean = sum(timings[strategy]) / len(sets)
            agree = sum(a == b for a, b in zip(bests[strategy], bests["round_robin"])) / len(sets)
            print(f"  {strategy:<12} {mean:>9.2f} {linear / mean:>9.2f}x {agree:>23.0%}")


if __name__ == "__main__":
    main()
