"""Judge fine-tuning: judge prompt → verdict token, smoothed cross-entropy over the two labels.

Every pair is shown in both orders (target "A" with the chosen answer first, "B" with it
second), and both orders of a pair stay in the same batch: a pure position preference then
earns no loss reduction. Only the verdict position's hidden state is projected, onto the two
label tokens' rows of the LM head.
"""

from __future__ import annotations

from typing import Iterable

import torch

from rewardkit.data.collate import pad_right
from rewardkit.data.templates import default_judge_template
from rewardkit.data.tokenize import SegmentEncoder, label_token_ids
from rewardkit.losses import judge_loss, order_centred_judge_loss
from rewardkit.methods.base import Prepared, TemplatedTask
from rewardkit.methods.judge.config import JudgeConfig
from rewardkit.methods.judge.scorer import KIND
from rewardkit.models.heads import candidate_logits, last_positions
from rewardkit.models.manifest import ModelManifest
from rewardkit.training.model_setup import training_record


class JudgeTask(TemplatedTask):
    sequence_keys = ("input_ids",)
    default_template, needs_pair_slots = staticmethod(default_judge_template), True
    options: JudgeConfig
    group_key = "pair"  # a pair's two orders share a batch (also under --batch-tokens)

    def build(self):
        model, tokenizer = self.load_model()
        self.label_ids = torch.tensor(label_token_ids(self.tokenizer, self.template.labels))
        self.encoder = SegmentEncoder(self.tokenizer, self.template, self.loop.max_length)
        return model, self.tokenizer

    def prepare(self, pairs, *, for_eval: bool = False) -> Prepared:
        both = self.options.both_orders or for_eval  # evaluation always averages both orders
        features, truncated = [], 0
        for index, pair in enumerate(pairs):
            # order AB puts chosen first (target 0 = "A"); order BA swaps (target 1 = "B")
            orders = [(pair.chosen, pair.rejected, 0), (pair.rejected, pair.chosen, 1)]
            if not both:
                orders = [orders[index % 2]]  # single order: alternate so labels stay balanced
            for first, second, target in orders:
                encoded = self.encoder.encode(pair.prompt, first, second)
                truncated += encoded.truncated
                features.append({"input_ids": encoded.input_ids, "target": target, "pair": index})
        return Prepared(features, truncated, len(pairs))

    def collate(self, features: list[dict]) -> dict:
        ids, mask = pad_right([f["input_ids"] for f in features], self.tokenizer.pad_token_id)
        return {"input_ids": ids, "attention_mask": mask, "target": torch.tensor([f["target"] for f in features]),
                "pair": torch.tensor([f["pair"] for f in features])}

    def forward(self, backbone, hidden, batch) -> torch.Tensor:
        last = last_positions(hidden, batch["attention_mask"])
        return candidate_logits(backbone, last, self.label_ids.to(last.device))  # (B, 2)

    def loss(self, forward, batch):
        logits = forward(batch)
        if self.options.centre_orders:
            loss = order_centred_judge_loss(logits, batch["target"], batch["pair"], self.options.label_smoothing)
        else:
            loss = judge_loss(logits, batch["target"], self.options.label_smoothing)
        return loss, {"accuracy": (logits.argmax(-1) == batch["target"]).float().mean().item()}

    @torch.inference_mode()
    def evaluate(self, forward, batches: Iterable[dict]) -> dict:
        """Pair accuracy with both orders averaged, the mean P(chosen better), and how often both orders agree."""
        p_right: dict[int, list[float]] = {}
        for batch in batches:
            probs = forward(batch).float().softmax(-1)
            for row, (pair, target) in enumerate(zip(batch["pair"].tolist(), batch["target"].tolist())):
                p_right.setdefault(pair, []).append(probs[row, target].item())
        averaged = [sum(v) / len(v) for v in p_right.values()]
        consistent = [all(p > 0.5 for p in v) or all(p < 0.5 for p in v) for v in p_right.values() if len(v) == 2]
        return {"eval_accuracy": sum(p > 0.5 for p in averaged) / max(1, len(averaged)),
                # what a reloaded judge's compare(prompt, chosen, rejected) averages to: the check
                # that training-time and reloaded scores are the same computation
                "eval_mean_p_chosen": sum(averaged) / max(1, len(averaged)),
                "eval_position_consistency": sum(consistent) / max(1, len(consistent))}

    def manifest(self) -> ModelManifest:
        return ModelManifest(kind=KIND, template=self.template.to_dict(), label_tokens=list(self.template.labels),
                             label_token_ids=self.label_ids.tolist(), max_length=self.loop.max_length,
                             base_model=self.loop.model, training=training_record("judge", self.loop, self.options))
