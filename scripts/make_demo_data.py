"""Rebuild the demo data bundled in rewardkit/resources/ from ../shared/data (provenance in NOTICE).

  demo_train.jsonl  UltraFeedback "train" pairs whose GPT-4 ratings differ by ≥ 2 points
                    (a clear preference; ties and near-ties carry mostly rating noise), seeded order
  demo_eval.jsonl   every UltraFeedback "eval" pair (held out, every margin; seeded order) + 40 LLMBar "Natural"
                    pairs (out of domain). The demo takes the first pairs of each that fit its row length.

    python scripts/make_demo_data.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "rewardkit" / "resources"


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--min-margin", type=float, default=2.0)
    parser.add_argument("--eval-pairs", type=int, default=None, help="default: all of them")
    parser.add_argument("--natural-pairs", type=int, default=40)
    args = parser.parse_args()
    pool = rows(args.shared / "ultrafeedback_binarized_subset.jsonl")
    for row in pool:
        row["margin"] = row["score_chosen"] - row["score_rejected"] if "score_chosen" in row else None
    train = [r for r in pool if r["subset"] == "train" and r["margin"] is not None and r["margin"] >= args.min_margin]
    held = [r for r in pool if r["subset"] == "eval"]
    random.Random(0).shuffle(train)
    random.Random(1).shuffle(held)
    natural = [r for r in rows(args.shared / "llmbar.jsonl") if r.get("subset") == "Natural"]
    random.Random(2).shuffle(natural)
    for name, data in (("demo_train.jsonl", train), ("demo_eval.jsonl", held[: args.eval_pairs] + natural[: args.natural_pairs])):
        (RESOURCES / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data))
        print(f"{name}: {len(data)} pairs")


if __name__ == "__main__":
    main()
