"""Partial fine-tuning with and without --cache-frozen, through the real trainer, side by side.

Both arms: the same judge fine-tuning run (same pairs, seed, top --train-layers blocks trained,
bf16 autocast where native, checkpointing). `plain` runs all blocks at every step; `cached`
runs the frozen blocks once per row and then only the top blocks. Prints wall time of the
whole run (the one-off caching included), the ratio, and how far the two loss curves are apart
(they train the same model; only bf16 rounding differs).

    python bench/cache_frozen.py [--pairs 32] [--epochs 2] [--train-layers 6] [--max-length 320]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import SHARED_DATA, hardware


def run(arm: str, args, data: Path, out: Path) -> dict:
    from rewardkit.methods.train_config import TrainConfig, train

    config = TrainConfig(task="finetune", model=args.model, data=[str(data)], output=str(out / arm), epochs=args.epochs,
                         batch_size=args.batch_size, max_length=args.max_length, train_layers=args.train_layers,
                         cache_frozen=arm == "cached", lr=1e-4, seed=0, save_every=10**6, warmup_ratio=0.1)
    start = time.perf_counter()
    summary = train(config)
    seconds = time.perf_counter() - start
    losses = [json.loads(line)["loss"] for line in (out / arm / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    return {"seconds": seconds, "steps": summary["steps"], "losses": losses}


def main() -> None:
    from rewardkit.data import load_pairs, write_pairs
    from rewardkit.models import resolve_model_path

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=320)
    parser.add_argument("--train-layers", type=int, default=6)
    args = parser.parse_args()
    args.model = str(resolve_model_path(args.model))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        pairs = [p for p in load_pairs(SHARED_DATA / "ultrafeedback_binarized_subset.jsonl").records if p.subset == "train"]
        write_pairs(out / "pairs.jsonl", pairs[: args.pairs])
        results = {arm: run(arm, args, out / "pairs.jsonl", out) for arm in ("plain", "cached")}
    plain, cached = results["plain"], results["cached"]
    gap = max(abs(a - b) for a, b in zip(plain["losses"], cached["losses"]))
    print(f"hardware: {hardware()}")
    print(f"settings: model={args.model}, judge fine-tuning, {args.pairs} pairs x 2 orders, {args.epochs} epochs, "
          f"batch {args.batch_size}, max length {args.max_length}, top {args.train_layers} blocks trained")
    for arm, r in results.items():
        print(f"  {arm:<7} {r['seconds']:7.1f} s for {r['steps']} steps")
    print(f"cache-frozen speed-up, whole run incl. caching: {plain['seconds'] / cached['seconds']:.2f}x; "
          f"max |loss difference| per step: {gap:.4f}")


if __name__ == "__main__":
    main()
