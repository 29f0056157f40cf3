"""What shortens the demo's training on an fp32 CPU without changing what is learned.

The demo's judge fine-tuning and Bradley–Terry runs (recipes/partial_finetune.py: top 6 of 30
blocks on cached frozen states, lr 1e-4, warm-up 10%, one epoch) on the same pairs, side by
side in one run, with one setting changed per arm:
  default        batches of 8 pairs (the demo's setting), all cores
  token-budget   length-bucketed batches under a token budget (--batch-tokens 8 × max length):
                 rows of similar length together, less padding
  one-thread     torch.set_num_threads(1)
Reported per arm: wall time of the whole run (caching included), its ratio to default, the
final training loss and the held-out figures the loop measures — a setting that changes what
is learned shows up there.

    python bench/train_fp32.py [--pairs 96] [--eval-pairs 48] [--max-length 320]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from common import hardware


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--eval-pairs", type=int, default=48)
    parser.add_argument("--max-length", type=int, default=320)
    parser.add_argument("--output", default="runs/train_fp32")
    args = parser.parse_args()

    from rewardkit import train_method
    from rewardkit.data import load_pairs
    from rewardkit.methods.judge import JudgeConfig
    from rewardkit.models import resolve_model_path
    from rewardkit.recipes.demo import bundled
    from rewardkit.recipes.partial_finetune import PartialFineTune

    print(f"# fp32 training settings\n# machine: {hardware()}\n# settings: {vars(args)}", flush=True)
    base = resolve_model_path(args.model)
    train = load_pairs(bundled("demo_train.jsonl")).records[:args.pairs]
    held = [p for p in load_pairs(bundled("demo_eval.jsonl")).records if p.subset == "eval"][:args.eval_pairs]
    out, rows = Path(args.output), []
    threads = torch.get_num_threads()
    for method in ("judge", "bradley_terry"):
        length = args.max_length if method == "judge" else args.max_length * 4 // 5
        for arm in ("default", "token-budget", "one-thread"):
            settings = PartialFineTune(max_length=length, bt_max_length=length,
                                       batch_tokens=8 * length if arm == "token-budget" else None)
            loop = settings.loop(base, train, out / f"{method}-{arm}", epochs=1.0)
            loop.eval_data = held
            torch.set_num_threads(1 if arm == "one-thread" else threads)
            start = time.perf_counter()
            options = JudgeConfig(label_smoothing=settings.label_smoothing) if method == "judge" else None
            summary = train_method(method, loop, options)
            seconds = time.perf_counter() - start
            torch.set_num_threads(threads)
            rows.append({"method": method, "arm": arm, "seconds": round(seconds, 1), "steps": summary["steps"],
                         "final_loss": summary["final_loss"], "eval_accuracy": summary.get("eval_accuracy"),
                         "eval_consistency": summary.get("eval_position_consistency")})
            print(json.dumps(rows[-1]), flush=True)
    base_s = {r["method"]: r["seconds"] for r in rows if r["arm"] == "default"}
    print("| method | arm | s | vs default | steps | final train loss | held-out accuracy | held-out consistency |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        consistency = "—" if r["eval_consistency"] is None else f"{r['eval_consistency']:.3f}"
        print(f"| {r['method']} | {r['arm']} | {r['seconds']:.0f} | {base_s[r['method']] / r['seconds']:.2f}× | {r['steps']} | "
              f"{r['final_loss']:.3f} | {r['eval_accuracy']:.3f} | {consistency} |")
    (out / "results.json").write_text(json.dumps({"machine": hardware(), "settings": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
