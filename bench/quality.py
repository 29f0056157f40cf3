"""Quality study: what does each part of the method buy, on one backbone and one labeled set?

The study itself is `bench/quality_study.py` (the demo's training settings, in
`recipes/partial_finetune.py`); this script only parses flags and prints the table.

    python bench/quality.py [--train-pairs 382] [--eval-pairs 80] [--epochs 1] [--output runs/quality]
                            [--sources ultrafeedback,pandalm,llmeval2,hh_helpful,hh_harmless,dpo_demos]
"""

from __future__ import annotations

import argparse

from common import SHARED_DATA, hardware
from quality_study import TRAINING_SOURCES


def main() -> None:
    from quality_study import OOD, QualityStudy, quality_table, run_quality

    from rewardkit.recipes.partial_finetune import PartialFineTune

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
    parser.add_argument("--max-length", type=int, default=768,
                        help="judge rows (question + both answers) in training: only pairs that fit are taken")
    parser.add_argument("--bt-max-length", type=int, default=768, help="BT rows (question + one answer)")
    parser.add_argument("--batch-tokens", type=int, default=8 * 512, help="token budget per judge batch (0: rows)")
    parser.add_argument("--score-max-length", type=int, default=0, help="scoring limit; 0 = the model's own")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--train-layers", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default="zero_shot,bt,judge_ls0,judge_ls0.1,gram_ls0.1")
    parser.add_argument("--sources", default="ultrafeedback",
                        help="labeled pairs: an even share of each of these training sources (" + ", ".join(
                            TRAINING_SOURCES) + "); the out-of-domain and in-domain slices do not change")
    parser.add_argument("--output", default="runs/quality")
    args = parser.parse_args()
    settings = PartialFineTune(train_layers=args.train_layers, lr=args.lr, batch_size=args.batch_size,
                               max_length=args.max_length, bt_max_length=args.bt_max_length,
                               batch_tokens=args.batch_tokens or None, seed=args.seed)
    study = QualityStudy(data_dir=str(SHARED_DATA), model=args.model, train_pairs=args.train_pairs,
                         min_margin=args.min_margin, pretrain_pairs=args.pretrain_pairs, eval_pairs=args.eval_pairs,
                         epochs=args.epochs, bt_epochs=args.bt_epochs, pretrain_epochs=args.pretrain_epochs,
                         score_max_length=args.score_max_length or None, arms=args.arms.split(","), settings=settings,
                         train_sources=args.sources.split(","))
    results = run_quality(study, args.output, log=lambda line: print(line, flush=True), hardware=hardware())
    print(quality_table(results, ["in_domain", *OOD]))


if __name__ == "__main__":
    main()
