"""Pair-generation pre-training: given a question, generate both responses; LM loss on the
response tokens only (question and template masked), logits only at those positions."""

from __future__ import annotations

from typing import Iterable

import torch

from rewardkit.data.collate import pad_right
from rewardkit.data.templates import default_pretrain_template
from rewardkit.data.tokenize import SegmentEncoder
from rewardkit.losses import masked_lm_loss
from rewardkit.methods.base import Prepared, TemplatedTask
from rewardkit.methods.pretrain.config import PretrainConfig
from rewardkit.models.manifest import ModelManifest
from rewardkit.training.model_setup import training_record

KIND = "pretrained_generator"


class PretrainTask(TemplatedTask):
    sequence_keys = ("input_ids",)
    default_template = staticmethod(default_pretrain_template)
    needs_pair_slots, labeled = True, False
    options: PretrainConfig

    def build(self):
        model, tokenizer = self.load_model()
        self.encoder = SegmentEncoder(self.tokenizer, self.template, self.loop.max_length, append_eos=True)
        return model, self.tokenizer

    def prepare(self, pairs, *, for_eval: bool = False) -> Prepared:
        features, truncated = [], 0
        for pair in pairs:
            encoded = self.encoder.encode(pair.prompt, pair.response_a, pair.response_b,
                                          loss_slots=("response_a", "response_b"))
            truncated += encoded.truncated
            features.append({"input_ids": encoded.input_ids, "loss_mask": encoded.loss_mask})
        return Prepared(features, truncated, len(pairs))

    def collate(self, features):
        ids, mask = pad_right([f["input_ids"] for f in features], self.tokenizer.pad_token_id)
        loss_mask, _ = pad_right([f["loss_mask"] for f in features], 0)
        return {"input_ids": ids, "attention_mask": mask, "loss_mask": loss_mask}

    def forward(self, backbone, hidden, batch):
        # right padding + causal attention: no mask needed. The hidden state at t predicts
        # token t+1; keep only positions whose next token is a response token.
        keep = batch["loss_mask"][:, 1:].bool()  # (B, T-1)
        selected = hidden[:, :-1][keep]  # (N, H)
        targets = batch["input_ids"][:, 1:][keep]  # (N,)
        return backbone.get_output_embeddings()(selected), targets  # (N, V): only response positions

    def loss_items(self, batch) -> int:
        """The loss is a mean over response tokens: steps weight micro-batches by them."""
        return int(batch["loss_mask"][:, 1:].sum())

    def loss(self, forward, batch):
        logits, targets = forward(batch)
        loss = masked_lm_loss(logits, targets)
        return loss, {"token_accuracy": (logits.argmax(-1) == targets).float().mean().item()}

    @torch.inference_mode()
    def evaluate(self, forward, batches: Iterable[dict]) -> dict:
        losses = [masked_lm_loss(*forward(batch)).item() for batch in batches]
        return {"eval_loss": sum(losses) / max(1, len(losses))}

    def manifest(self) -> ModelManifest:
        return ModelManifest(kind=KIND, template=self.template.to_dict(), max_length=self.loop.max_length,
                             base_model=self.loop.model, training=training_record("pretrain", self.loop, self.options))
