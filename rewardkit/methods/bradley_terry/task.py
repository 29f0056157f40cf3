"""Bradley–Terry training: a value head on the last token, −log σ(r_c − r_r − m).

Chosen and rejected rows of a batch go through the model in one forward pass (chosen rows
first), and the reward is read at each row's last real token.
"""

from __future__ import annotations

from typing import Iterable

import torch

from rewardkit.data.collate import pad_right
from rewardkit.data.templates import default_reward_template
from rewardkit.data.tokenize import SegmentEncoder
from rewardkit.errors import DataError
from rewardkit.losses import bt_loss, soft_bt_loss
from rewardkit.methods.base import Prepared, TemplatedTask
from rewardkit.methods.bradley_terry.config import BradleyTerryConfig
from rewardkit.methods.bradley_terry.scorer import KIND
from rewardkit.models.heads import last_positions, value_rewards
from rewardkit.models.manifest import ModelManifest
from rewardkit.training.model_setup import training_record
from rewardkit.training.source_weights import SourceIndex, SourceWeighting, per_source_metrics, read_named_sources


class BradleyTerryTask(TemplatedTask):
    sequence_keys = ("chosen", "rejected")
    default_template, value_head = staticmethod(default_reward_template), True
    options: BradleyTerryConfig

    def read(self, source) -> list:
        # each row named by its source: its 'source' field, else its file (--source-map renames)
        return read_named_sources(super().read, source, self.options.source_map, check_keys=source is self.loop.data)

    def build(self):
        self.epoch_order = self.options.source_epoch_order(None, self.loop.batch_tokens)  # --source-batches
        model, tokenizer = self.load_model()
        self.encoder = SegmentEncoder(self.tokenizer, self.template, self.loop.max_length)
        self.sources, self.weighting = SourceIndex(), None
        return model, self.tokenizer

    def prepare(self, pairs, *, for_eval: bool = False) -> Prepared:
        features, truncated = [], 0
        for index, pair in enumerate(pairs):
            chosen = self.encoder.encode(pair.prompt, pair.chosen)
            rejected = self.encoder.encode(pair.prompt, pair.rejected)
            truncated += chosen.truncated or rejected.truncated
            margin = pair.margin if (self.options.use_margin and pair.margin is not None) else 0.0
            feature = {"chosen": chosen.input_ids, "rejected": rejected.input_ids, "margin": margin,
                       "source": self.sources.of(pair)}
            if self.options.soft_targets and not for_eval:  # held-out pairs are scored on their labels
                feature["target"] = soft_target(pair, index)
            features.append(feature)
        return Prepared(features, truncated, len(pairs))

    def collate(self, features):
        # (2B, T): chosen rows first, then rejected rows, one forward for both
        ids, mask = pad_right([f["chosen"] for f in features] + [f["rejected"] for f in features],
                              self.tokenizer.pad_token_id)
        batch = {"input_ids": ids, "attention_mask": mask, "margin": torch.tensor([f["margin"] for f in features]),
                 "source": torch.tensor([f["source"] for f in features])}
        if features and "target" in features[0]:
            batch["target"] = torch.tensor([f["target"] for f in features])
        return batch

    def forward(self, backbone, hidden, batch):
        last = last_positions(hidden, batch["attention_mask"])
        self.features = last.detach()  # what MORE's head gradients are taken on
        rewards = value_rewards(backbone, last)
        half = rewards.shape[0] // 2
        return rewards[:half], rewards[half:]

    def loss(self, forward, batch):
        chosen, rejected = forward(batch)
        if "target" in batch:
            loss = soft_bt_loss(chosen, rejected, batch["target"])
            if self.options.center_rewards:
                loss = loss + self.options.center_rewards * ((chosen.float() + rejected.float()) ** 2).mean()
            return loss, {"accuracy": ((chosen > rejected) == (batch["target"] > 0.5)).float().mean().item()}
        margin = batch["margin"] if self.options.use_margin else None
        metrics = {"accuracy": (chosen > rejected).float().mean().item()}
        if self.options.source_weighting == "more":
            return self._more_loss(chosen, rejected, margin, batch), {**metrics, **self.weighting.latest}
        loss = bt_loss(chosen, rejected, margin, self.options.center_rewards)
        return loss, metrics

    def _more_loss(self, chosen, rejected, margin, batch):
        """MORE's weighted loss: each row's −log σ(r_c − r_r − m), and its gradient with respect
        to the value head in closed form, −(1 − σ(·))·(h_c − h_r), on the detached features."""
        if self.weighting is None:
            self.weighting = SourceWeighting("more", self.sources.names, self.options.source_momentum,
                                             self.options.source_normalize)
        gap = chosen.float() - rejected.float() - (margin.float() if margin is not None else 0.0)
        row_losses = -torch.nn.functional.logsigmoid(gap)
        half = self.features.shape[0] // 2
        row_grads = -(1 - torch.sigmoid(gap.detach()))[:, None] * (self.features[:half] - self.features[half:]).float()
        loss = self.weighting.loss(row_losses, batch["source"].to(row_losses.device), row_grads)
        if self.options.center_rewards:
            loss = loss + self.options.center_rewards * ((chosen.float() + rejected.float()) ** 2).mean()
        return loss

    def summary_extras(self) -> dict:
        """What the training summary saves beside its metrics: MORE's mean source weights."""
        return {"source_weights": self.weighting.summary()} if self.weighting is not None else {}

    @torch.inference_mode()
    def evaluate(self, forward, batches: Iterable[dict]) -> dict:
        right = total = 0
        margin = 0.0
        p_chosen, sources = [], []
        for batch in batches:
            chosen, rejected = forward(batch)
            right += (chosen > rejected).sum().item()
            margin += (chosen.float() - rejected.float()).sum().item()
            total += chosen.shape[0]
            p_chosen += torch.sigmoid(chosen.float() - rejected.float()).tolist()
            sources += batch["source"].tolist()
        # eval_mean_margin: mean r(chosen) − r(rejected), what the reloaded model's scores give
        return {"eval_accuracy": right / max(1, total), "eval_mean_margin": margin / max(1, total),
                **per_source_metrics(p_chosen, sources, self.sources.names)}

    @torch.inference_mode()
    def saved_config(self, forward, batches: Iterable[dict]) -> dict:
        """The reward mean and std over training responses, where OpenRLHF's
        `--normalize_reward` reads them (`config.mean`, `config.std`), and `problem_type`
        "regression", which makes vLLM return the reward itself rather than its sigmoid
        (models/vllm_layout.py)."""
        rewards = torch.cat([torch.cat(forward(batch)) for batch in batches]).float()
        std = rewards.std().item() if rewards.numel() > 1 else 1.0
        return {"mean": rewards.mean().item(), "std": std if std > 1e-6 else 1.0, "problem_type": "regression"}

    def manifest(self) -> ModelManifest:
        return ModelManifest(kind=KIND, template=self.template.to_dict(), max_length=self.loop.max_length,
                             base_model=self.loop.model, training=training_record("bradley_terry", self.loop, self.options))


def soft_target(pair, index: int) -> float:
    """The pair's target probability that `chosen` is better (its `target` field)."""
    value = (pair.extra or {}).get("target")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise DataError(pair.source or "<data>", index, "target",
                        f"--soft-targets needs a probability in [0, 1] per pair, got {value!r}", in_memory=True)
    return float(value)
