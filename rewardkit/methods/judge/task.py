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
from rewardkit.data.templates import default_judge_template, tool_judge_template
from rewardkit.data.tokenize import SegmentEncoder, label_token_ids
from rewardkit.errors import ConfigError
from rewardkit.losses import judge_loss, order_centred_judge_loss
from rewardkit.methods.base import Prepared, TemplatedTask
from rewardkit.methods.judge.config import JudgeConfig
from rewardkit.methods.judge.scorer import KIND
from rewardkit.models.heads import candidate_logits, last_positions
from rewardkit.models.manifest import ModelManifest
from rewardkit.training.model_setup import training_record
from rewardkit.training.source_weights import SourceIndex, SourceWeighting, per_source_metrics, read_named_sources
from rewardkit.verifiers.observations import ToolContext, observe_pair


class JudgeTask(TemplatedTask):
    sequence_keys = ("input_ids",)
    default_template, needs_pair_slots = staticmethod(default_judge_template), True
    options: JudgeConfig
    group_key = "pair"  # a pair's two orders share a batch (also under --batch-tokens)

    def __init__(self, loop, options, **kwargs):
        super().__init__(loop, options, **kwargs)
        self.sources, self.weighting = SourceIndex(), None  # MORE's per-source state (training/source_weights.py)
        self.epoch_order = options.source_epoch_order(self.group_key, loop.batch_tokens)  # --source-batches
        if options.tool_observations and not self.template.observes:
            if loop.template:
                raise ConfigError(f"--tool-observations: the template {loop.template} has no {{observations}} slot "
                                  "for the tools' findings; add one after the answers")
            self.template = tool_judge_template()

    def read(self, source) -> list:
        # each row named by its source: its 'source' field, else its file (--source-map renames)
        return read_named_sources(super().read, source, self.options.source_map, check_keys=source is self.loop.data)

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
            context = ToolContext.from_extra(pair.extra) if self.template.observes else None
            for first, second, target in orders:
                observations = observe_pair(first, second, context) if context is not None else ""
                encoded = self.encoder.encode(pair.prompt, first, second, observations=observations)
                truncated += encoded.truncated
                features.append({"input_ids": encoded.input_ids, "target": target, "pair": index,
                                 "source": self.sources.of(pair)})
        return Prepared(features, truncated, len(pairs))

    def collate(self, features: list[dict]) -> dict:
        ids, mask = pad_right([f["input_ids"] for f in features], self.tokenizer.pad_token_id)
        return {"input_ids": ids, "attention_mask": mask, "target": torch.tensor([f["target"] for f in features]),
                "pair": torch.tensor([f["pair"] for f in features]),
                "source": torch.tensor([f["source"] for f in features])}

    def forward(self, backbone, hidden, batch) -> torch.Tensor:
        last = last_positions(hidden, batch["attention_mask"])
        self.features = last.detach()  # what MORE's head gradients are taken on
        return candidate_logits(backbone, last, self.label_ids.to(last.device))  # (B, 2)

    def loss(self, forward, batch):
        logits = forward(batch)
        metrics = {"accuracy": (logits.argmax(-1) == batch["target"]).float().mean().item()}
        if self.options.source_weighting == "more":
            return self._more_loss(logits, batch), {**metrics, **self.weighting.latest}
        if self.options.centre_orders:
            loss = order_centred_judge_loss(logits, batch["target"], batch["pair"], self.options.label_smoothing)
        else:
            loss = judge_loss(logits, batch["target"], self.options.label_smoothing)
        return loss, metrics

    def _more_loss(self, logits, batch):
        """MORE's weighted loss: each row's smoothed cross-entropy over the two verdict tokens,
        and its gradient with respect to their two head rows in closed form, (p − y) ⊗ h."""
        if self.weighting is None:
            self.weighting = SourceWeighting("more", self.sources.names, self.options.source_momentum,
                                             self.options.source_normalize)
        targets = batch["target"].to(logits.device)
        row_losses = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none",
                                                       label_smoothing=self.options.label_smoothing)
        smoothed = torch.full_like(logits.float(), self.options.label_smoothing / 2)
        smoothed.scatter_(1, targets[:, None], 1 - self.options.label_smoothing / 2)
        error = logits.detach().float().softmax(-1) - smoothed  # (B, 2)
        row_grads = (error[:, :, None] * self.features.float()[:, None, :]).flatten(1)
        return self.weighting.loss(row_losses, batch["source"].to(logits.device), row_grads)

    def summary_extras(self) -> dict:
        """What the training summary saves beside its metrics: MORE's mean source weights."""
        return {"source_weights": self.weighting.summary()} if self.weighting is not None else {}

    @torch.inference_mode()
    def evaluate(self, forward, batches: Iterable[dict]) -> dict:
        """Pair accuracy with both orders averaged, the mean P(chosen better), and how often both orders agree."""
        p_right: dict[int, list[float]] = {}
        source_of: dict[int, int] = {}
        for batch in batches:
            probs = forward(batch).float().softmax(-1)
            for row, (pair, target) in enumerate(zip(batch["pair"].tolist(), batch["target"].tolist())):
                p_right.setdefault(pair, []).append(probs[row, target].item())
                source_of[pair] = int(batch["source"][row])
        averaged = [sum(v) / len(v) for v in p_right.values()]
        consistent = [all(p > 0.5 for p in v) or all(p < 0.5 for p in v) for v in p_right.values() if len(v) == 2]
        return {"eval_accuracy": sum(p > 0.5 for p in averaged) / max(1, len(averaged)),
                # what a reloaded judge's compare(prompt, chosen, rejected) averages to: the check
                # that training-time and reloaded scores are the same computation
                "eval_mean_p_chosen": sum(averaged) / max(1, len(averaged)),
                "eval_position_consistency": sum(consistent) / max(1, len(consistent)),
                **per_source_metrics(averaged, [source_of[p] for p in p_right], self.sources.names)}

    def manifest(self) -> ModelManifest:
        return ModelManifest(kind=KIND, template=self.template.to_dict(), label_tokens=list(self.template.labels),
                             label_token_ids=self.label_ids.tolist(), max_length=self.loop.max_length,
                             base_model=self.loop.model, training=training_record("judge", self.loop, self.options))
