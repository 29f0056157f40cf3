"""The three training tasks. Each turns records into features, features into batches, and a
batch into a loss; the loop (`loop.py`) does everything else.

  pretrain  GRAM stage 1: generate both responses to a question; LM loss on response tokens
  finetune  GRAM stage 2: judge prompt → verdict token; smoothed CE over the two labels
  bt        Bradley–Terry: value head on the last token; −log σ(r_c − r_r − m)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardkit.data import load_pairs, load_response_pairs
from rewardkit.data.templates import (
    PromptTemplate,
    default_judge_template,
    default_pretrain_template,
    default_reward_template,
    load_template,
)
from rewardkit.data.tokenize import SegmentEncoder, label_token_ids
from rewardkit.errors import ConfigError
from rewardkit.losses import bt_loss, judge_loss, masked_lm_loss
from rewardkit.models.heads import candidate_logits, decoder_of, last_positions, value_rewards
from rewardkit.models.manifest import ModelManifest
from rewardkit.training.batching import pad_right
from rewardkit.training.config import TrainConfig
from rewardkit.training.frozen_features import HIDDEN_SUFFIX, pad_hidden
from rewardkit.training.model_setup import load_for_training


class TaskModule(torch.nn.Module):
    """Backbone + the task's forward, as one module: under DDP/FSDP the forward must pass
    through the wrapper that accelerate puts around this module for gradients to sync."""

    def __init__(self, backbone, forward_fn):
        super().__init__()
        self.backbone = backbone
        self.forward_fn = forward_fn

    def forward(self, batch: dict):
        return self.forward_fn(self.backbone, batch)


def _with_frozen(batch: dict, features: list[dict], keys: tuple[str, ...]) -> dict:
    """Adds the cached bottom-block states (see frozen_features.py), rows in the order of `keys`."""
    if keys[0] + HIDDEN_SUFFIX in features[0]:
        batch["frozen_hidden"] = pad_hidden([f[key + HIDDEN_SUFFIX] for key in keys for f in features])
    return batch


def _final_states(task, backbone, batch) -> torch.Tensor:
    """(B, T, H): the decoder's output, from the cached bottom-block states when the batch has them.
    No padding mask: rows are right-padded and attention is causal (see heads.last_hidden)."""
    if "frozen_hidden" in batch:
        return task.split.top(batch["frozen_hidden"])
    return decoder_of(backbone)(input_ids=batch["input_ids"], use_cache=False).last_hidden_state


@dataclass
class Prepared:
    features: list[dict]
    truncated: int  # rows the truncation policy touched
    records: int


def _template(config: TrainConfig, default) -> PromptTemplate:
    return load_template(config.template) if config.template else default


def _check_length(config: TrainConfig, model) -> None:
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and config.max_length > limit:
        raise ConfigError(f"--max-length {config.max_length} exceeds the model's limit of {limit} positions")


class JudgeFinetuneTask:
    name = "finetune"
    sequence_keys = ("input_ids",)
    split = None  # set by the loop under --cache-frozen

    def __init__(self, config: TrainConfig):
        self.config = config
        self.template = _template(config, default_judge_template())
        self.template.require_pair_slots("--template")

    def build(self):
        model, tokenizer = load_for_training(self.config)
        _check_length(self.config, model)
        self.tokenizer = tokenizer
        self.label_ids = torch.tensor(label_token_ids(tokenizer, self.template.labels))
        self.encoder = SegmentEncoder(tokenizer, self.template, self.config.max_length)
        return model, tokenizer

    def load_records(self, paths):
        return load_pairs(paths, self.config.data_format).records

    def prepare(self, pairs, both_orders: bool | None = None) -> Prepared:
        both = self.config.both_orders if both_orders is None else both_orders
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
        batch = {"input_ids": ids, "attention_mask": mask, "target": torch.tensor([f["target"] for f in features]),
                 "pair": torch.tensor([f["pair"] for f in features])}
        return _with_frozen(batch, features, self.sequence_keys)

    def compute(self, backbone, batch) -> torch.Tensor:
        hidden = last_positions(_final_states(self, backbone, batch), batch["attention_mask"])
        return candidate_logits(backbone, hidden, self.label_ids.to(hidden.device))  # (B, 2)

    def loss(self, model, batch):
        logits = model(batch)
        loss = judge_loss(logits, batch["target"], self.config.label_smoothing)
        accuracy = (logits.argmax(-1) == batch["target"]).float().mean()
        return loss, {"accuracy": accuracy.item()}

    @torch.inference_mode()
    def evaluate(self, model, prepared: Prepared, batch_size: int) -> dict:
        """Pair accuracy with both orders averaged, and how often both orders agree."""
        p_right: dict[int, list[float]] = {}
        for start in range(0, len(prepared.features), batch_size):
            batch = self.collate(prepared.features[start:start + batch_size])
            probs = self.compute(model, batch).float().softmax(-1)
            for row, (pair, target) in enumerate(zip(batch["pair"].tolist(), batch["target"].tolist())):
                p_right.setdefault(pair, []).append(probs[row, target].item())
        averaged = [sum(v) / len(v) for v in p_right.values()]
        consistent = [all(p > 0.5 for p in v) or all(p < 0.5 for p in v) for v in p_right.values() if len(v) == 2]
        return {"eval_accuracy": sum(p > 0.5 for p in averaged) / max(1, len(averaged)),
                "eval_position_consistency": sum(consistent) / max(1, len(consistent))}

    def manifest(self, config: TrainConfig) -> ModelManifest:
        return ModelManifest(kind="generative_judge", template=self.template.to_dict(),
                             label_tokens=list(self.template.labels), label_token_ids=self.label_ids.tolist(),
                             max_length=config.max_length, base_model=config.model, training=config.to_dict())


class PretrainTask:
    name = "pretrain"
    sequence_keys = ("input_ids",)
    split = None

    def __init__(self, config: TrainConfig):
        self.config = config
        self.template = _template(config, default_pretrain_template())
        self.template.require_pair_slots("--template")

    def build(self):
        model, tokenizer = load_for_training(self.config)
        _check_length(self.config, model)
        self.tokenizer = tokenizer
        self.encoder = SegmentEncoder(tokenizer, self.template, self.config.max_length, append_eos=True)
        return model, tokenizer

    def load_records(self, paths):
        return load_response_pairs(paths, self.config.data_format, seed=self.config.seed).records

    def prepare(self, pairs, both_orders=None) -> Prepared:
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
        return _with_frozen({"input_ids": ids, "attention_mask": mask, "loss_mask": loss_mask}, features,
                            self.sequence_keys)

    def compute(self, backbone, batch):
        hidden = _final_states(self, backbone, batch)  # right padding + causal attention: no mask needed
        # the hidden state at t predicts token t+1; keep only positions whose next token is a response token
        keep = batch["loss_mask"][:, 1:].bool()  # (B, T-1)
        selected = hidden[:, :-1][keep]  # (N, H)
        targets = batch["input_ids"][:, 1:][keep]  # (N,)
        return backbone.get_output_embeddings()(selected), targets  # (N, V): only response positions

    def loss(self, model, batch):
        logits, targets = model(batch)
        loss = masked_lm_loss(logits, targets)
        return loss, {"token_accuracy": (logits.argmax(-1) == targets).float().mean().item()}

    @torch.inference_mode()
    def evaluate(self, model, prepared: Prepared, batch_size: int) -> dict:
        losses = []
        for start in range(0, len(prepared.features), batch_size):
            logits, targets = self.compute(model, self.collate(prepared.features[start:start + batch_size]))
            losses.append(masked_lm_loss(logits, targets).item())
        return {"eval_loss": sum(losses) / max(1, len(losses))}

    def manifest(self, config: TrainConfig) -> ModelManifest:
        return ModelManifest(kind="pretrained_generator", template=self.template.to_dict(),
                             max_length=config.max_length, base_model=config.model, training=config.to_dict())


class BradleyTerryTask:
    name = "bt"
    sequence_keys = ("chosen", "rejected")
    split = None

    def __init__(self, config: TrainConfig):
        self.config = config
        self.template = _template(config, default_reward_template())

    def build(self):
        model, tokenizer = load_for_training(self.config, value_head=True)
        _check_length(self.config, model)
        self.tokenizer = tokenizer
        self.encoder = SegmentEncoder(tokenizer, self.template, self.config.max_length)
        return model, tokenizer

    def load_records(self, paths):
        return load_pairs(paths, self.config.data_format).records

    def prepare(self, pairs, both_orders=None) -> Prepared:
        features, truncated = [], 0
        for pair in pairs:
            chosen = self.encoder.encode(pair.prompt, pair.chosen)
            rejected = self.encoder.encode(pair.prompt, pair.rejected)
            truncated += chosen.truncated or rejected.truncated
            features.append({"chosen": chosen.input_ids, "rejected": rejected.input_ids,
                             "margin": pair.margin if (self.config.use_margin and pair.margin is not None) else 0.0})
        return Prepared(features, truncated, len(pairs))

    def collate(self, features):
        # (2B, T): chosen rows first, then rejected rows, one forward for both
        ids, mask = pad_right([f["chosen"] for f in features] + [f["rejected"] for f in features],
                              self.tokenizer.pad_token_id)
        batch = {"input_ids": ids, "attention_mask": mask, "margin": torch.tensor([f["margin"] for f in features])}
        return _with_frozen(batch, features, self.sequence_keys)

    def compute(self, backbone, batch):
        rewards = value_rewards(backbone, last_positions(_final_states(self, backbone, batch), batch["attention_mask"]))
        half = rewards.shape[0] // 2
        return rewards[:half], rewards[half:]

    def loss(self, model, batch):
        chosen, rejected = model(batch)
        margin = batch["margin"] if self.config.use_margin else None
        loss = bt_loss(chosen, rejected, margin, self.config.center_rewards)
        return loss, {"accuracy": (chosen > rejected).float().mean().item()}

    @torch.inference_mode()
    def evaluate(self, model, prepared: Prepared, batch_size: int) -> dict:
        right = total = 0
        for start in range(0, len(prepared.features), batch_size):
            chosen, rejected = self.compute(model, self.collate(prepared.features[start:start + batch_size]))
            right += (chosen > rejected).sum().item()
            total += chosen.shape[0]
        return {"eval_accuracy": right / max(1, total)}

    def manifest(self, config: TrainConfig) -> ModelManifest:
        return ModelManifest(kind="bradley_terry", template=self.template.to_dict(), max_length=config.max_length,
                             base_model=config.model, training=config.to_dict())


def task_for(config: TrainConfig):
    return {"finetune": JudgeFinetuneTask, "pretrain": PretrainTask, "bt": BradleyTerryTask}[config.task](config)


def batch_tokens(batch: dict) -> int:
    return int(batch["attention_mask"].sum().item())
