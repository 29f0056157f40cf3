"""The training settings the demo and the quality study share: partial fine-tuning of the top
blocks on cached frozen states, sized for a CPU (measured choices: see the README).

Data is passed in memory (lists of records); each stage returns its wall time in seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from rewardkit.methods.train import train_method
from rewardkit.training import LoopConfig

Event = Callable[[str, dict], None]


@dataclass(frozen=True)
class PartialFineTune:
    train_layers: int = 6  # of SmolLM2's 30 blocks; the blocks below run once per row (--cache-frozen)
    lr: float = 1e-4
    batch_size: int = 8
    warmup_ratio: float = 0.1
    max_length: int = 320  # judge and pre-training rows: question + both answers
    bt_max_length: int = 256  # BT rows: question + one answer
    label_smoothing: float = 0.1
    centre_orders: bool = False  # the judge loss on each pair's order-averaged margin (JudgeConfig)
    batch_tokens: int | None = None  # token-budget batches instead of batch_size rows
    seed: int = 0

    def loop(self, model: str, data, output: str | Path, *, epochs: float, max_length: int | None = None) -> LoopConfig:
        # only the top blocks' activations are kept for backward: small enough without checkpointing
        return LoopConfig(model=str(model), data=data, output=str(output), epochs=epochs,
                          max_length=max_length or self.max_length, batch_size=self.batch_size, lr=self.lr,
                          warmup_ratio=self.warmup_ratio, train_layers=self.train_layers, cache_frozen=True,
                          freeze_embeddings=True, gradient_checkpointing=False, seed=self.seed, save_every=10**6,
                          batch_tokens=self.batch_tokens)

    def pretrain(self, model: str, unlabeled, output, *, epochs: float = 1.0, on_event: Event | None = None) -> float:
        """GRAM stage 1 on unlabeled pairs (labeled ones are read with their labels dropped)."""
        return timed(lambda: train_method("pretrain", self.loop(model, unlabeled, output, epochs=epochs),
                                          on_event=on_event))

    def judge(self, model: str, pairs, output, *, epochs: float = 1.0, label_smoothing: float | None = None,
              on_event: Event | None = None) -> float:
        from rewardkit.methods.judge import JudgeConfig

        smoothing = self.label_smoothing if label_smoothing is None else label_smoothing
        return timed(lambda: train_method("judge", self.loop(model, pairs, output, epochs=epochs),
                                          JudgeConfig(label_smoothing=smoothing, centre_orders=self.centre_orders),
                                          on_event=on_event))

    def bradley_terry(self, model: str, pairs, output, *, epochs: float = 1.0, on_event: Event | None = None) -> float:
        loop = self.loop(model, pairs, output, epochs=epochs, max_length=self.bt_max_length)
        return timed(lambda: train_method("bradley_terry", loop, on_event=on_event))

    def with_options(self, **changes) -> "PartialFineTune":
        return replace(self, **changes)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 1)


def judge_row_encoder(model: str):
    """A SegmentEncoder of the default judge template with `model`'s tokenizer and no limit of
    its own: what fitting_pairs measures whole rows with."""
    from rewardkit.data.templates import default_judge_template
    from rewardkit.data.tokenize import SegmentEncoder
    from rewardkit.models.loading import load_tokenizer

    return SegmentEncoder(load_tokenizer(model), default_judge_template(), 10**6)


def fitting_pairs(pairs: list, encoder, max_length: int, count: int | None = None) -> list:
    """The pairs whose judge row (question + both answers, as `encoder` lays it out) fits in
    `max_length` tokens, in order, at most `count`: pairs that fit are chosen before any pair
    is cut. `encoder`: a SegmentEncoder of the judge template (its own limit does not matter)."""
    out = []
    for pair in pairs:
        if len(encoder.encode(pair.prompt, pair.chosen, pair.rejected).input_ids) <= max_length:
            out.append(pair)
            if count is not None and len(out) == count:
                break
    return out


def tagged(stage: str, emit: Event) -> Event:
    """`emit` with every event's data marked with the stage it came from."""
    return lambda kind, data: emit(kind, {**data, "stage": stage})
